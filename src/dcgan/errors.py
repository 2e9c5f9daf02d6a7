"""The errors shown as one line without a traceback: user mistakes (exit code 2) and early stops. The CLI prints
their message, which names its flags; in IPython and Jupyter, they show as one line naming the same settings as
a notebook's parameters (`_render_traceback_`, IPython's hook for an exception's own display)."""


class OneLine(Exception):
    """An exception that IPython shows as its one-line message in the parameters' words, not as a traceback. The
    cell still fails, so Run All stops there."""

    label = "error"

    def _render_traceback_(self) -> list[str]:
        from .words import in_parameter_words  # (words reads the config, which raises these errors)

        return [f"\x1b[0;31m{self.label}:\x1b[0m {in_parameter_words(str(self))}"]


class UserError(OneLine):
    """A problem the user can fix (bad flag, missing data, unusable checkpoint).

    The message is one line that names the problem and what to do about it.
    """


class SettingError(UserError):
    """A setting (a flag, a notebook parameter, a field of a saved config) holds a value that cannot work."""

    def __init__(self, setting: str, message: str):
        super().__init__(message)
        self.setting = setting  # the config field's name, e.g. "nz"


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line reports."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class TrainingStopped(OneLine):
    """Training ended early on purpose (a signal, non-finite losses); the message says what was kept.

    The CLI prints the message (when there is one) and exits with `exit_code`, without a traceback.
    """

    label = "stopped"

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    @property
    def interrupted(self) -> bool:
        """Whether SIGINT stopped it (Ctrl-C, a notebook's interrupt button): exit code 130."""
        return self.exit_code == 130


def out_of_memory(error: BaseException) -> bool:
    """Whether an error is the device or the host running out of memory (CUDA, the CPU allocator, Python)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return any(sign in text for sign in ("out of memory", "can't allocate memory", "cannot allocate memory"))
