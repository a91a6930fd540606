"""glog's line format, written and read: `Lmmdd hh:mm:ss.uuuuuu TTTTT file.cpp:LINE] message`.

L is the severity (I, W, E, F), TTTTT the thread id right-aligned in 5 columns; newer glog
puts the year in front of mmdd. Numbers print as C++ ostreams print floats (cpp_number).
Caffe's own tools (parse_log.py, plot scripts) key on these shapes, so everything the
engine reports goes through a `Glog`, and every reader of logs goes through `parse_prefix`.

A Glog is made by whoever runs the job (a CLI, a test, a script) and handed down
explicitly; `Glog.from_environment` honours glog's own switches (GLOG_minloglevel,
GLOG_logtostderr, GLOG_log_dir), which Caffe users reach for.
"""
import datetime
import getpass
import os
import re
import socket
import sys
import threading

SEVERITIES = "IWEF"          # INFO, WARNING, ERROR, FATAL: glog's levels 0..3

# "I0210 13:39:22.381027 25210 solver.cpp:204] ..." or, newer glog, "I20261129 19:35:20.1234 ..."
PREFIX = re.compile(r"\s*[A-Za-z](\d{8}|\d{4})\s+(\d{1,2}):(\d{1,2}):(\d{1,2})\.(\d{1,6})(?:\s|$)")


def cpp_number(x):
    """A float as `std::ostream << float` prints it: 6 significant digits (%g)."""
    x = float(x)
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return "%g" % x


def format_line(severity, where, message, now=None, thread_id=None):
    now = now or datetime.datetime.now()
    tid = os.getpid() if thread_id is None else thread_id
    return (f"{severity}{now:%m%d %H:%M:%S}.{now.microsecond:06d} {tid:>5} "
            f"{where}] {message}")


def parse_prefix(line, year):
    """(datetime, has_year) from a line's glog prefix, or None when it has none. Without a
    year in the prefix, `year` is used (a 29 February that year lacks reads as 1 March)."""
    m = PREFIX.match(line)
    if not m:
        return None
    date, hh, mm, ss, frac = m.groups()
    has_year = len(date) == 8
    if has_year:
        year, date = int(date[:4]), date[4:]
    month, day = int(date[:2]), int(date[2:])
    try:
        when = datetime.datetime(year, month, day, int(hh), int(mm), int(ss),
                                 int(frac.ljust(6, "0")))
    except ValueError:
        if (month, day) != (2, 29) or has_year:
            return None
        when = datetime.datetime(year, 3, 1, int(hh), int(mm), int(ss), int(frac.ljust(6, "0")))
    return when, has_year


def message_of(line):
    """The text after the glog prefix's `file:line] `, or the whole line when it has none."""
    head, sep, rest = line.partition("] ")
    return rest if sep and PREFIX.match(head) else line


class Glog:
    """Writes Caffe-format lines to stderr and to any added files or sinks.

    `min_level`: lines below it are dropped everywhere (GLOG_minloglevel). `stderr_level`:
    lines below it skip stderr but still reach the files (--quiet keeps the log file whole).
    """

    def __init__(self, stderr=True, min_level=0, stderr_level=0):
        self.stderr = stderr
        self.min_level = min_level
        self.stderr_level = stderr_level
        self.sinks = []                  # file-like objects with write(str)
        self._owned = []                 # the files this Glog opened (closed by close())
        self.lock = threading.Lock()

    @classmethod
    def silent(cls):
        return cls(stderr=False)

    @classmethod
    def from_environment(cls, program, quiet=False, environ=None):
        """glog's switches: GLOG_minloglevel=N drops levels below N; GLOG_log_dir=DIR also
        writes DIR/<program>.<host>.<user>.log.INFO.<date>-<time>.<pid> (with a
        <program>.INFO link to it) unless GLOG_logtostderr=1. --quiet: warnings and errors
        only on stderr."""
        env = os.environ if environ is None else environ
        try:
            min_level = max(0, min(3, int(env.get("GLOG_minloglevel", "0") or 0)))
        except ValueError:
            min_level = 0
        log = cls(stderr=True, min_level=min_level, stderr_level=1 if quiet else 0)
        log_dir = env.get("GLOG_log_dir")
        if log_dir and env.get("GLOG_logtostderr", "0") not in ("1", "true", "yes"):
            log.add_file(glog_file_name(log_dir, program), link=True)
        return log

    def add_file(self, path, link=False):
        """Also write to `path` (appending); `link`: point <dir>/<program>.INFO at it."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        f = open(path, "a", buffering=1)
        self.sinks.append(f)
        self._owned.append(f)
        if link:
            name = os.path.basename(path).split(".")[0] + ".INFO"
            target = os.path.join(os.path.dirname(path), name)
            try:
                if os.path.islink(target):
                    os.unlink(target)
                os.symlink(os.path.basename(path), target)
            except OSError:
                pass  # a link is a convenience; glog ignores failures too
        return f

    def close(self):
        for f in self._owned:
            if f in self.sinks:
                self.sinks.remove(f)
            f.close()
        self._owned = []

    def write(self, severity, where, message):
        level = SEVERITIES.index(severity)
        if level < self.min_level:
            return
        line = format_line(severity, where, message) + "\n"
        with self.lock:
            if self.stderr and level >= self.stderr_level:
                sys.stderr.write(line)
            for sink in self.sinks:
                sink.write(line)

    def info(self, where, message):
        self.write("I", where, message)

    def warning(self, where, message):
        self.write("W", where, message)

    def error(self, where, message):
        self.write("E", where, message)


def glog_file_name(log_dir, program, now=None):
    now = now or datetime.datetime.now()
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return os.path.join(log_dir, f"{program}.{socket.gethostname()}.{user}.log.INFO."
                                 f"{now:%Y%m%d-%H%M%S}.{os.getpid()}")
