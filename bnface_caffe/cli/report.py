"""tools/report.py: the paper's table from Caffe training logs.

Per run: name, LR policy (from the log header, or --solver), iterations to reach the
target test accuracy, iterations to convergence, best accuracy and where. Markdown
on stdout, or to -o FILE.md (which also writes FILE.csv) or -o FILE.csv.
Convergence: the first test iteration after which the best test accuracy never
improves by more than --tolerance percentage points (default 0.1), confirmed by a
later test; a run still improving at its last test is "not converged".
"""
import argparse
import os
import sys

from .. import curves, report
from ..formats import prototxt
from ..errors import UserError
from ..proto import caffe_pb2
from . import options
from .plot_curves import fraction


def parser():
    p = argparse.ArgumentParser(description=__doc__.split(":", 1)[1].strip())
    p.add_argument("logs", nargs="+", metavar="LOG", help="Caffe training logs")
    p.add_argument("--target", type=float, default=0.80,
                   help="target test accuracy (0.80, or 80 for percent; default 0.80)")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="convergence tolerance in percentage points (default 0.1)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="the runs' schedule scale (gen_solver.py --scale); iterations are divided by it")
    p.add_argument("--interpolate", action="store_true",
                   help="interpolate the iteration reaching the target between test points")
    p.add_argument("--label", action="append", default=[],
                   help="run name, once per LOG in order (default: from the file name)")
    p.add_argument("--solver", action="append", default=[],
                   help="solver prototxt giving the LR policy (one for all logs, or one per LOG)")
    p.add_argument("--metric", help="test output to use (default: 'accuracy', else the first '*acc*')")
    p.add_argument("--test-net", type=int, default=0, help="which test net (#i) to use (default 0)")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's table")
    p.add_argument("--verification", action="append", default=[], metavar="METRICS.csv",
                   help="tools/verify.py metrics.csv (its `name` = a run's label): adds "
                        "verification accuracy and EER columns (repeatable)")
    p.add_argument("-o", "--output", help="FILE.md (also writes FILE.csv) or FILE.csv; default stdout")
    options.add_quiet(p, "'wrote' line")
    options.add_version(p)
    return p


def read_verification(paths):
    """{model name: row} from tools/verify.py metrics.csv files."""
    import csv

    out = {}
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except OSError as err:
            raise UserError(f"--verification {path}: cannot read ({err.strerror})") from None
        for row in rows:
            if not {"name", "accuracy", "accuracy_std", "eer"} <= set(row):
                raise UserError(f"--verification {path}: not a verify metrics.csv (bnface-verify) "
                                "(needs name, accuracy, accuracy_std and eer columns)")
            out[row["name"]] = row
    return out


def main(argv):
    p = parser()
    args = p.parse_args(argv)
    if args.scale <= 0:
        raise UserError(f"--scale must be positive, got {args.scale:g}")
    if args.tolerance < 0:
        raise UserError(f"--tolerance must be >= 0, got {args.tolerance:g}")
    target = fraction(args.target)
    outputs = output_paths(args.output) if args.output else []
    solvers = [prototxt.read_text(path, caffe_pb2.SolverParameter) for path in args.solver]
    runs = curves.load_runs(args.logs, args.label, args.metric, args.test_net, solvers)
    for run in runs:
        for warning in run.log.warnings:
            options.warn(p.prog, warning)
    rows = [report.summarize(run, target, args.tolerance, args.interpolate) for run in runs]
    verification = read_verification(args.verification) if args.verification else None
    md = report.markdown(rows, target, args.tolerance, args.scale, paper=not args.no_paper,
                         verification=verification)
    table_csv = report.csv_text(rows, target, args.tolerance, args.scale, verification)
    for row in rows:
        if row["notes"]:
            print(f"{row['log']}: {row['notes']}", file=sys.stderr)
    if not args.output:
        sys.stdout.write(md)
        return 0
    for path in outputs:
        prototxt.write_bytes(path, (table_csv if path.lower().endswith(".csv") else md).encode())
    if not args.quiet:
        print("wrote " + " and ".join(outputs))
    return 0


def output_paths(output):
    """-o FILE.csv → [FILE.csv]; -o FILE.md → [FILE.md, FILE.csv]; checked before any work."""
    base, ext = os.path.splitext(output)
    if ext.lower() == ".csv":
        paths = [output]
    elif ext.lower() in (".md", ".markdown"):
        paths = [output, base + ".csv"]
    else:
        raise UserError(f"-o {output}: the output must end in .md or .csv")
    for path in paths:
        options.check_writable(path)
    return paths


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
