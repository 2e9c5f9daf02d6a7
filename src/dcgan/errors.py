"""The error type for user mistakes: shown as one line, exit code 2, no traceback."""


class UserError(Exception):
    """A problem the user can fix (bad flag, missing data, unusable checkpoint).

    The message is one line that names the problem and what to do about it.
    """


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line reports."""
    return (str(error).splitlines() or [type(error).__name__])[0]
