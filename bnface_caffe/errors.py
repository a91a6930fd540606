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


_LIKE = {}


def like(kind, message):
    """A UserError that is also a `kind` (RuntimeError, ValueError, KeyError, ...).

    pycaffe scripts catch what real pycaffe raises (`except ValueError`); the error we raise
    in its place is caught there too, and a CLI still prints it as one line, exit status 2."""
    if issubclass(kind, UserError):
        return kind(message)
    cls = _LIKE.get(kind)
    if cls is None:
        try:
            cls = type(f"UserError_{kind.__name__}", (UserError, kind), {"__str__": Exception.__str__})
        except TypeError:   # an exception type that cannot be mixed in (its memory layout)
            cls = UserError
        _LIKE[kind] = cls
    return cls(message)
