"""Read and write Caffe protobufs: text prototxt and binary files.

Every failure becomes a UserError located as `file:line:col: message`, so CLIs can
print one line. Writers go through a temporary file in the target folder, fsync it,
rename it over the target and fsync the folder: a crash never leaves a half-written
prototxt, caffemodel or solverstate at the target path, and once a write returns the
file survives a power cut (so a later file's rename cannot overtake an earlier one's).
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


def write_bytes(path, data, before_rename=None):
    """Write raw bytes atomically (temporary file + fsync + rename + folder fsync).
    `before_rename(temporary_path)`, if given, runs once the data is on disk under the
    temporary name (the snapshot writer's test hook)."""
    _atomic_write(path, data, before_rename)


def remove(path):
    """Delete `path` durably (the folder is fsynced); a missing file is fine. An OS error is
    one UserError naming the path."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise UserError(f"{path}: cannot delete ({err.strerror or err})") from None
    fsync_folder(os.path.dirname(os.path.abspath(path)))


def fsync_folder(folder):
    """Make renames and deletions in `folder` durable (a no-op where folders cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is atomic
    finally:
        os.close(fd)


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


def write_binary(msg, path, before_rename=None):
    _atomic_write(path, msg.SerializeToString(), before_rename)


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


def _atomic_write(path, data, before_rename=None):
    """Write `data` to `path` via a temporary file in the same folder, then rename; an OS
    error (no such folder, not writable, disk full) is one UserError naming the path."""
    try:
        _write_via_temporary(path, data, before_rename)
    except OSError as err:
        raise UserError(f"{path}: cannot write ({err.strerror or err}); nothing was written "
                        "there") from None


def _write_via_temporary(path, data, before_rename=None):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
