"""The one exception type for bad input a user can fix.

CLIs print it as a single line and exit with status 2 (see cli.run); library code
raises it with the file, the position when known, what is wrong and what to do.
"""


class UserError(Exception):
    """Bad input: printed as one line, exit status 2, no traceback."""


def at(path, message, line=None, col=None):
    """A UserError located as `file:line:col: message` (gcc/protoc style)."""
    where = str(path)
    if line is not None:
        where += f":{line}"
        if col is not None:
            where += f":{col}"
    return UserError(f"{where}: {message}")
