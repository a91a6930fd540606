"""One training run per snapshot_prefix: the lock file `<snapshot_prefix>.lock`.

Two runs writing the same prefix would overwrite each other's snapshots, and `--resume`
could pick up a set that another run is still writing. The run holds an exclusive
advisory lock (flock) on the file and writes its PID into it. The kernel drops the lock
when the process ends, however it ends (SIGKILL included), so a lock file whose lock is
free is stale: it is taken over, with a line naming the process that left it. The file is
deleted when the run ends normally.
"""
import errno
import os

from ..errors import UserError
from ..formats import solver_log

try:
    import fcntl
except ImportError:   # no flock (Windows): fall back on whether the PID still runs
    fcntl = None


def lock_path(prefix):
    return f"{prefix}.lock"


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read_pid(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


class PrefixLock:
    def __init__(self, prefix, log):
        self.prefix, self.path, self.log = prefix, lock_path(prefix), log
        self.fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(folder, exist_ok=True)
            while self.fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                if not self._try_lock(fd):
                    continue
                previous = _read_pid(fd)
                if previous is not None and previous != os.getpid():
                    why = ("still running, without the lock" if _process_exists(previous)
                           else "no longer running")
                    solver_log.stale_lock(self.log, self.path, previous, why)
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode())
                os.fsync(fd)
                self.fd = fd
        except OSError as err:
            raise UserError(f"{self.path}: cannot create the snapshot_prefix's lock file "
                            f"({err.strerror or err}); make sure its folder is writable") from None

    def _try_lock(self, fd):
        """True when `fd` now holds the lock of the file at self.path; False to try again
        (the file was replaced meanwhile); a UserError when another run holds it."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_pid(fd)
                os.close(fd)
                raise self._in_use(holder) from None
        else:
            holder = _read_pid(fd)
            if holder is not None and holder != os.getpid() and _process_exists(holder):
                os.close(fd)
                raise self._in_use(holder)
        # The holder before us may have deleted the file between our open and our lock.
        try:
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
        return same

    def _in_use(self, pid):
        who = f"process {pid}" if pid is not None else "another process"
        return UserError(f"snapshot_prefix '{self.prefix}' is in use by {who} (lock file "
                         f"{self.path}); wait for that run to end, or give this one another "
                         "snapshot_prefix")

    def release(self):
        if self.fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None
