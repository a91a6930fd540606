"""Read Caffe training logs (glog format) into train and test tables.

The tables are the ones Caffe's tools/extra/parse_log.py writes (same rows, same
columns: NumIters, Seconds, LearningRate, then every output by name), so scripts
written for its .train/.test files keep working. What differs, on purpose:

- LearningRate is the rate used at the row's own iteration. Caffe prints
  "Iteration N, lr = X" *after* the outputs of iteration N, so parse_log.py gives
  each row the rate of the previous display (and copies row 1's into row 0).
  Here a row at iteration N takes the "Iteration N, lr" line that follows it; a
  row with no such line (a test at an iteration that is not a display) keeps the
  last rate printed before it. `like_caffe=True` gives parse_log.py's column.
- nan/inf outputs (Caffe prints nan, -nan, inf, 1.#QNAN ...) are values.
  parse_log.py's number pattern skips them (and crashes on "-nan"), so a diverged
  run loses its rows there. `like_caffe=True` skips them as it does.
- The newer glog prefix with the year (I20261129 19:35:20.123456 ...) is read;
  parse_log.py crashes on it. Without a year, the year comes from the file's
  modification time and is bumped when the month goes backwards (a year rollover).
- Lines before the first "Solving" are skipped, as parse_log.py does, but a log
  with no "Solving" line at all (its head cut off) is read from the start rather
  than yielding nothing.

Row rules (parse_log.py's, kept so the row counts match): an output line at a new
iteration starts a row; a row is complete, and pushed, once it holds as many
columns as the first pushed row; the very first row is pushed when the next
iteration's output arrives; an incomplete row is pushed when a newer one starts.
At the end of the log, parse_log.py drops the row still being built, so a short run
(one display and one test, stopped with Ctrl-C) gives it no rows at all; here that row
is kept (`like_caffe=True` drops it), so the tables, the report and the curves agree.

A log whose last line has no newline was cut while being written (glog ends every line
with one): that fragment may hold a cut number ("loss = 2.0" of "2.98628"), so it is
dropped and `CaffeLog.warnings` says so.
"""
import datetime
import math
import os
import re

from .errors import UserError
from .formats.glog import parse_prefix as glog_time
from .formats.solver_log import (INITIALIZING_SOLVER, ITERATION, ITERATION_RATE, LEARNING_RATE,
                                 OPTIMIZATION_DONE, OUTPUT, POLICY, RESTORING, SOLVER_FIELD,
                                 TESTING_NET, TOTAL_LOSS)

NUMBER = re.compile(r"[\.\deE+-]+")  # parse_log.py's value pattern: no nan, no inf


class Row:
    """One table row: the iteration, the time, the rates, then output values by name."""
    __slots__ = ("iteration", "seconds", "lr_before", "lr_own", "values")

    def __init__(self, iteration, seconds, lr_before):
        self.iteration = iteration
        self.seconds = seconds
        self.lr_before = lr_before  # the last rate printed before the row (parse_log.py's)
        self.lr_own = None          # the rate printed for this row's own iteration, if any
        self.values = {}

    def width(self):
        return 3 + len(self.values)  # parse_log.py counts NumIters, Seconds, LearningRate too


class Table:
    """Rows built by parse_log.py's rules (see the module docstring)."""

    def __init__(self):
        self.rows = []
        self.current = None

    def add(self, iteration, name, value, make_row):
        """Add one output; `make_row()` makes the row when a new one starts. Returns it if new."""
        new = None
        if self.current is None or self.current.iteration != iteration:
            if self.current is not None:
                self.rows.append(self.current)
            self.current = new = make_row()
        self.current.values[name] = value
        if self.rows and self.current.width() == self.rows[0].width():
            self.rows.append(self.current)
            self.current = None
        return new


def parse_value(token, like_caffe=False):
    """A value as Caffe printed it; None when it cannot be read (the line is then skipped)."""
    word = token.lower()
    if not like_caffe:
        if "nan" in word or "ind" in word:  # nan, -nan, 1.#QNAN, 1.#IND, nan(ind)
            return math.nan
        if "inf" in word:  # inf, -inf, 1.#INF
            return -math.inf if word.startswith("-") else math.inf
    number = NUMBER.match(token)
    try:
        return float(number.group(0)) if number else None
    except ValueError:
        return None


class LogParser:
    """Feed lines one at a time (`feed`), read the tables at any point (`result`)."""

    def __init__(self, year=None, like_caffe=False):
        self.year = year or datetime.date.today().year
        self.like_caffe = like_caffe
        self.started = False   # seen the first "Solving" line
        self.head = []         # lines before it, replayed if the log never says "Solving"
        self.start_time = None
        self.last_month = None
        self.iteration = None
        self.lr = math.nan     # the last rate printed
        self.awaiting_lr = []  # rows made since the last lr line
        self.test_net = 0      # the "Testing net (#i)" being reported
        self.train, self.test = Table(), Table()
        self.first_lr = None
        self.lr_points = []    # (iteration, lr) from "Iteration N, lr = X"
        self.lr_seconds = []   # the time of each of those lines
        self.loss_points = []  # (iteration, seconds, loss) from "Iteration N ..., loss = X"
        self.test_points = []  # (net, iteration, seconds, name, value): every test output, for curves
        self.train_points = []  # (iteration, seconds, name, value): every train output
        self.rate_points = []   # (iteration, seconds, iter/s) from "Iteration N (X iter/s, ..."
        self.glog_lines = 0
        self.outputs = 0       # output lines read (a --follow rewrites its tables when this moves)
        self.policy = None
        self.solver = {}       # field -> list of values, from the solver parameters printout
        self.in_solver_dump = False
        self.solver_depth = 0
        self.net_name = None
        self.restores = 0
        self.done = False

    # -- header lines: read wherever they are ---------------------------------------
    def _header(self, line, has_prefix):
        if self.in_solver_dump and not has_prefix:
            self._solver_field(line)
            return
        self.in_solver_dump = False
        if not has_prefix:
            return
        if INITIALIZING_SOLVER in line:
            self.in_solver_dump, self.solver_depth, self.solver = True, 0, {}
            rest = line.split(INITIALIZING_SOLVER, 1)[1]
            if rest.strip():
                self._solver_field(rest)
        elif "] Solving " in line:
            self.net_name = line.split("] Solving ", 1)[1].strip()
        elif RESTORING in line:
            self.restores += 1
        elif OPTIMIZATION_DONE in line:
            self.done = True
        m = POLICY.search(line)
        if m:
            self.policy = m.group(1)

    def _solver_field(self, text):
        text = text.strip()
        if text.endswith("{"):
            self.solver_depth += 1
        elif text == "}":
            self.solver_depth -= 1
        elif self.solver_depth == 0:
            m = SOLVER_FIELD.match(text)
            if m:
                self.solver.setdefault(m.group(1), []).append(m.group(2).strip().strip('"'))

    # -- the table lines --------------------------------------------------------------
    def feed(self, line):
        stamp = glog_time(line, self.year)
        if stamp is not None:
            self.glog_lines += 1
        self._header(line, stamp is not None)
        if not self.started:
            if "Solving" in line:  # parse_log.py: its timestamp is the start; lines before are skipped
                self.started, self.head = True, []
                if stamp is not None:
                    self.start_time, self.last_month = stamp[0], stamp[0].month
            else:
                self.head.append(line)
            return
        self._body(line, stamp)

    def _body(self, line, stamp):
        m = ITERATION.search(line)
        if m:  # parse_log.py takes the iteration from any line, even one it then skips
            self.iteration = int(m.group(1))
        if self.iteration is None or stamp is None:
            return
        when, has_year = stamp
        if not has_year:
            if self.last_month is not None and when.month < self.last_month:
                self.year += 1  # a year rollover (parse_log.py's rule)
                when = glog_time(line, self.year)[0]
            self.last_month = when.month
        if self.start_time is None:
            self.start_time = when
        seconds = (when - self.start_time).total_seconds()

        m = TESTING_NET.search(line)
        if m:
            self.test_net = int(m.group(1))
        m = LEARNING_RATE.search(line)
        if m:
            self._learning_rate(float(m.group(1)), seconds)
        m = ITERATION_RATE.search(line)
        if m:
            rate = parse_value(m.group(2))
            if rate is not None:
                self.rate_points.append((int(m.group(1)), seconds, rate))
        m = TOTAL_LOSS.search(line)
        if m and "lr = " not in line:
            value = parse_value(m.group(2))
            if value is not None:
                self.loss_points.append((int(m.group(1)), seconds, value))
        m = OUTPUT.search(line)
        if m:
            value = parse_value(m.group(4), self.like_caffe)
            if value is not None:
                self._output(m.group(1) == "Test", m.group(3), value, seconds)

    def _learning_rate(self, lr, seconds=None):
        self.lr = lr
        self.lr_seconds.append(seconds)
        if self.first_lr is None:
            self.first_lr = lr
        self.lr_points.append((self.iteration, lr))
        for row in self.awaiting_lr:  # the rate of the iteration whose outputs came just before
            if row.iteration == self.iteration:
                row.lr_own = lr
        self.awaiting_lr = []

    def _output(self, is_test, name, value, seconds):
        table = self.test if is_test else self.train
        self.outputs += 1
        if is_test:  # rows may mix test nets (parse_log.py's rules); curves use these points
            self.test_points.append((self.test_net, self.iteration, seconds, name, value))
        else:
            self.train_points.append((self.iteration, seconds, name, value))
        row = table.add(self.iteration, name, value, lambda: Row(self.iteration, seconds, self.lr))
        if row is not None:
            self.awaiting_lr.append(row)

    # -- results ------------------------------------------------------------------------
    def finish(self):
        """End of the log: a log that never said "Solving" is read from its first line."""
        if not self.started and self.head:
            head, self.head, self.started = self.head, [], True
            for line in head:
                self._body(line, glog_time(line, self.year))

    def result(self, path=None):
        return CaffeLog(self, path)


class CaffeLog:
    """A parsed log: `train` and `test` as lists of dicts in parse_log.py's column order."""

    def __init__(self, parser, path=None):
        self.path = path
        self.policy = parser.policy or (parser.solver.get("lr_policy") or [None])[0]
        self.solver = parser.solver
        self.net_name = parser.net_name
        self.restores = parser.restores
        self.done = parser.done
        self.glog_lines = parser.glog_lines
        self.outputs = parser.outputs
        self.like_caffe = parser.like_caffe
        self.lr_points = list(parser.lr_points)
        self.lr_seconds = list(parser.lr_seconds)
        self.loss_points = list(parser.loss_points)
        like = parser.like_caffe
        self.train = _rows(_with_pending(parser.train, like), like, parser.first_lr)
        self.test = _rows(_with_pending(parser.test, like), like, parser.first_lr)
        self.test_points = list(parser.test_points)
        self.train_points = list(parser.train_points)
        self.rate_points = list(parser.rate_points)
        self.start_time = parser.start_time
        self.warnings = []     # what a tool should tell the user (a cut last line)

    def columns(self, table):
        """Column names in first-seen order (parse_log.py takes the first row's keys)."""
        names = {}
        for row in table:
            names.update(dict.fromkeys(row))
        return list(names)


def _with_pending(table, like_caffe):
    """The table's rows, plus the row still being built unless acting like parse_log.py."""
    if like_caffe or table.current is None:
        return table.rows
    return table.rows + [table.current]


def _rows(rows, like_caffe, first_lr):
    out = []
    for row in rows:
        if like_caffe:
            lr = row.lr_before
        elif row.lr_own is not None:
            lr = row.lr_own
        elif not math.isnan(row.lr_before):
            lr = row.lr_before
        else:  # rows before any printed rate
            lr = math.nan if first_lr is None else first_lr
        d = {"NumIters": float(row.iteration), "Seconds": round(row.seconds, 6), "LearningRate": lr}
        d.update(row.values)
        out.append(d)
    if like_caffe and len(out) > 1:  # parse_log.py: row 0 takes row 1's rate
        out[0]["LearningRate"] = out[1]["LearningRate"]
    return out


def log_year(path):
    """The year a log without years in its prefix is taken to start in (its file's mtime)."""
    return datetime.datetime.fromtimestamp(os.path.getmtime(path)).year


def open_log(path):
    """Open a log for reading text; a UserError names what is wrong with the path."""
    try:
        return open(path, encoding="utf-8", errors="replace", newline="")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a Caffe log file") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None


def split_lines(text):
    # Lines end at \n only, as parse_log.py (Python 2) reads them: a stray \r from a
    # progress bar stays inside its line, and a \r\n ending is whitespace to the patterns.
    return text.split("\n")


def parse_log(path, like_caffe=False):
    """Parse a whole log file into a CaffeLog (may have empty tables)."""
    with open_log(path) as f:
        text = f.read()
    lines = split_lines(text)
    cut = lines.pop()   # what follows the last newline: nothing, in a complete log
    parser = LogParser(year=log_year(path), like_caffe=like_caffe)
    for line in lines:
        parser.feed(line)
    parser.finish()
    log = parser.result(path)
    if glog_time(cut, parser.year) is not None:   # a cut glog line (what else is harmless)
        shown = cut.strip() if len(cut.strip()) <= 80 else "..." + cut.strip()[-77:]
        log.warnings.append(f"{path}: the last line has no newline (the log was cut while being "
                            f"written); dropped it: {shown}")
    return log


def check_has_output(log):
    """Raise a UserError unless the log has a train or a test table."""
    if log.train or log.test:
        return
    if log.glog_lines == 0:
        raise UserError(f"{log.path}: not a Caffe log (no glog lines such as "
                        "'I0210 13:39:22.381027 25210 solver.cpp:204] ...')")
    if log.outputs and log.like_caffe:
        raise UserError(f"{log.path}: no complete rows: --like-caffe drops the last row of each "
                        "table, as Caffe's parse_log.py does, and this short log has only that "
                        "one; leave out --like-caffe to keep it")
    raise UserError(f"{log.path}: a glog log without training output (no 'Train net output' "
                    "or 'Test net output' lines); did training start?")
