"""The two ways a tool ends with one line instead of a traceback.

UserError: bad input a user can fix; CLIs print it as one line and exit with status 2.
RunFailed: the input was fine but the run failed (training diverged); one line, status 1.
Library code raises them with the file, the position when known, what is wrong and what
to do.
"""


class UserError(Exception):
    """Bad input: printed as one line, exit status 2, no traceback."""


class RunFailed(Exception):
    """The job ran and failed (e.g. the loss diverged): one line, exit status 1."""
    status = 1


def at(path, message, line=None, col=None):
    """A UserError located as `file:line:col: message` (gcc/protoc style)."""
    where = str(path)
    if line is not None:
        where += f":{line}"
        if col is not None:
            where += f":{col}"
    return UserError(f"{where}: {message}")
