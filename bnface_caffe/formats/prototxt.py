"""Read and write Caffe protobufs: text prototxt and binary files.

Every failure becomes a UserError located as `file:line:col: message`, so CLIs can
print one line. Writers go through a temporary file and a rename: a crash never
leaves a half-written prototxt, caffemodel or solverstate at the target path.
"""
import os
import tempfile

from google.protobuf import message as _message
from google.protobuf import text_format

from ..errors import UserError, at


def parse_text(text, message_cls, source="<string>"):
    """Parse prototxt `text` into a new `message_cls`; errors name `source`."""
    msg = message_cls()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as err:
        line, col = err.GetLine(), err.GetColumn()
        reason = str(err)
        # ParseError's text starts with "line:col : " already; keep only the reason.
        if line is not None and reason.startswith(f"{line}:"):
            reason = reason.split(" : ", 1)[-1]
        raise at(source, f"{reason} (in a {msg.DESCRIPTOR.full_name})", line, col) from None
    return msg


def read_text(path, message_cls):
    return parse_text(_read(path, "r"), message_cls, source=path)


def format_text(msg):
    return text_format.MessageToString(msg)


def write_text(msg, path):
    _atomic_write(path, format_text(msg).encode())


def write_bytes(path, data):
    """Write raw bytes atomically (temporary file + rename)."""
    _atomic_write(path, data)


def parse_binary(data, message_cls, source="<bytes>"):
    msg = message_cls()
    try:
        msg.ParseFromString(data)
    except _message.DecodeError as err:
        raise UserError(f"{source}: not a binary {msg.DESCRIPTOR.full_name} "
                        f"({len(data)} bytes; {err}); is it the right file?") from None
    return msg


def read_binary(path, message_cls):
    return parse_binary(_read(path, "rb"), message_cls, source=path)


def write_binary(msg, path):
    _atomic_write(path, msg.SerializeToString())


def _read(path, mode):
    try:
        with open(path, mode) as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a file") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a text prototxt (byte {err.start} is not UTF-8); "
                        "is it a binary file?") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None


def _atomic_write(path, data):
    """Write `data` to `path` via a temporary file in the same folder, then rename; an OS
    error (no such folder, not writable, disk full) is one UserError naming the path."""
    try:
        _write_via_temporary(path, data)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err}); nothing was written "
                        "there") from None


def _write_via_temporary(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
