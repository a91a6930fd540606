"""tools/plot_curves.py: test accuracy of one or more Caffe runs in one figure (the paper's figure).

Each LOG is a Caffe training log; runs are named after their files (or --label).
Optional panels show the train loss and the learning rate; --x seconds puts time on
the x axis. The output is PNG or SVG, chosen by the extension of -o (others are refused).
"""
import argparse
import sys

from .. import curves, plots
from ..errors import UserError
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split(":", 1)[1].strip())
    p.add_argument("logs", nargs="+", metavar="LOG", help="Caffe training logs")
    p.add_argument("-o", "--output", required=True, help="figure to write: .png or .svg")
    p.add_argument("--label", action="append", default=[],
                   help="run name, once per LOG in order (default: from the file name)")
    p.add_argument("--loss", action="store_true", help="add a train-loss panel")
    p.add_argument("--lr", action="store_true", help="add a learning-rate panel")
    p.add_argument("--x", choices=("iterations", "seconds"), default="iterations",
                   help="x axis (seconds are shown in minutes or hours when long)")
    p.add_argument("--target", type=float, help="draw a line at this accuracy (0.80, or 80 for percent)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="the runs' schedule scale (gen_solver.py --scale); iterations are divided by it")
    p.add_argument("--metric", help="test output to plot (default: 'accuracy', else the first '*acc*')")
    p.add_argument("--test-net", type=int, default=0, help="which test net (#i) to plot (default 0)")
    p.add_argument("--title", help="figure title")
    p.add_argument("-q", "--quiet", action="store_true")
    options.add_version(p)
    return p


def fraction(target):
    """0.80 stays 0.80; 80 (a percentage) becomes 0.80."""
    if target is None:
        return None
    if not 0 < target <= 100:
        raise UserError(f"--target must be a fraction (0.80) or a percentage (80), got {target:g}")
    return target / 100.0 if target > 1 else target


def main(argv):
    p = parser()
    args = p.parse_args(argv)
    if args.scale <= 0:
        raise UserError(f"--scale must be positive, got {args.scale:g}")
    plots.check_format(args.output)
    options.check_writable(args.output)
    runs = curves.load_runs(args.logs, args.label, args.metric, args.test_net)
    for run in runs:
        for warning in run.log.warnings:
            options.warn(p.prog, warning)
    for run in runs:
        if not run.test_iters and not args.quiet:
            print(f"{run.path}: no test accuracy to plot (test outputs: "
                  f"{', '.join(run.log.columns(run.log.test)[3:]) or 'none'})", file=sys.stderr)
    fig, artists = plots.plot_runs(runs, x=args.x, loss=args.loss, lr=args.lr,
                                   target=fraction(args.target), scale=args.scale, title=args.title)
    plots.save(fig, args.output)
    if not args.quiet:
        drawn = sum(len(v) for k, v in artists.items() if k != "target")
        print(f"wrote {args.output} ({len(runs)} runs, {drawn} curves)")
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
