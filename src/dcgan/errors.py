"""The errors shown as one line without a traceback: user mistakes (exit code 2) and early stops. The CLI prints
their message, which names its flags; a notebook shows it as one line in its parameters' words (`%load_ext dcgan`,
pictures/messages.py). Under torchrun every process meets the same mistake, and only the first tells it
(tells_mistakes, which imports nothing: it answers before torch is imported)."""

import os

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what joining a process group reads


class UserError(Exception):
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


class TrainingStopped(Exception):
    """Training ended early on purpose (a signal, non-finite losses); the message says what was kept.

    The CLI prints the message (when there is one) and exits with `exit_code`, without a traceback.
    """

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


def torchrun_rank() -> int | None:
    """This process's rank when torchrun (or a launcher like it) started it: all of its variables set, RANK a
    whole number below WORLD_SIZE. None otherwise (nothing checked, nothing raised)."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return None
    rank, size = os.environ["RANK"], os.environ["WORLD_SIZE"]
    return int(rank) if rank.isdigit() and size.isdigit() and int(rank) < int(size) else None


def tells_mistakes(command: str) -> bool:
    """Whether this process prints a mistake: among the processes torchrun started for a train only rank 0 does;
    other commands are never distributed, whatever the environment says."""
    return command != "train" or torchrun_rank() in (None, 0)
