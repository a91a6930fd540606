"""Caffe's log lines: glog's prefix and C++ ostream number formatting.

`Lmmdd hh:mm:ss.uuuuuu TTTTT file.cpp:LINE] message`, where TTTTT is the thread
id right-aligned in 5 columns. Caffe's own tools (parse_log.py, plot scripts)
key on these shapes, so everything the engine reports goes through `Glog`.
"""
import datetime
import os
import sys
import threading


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


class Glog:
    """Writes Caffe-format lines to stderr (unless quiet) and to any added files."""

    def __init__(self, stderr=True):
        self.stderr = stderr
        self.files = []
        self.lock = threading.Lock()

    def add_file(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        f = open(path, "a", buffering=1)
        self.files.append(f)
        return f

    def close(self):
        for f in self.files:
            f.close()
        self.files = []

    def write(self, severity, where, message):
        line = format_line(severity, where, message) + "\n"
        with self.lock:
            if self.stderr:
                sys.stderr.write(line)
            for f in self.files:
                f.write(line)

    def info(self, where, message):
        self.write("I", where, message)

    def warning(self, where, message):
        self.write("W", where, message)

    def error(self, where, message):
        self.write("E", where, message)


# The process-wide log; the training driver adds its log file to it.
log = Glog()
