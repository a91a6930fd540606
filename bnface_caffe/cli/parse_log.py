"""tools/parse_log.py: a Caffe training log -> LOG.train and LOG.test CSV tables.

The same files, rows and columns as Caffe's tools/extra/parse_log.py, except that
LearningRate is the rate used at each row's own iteration (Caffe's tool shows the
previous display's; --like-caffe restores that), nan/inf outputs are kept, and logs
whose glog prefix carries the year are read. --follow keeps the tables up to date
while training writes the log. --tensorboard DIR also writes the values as TensorBoard
scalars (tags: train/<output>, train/smoothed_loss, learning_rate, iterations_per_second,
test/<output>), from any Caffe log, real Caffe's included.
"""
import argparse
import csv
import io
import math
import os
import time

from .. import caffelog
from ..errors import UserError
from ..formats.prototxt import write_bytes
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split(":", 1)[1].strip())
    p.add_argument("log", help="Caffe training log (glog format)")
    p.add_argument("outdir", nargs="?", help="where to write LOG.train/LOG.test (default: beside LOG)")
    p.add_argument("--follow", action="store_true",
                   help="keep reading as the log grows, rewriting the tables, until "
                        "'Optimization Done.' or Ctrl-C; waits for LOG to appear")
    p.add_argument("--interval", type=float, default=1.0, help="--follow: seconds between reads")
    p.add_argument("--like-caffe", action="store_true",
                   help="LearningRate and nan handling exactly as Caffe's parse_log.py")
    p.add_argument("--delimiter", default=",", help="column delimiter (default ',')")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write the log's values as TensorBoard scalars into DIR (one "
                        "folder per run; view with `tensorboard --logdir` on their parent)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    options.add_version(p)
    return p


def csv_text(rows, columns, delimiter=","):
    """CSV as parse_log.py writes it (csv module, excel dialect, Python float reprs)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def output_paths(log_path, outdir):
    base = os.path.join(outdir or os.path.dirname(os.path.abspath(log_path)), os.path.basename(log_path))
    return base + ".train", base + ".test"


def write_tables(log, outdir, delimiter=","):
    """Write the non-empty tables (parse_log.py writes nothing for an empty one); paths written."""
    written = []
    for path, table in zip(output_paths(log.path, outdir), (log.train, log.test)):
        if table:
            write_bytes(path, csv_text(table, log.columns(table), delimiter).encode())
            written.append(path)
    return written


def summary(log):
    """One progress line: where training is and the latest outputs."""
    parts = []
    if log.train:
        row = log.train[-1]
        parts.append(f"iteration {int(row['NumIters'])}: " + _values(row))
    if log.test:
        row = log.test[-1]
        parts.append(f"test at {int(row['NumIters'])}: " + _values(row))
    return " | ".join(parts) or "no output yet"


def _values(row):
    items = [(k, v) for k, v in row.items() if k not in ("NumIters", "Seconds", "LearningRate")]
    text = ", ".join(f"{k} {_fmt(v)}" for k, v in items[:4])
    lr = row["LearningRate"]
    return text + ("" if math.isnan(lr) else f", lr {_fmt(lr)}")


def _fmt(v):
    return "%.6g" % v


def parse_once(args):
    log = caffelog.parse_log(args.log, like_caffe=args.like_caffe)
    caffelog.check_has_output(log)
    for warning in log.warnings:
        options.warn(args.prog, warning)
    written = write_tables(log, args.outdir, args.delimiter)
    if args.tensorboard:
        from ..tensorboard_events import write_log
        scalars = write_log(log, args.tensorboard)
        if not args.quiet:
            print(f"wrote {scalars} scalars to {args.tensorboard} (tensorboard --logdir "
                  f"{args.tensorboard})")
    if not args.quiet:
        for path, rows in zip(written, [t for t in (log.train, log.test) if t]):
            print(f"wrote {path} ({len(rows)} rows)")
        if not log.test:
            print(f"{args.log}: no test output (no 'Test net output' lines): wrote the train table only")
        if not log.train:
            print(f"{args.log}: no train output (no 'Train net output' lines): wrote the test table only")
    return 0


def follow(path, on_update, interval=1.0, like_caffe=False, should_stop=lambda: False):
    """Read `path` as it grows; call on_update(CaffeLog) whenever a row or a rate arrives.
    Returns the last CaffeLog at 'Optimization Done.' or when should_stop() says so. A file
    that shrinks (training restarted into the same log) is read again from its start."""
    parser, f, pending, offset, seen = None, None, "", 0, None
    try:
        while True:
            if f is None and os.path.exists(path):
                f = caffelog.open_log(path)
                parser, pending, offset, seen = caffelog.LogParser(caffelog.log_year(path), like_caffe), "", 0, None
            if f is not None:
                if os.path.getsize(path) < offset:  # truncated: start over
                    f.close()
                    f = None
                    continue
                chunk = f.read()
                offset = f.tell()
                if chunk:
                    lines = caffelog.split_lines(pending + chunk)
                    pending = lines.pop()  # a line still being written
                    for line in lines:
                        parser.feed(line)
                    log = parser.result(path)
                    if (parser.outputs, len(log.lr_points)) != seen:
                        seen = (parser.outputs, len(log.lr_points))
                        on_update(log)
                    if parser.done:
                        return log
            if should_stop():
                return parser.result(path) if parser else None
            time.sleep(interval)
    finally:
        if f is not None:
            f.close()


def follow_log(args):
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, flush=True))
    if not os.path.exists(args.log):
        say(f"waiting for {args.log} to appear ...")
    rows = [None]
    events = None
    if args.tensorboard:
        from ..tensorboard_events import EventWriter
        events = EventWriter(args.tensorboard)

    def update(log):
        write_tables(log, args.outdir, args.delimiter)
        if events is not None:
            events.add_new(log)
            events.flush()
        if (len(log.train), len(log.test)) != rows[0]:  # one progress line per new row
            rows[0] = (len(log.train), len(log.test))
            say(summary(log))

    try:
        log = follow(args.log, update, args.interval, args.like_caffe)
    except KeyboardInterrupt:  # Ctrl-C is how a follow ends when training never finishes
        say("stopped")
        return 0
    finally:
        if events is not None:
            events.close()
    say(f"{args.log}: Optimization Done.")
    if log is not None and not log.test:
        say(f"{args.log}: no test output (no 'Test net output' lines): wrote the train table only")
    return 0


def main(argv):
    p = parser()
    args = p.parse_args(argv)
    args.prog = p.prog
    if args.interval <= 0:
        raise UserError(f"--interval must be positive, got {args.interval}")
    if args.outdir and not os.path.isdir(args.outdir):
        what = "is a file, not a directory" if os.path.exists(args.outdir) else "no such directory"
        raise UserError(f"OUTDIR {args.outdir}: {what} (the output folder must exist)")
    for path in output_paths(args.log, args.outdir):
        options.check_writable(path, "output")
    if args.follow:
        return follow_log(args)
    return parse_once(args)



if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
