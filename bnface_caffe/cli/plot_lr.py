"""tools/plot_lr.py: draw solver prototxts' learning-rate schedules (log scale)."""
import argparse
import os

from ..formats import prototxt
from ..errors import UserError
from ..proto import caffe_pb2
from ..schedules import check
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split(":", 1)[1].strip())
    p.add_argument("solvers", nargs="+", help="solver prototxt files")
    p.add_argument("-o", "--output", default="lr.png", help="figure to write: .png or .svg, by its extension (default lr.png)")
    p.add_argument("--label", action="append", help="run label, once per solver (default: file name)")
    p.add_argument("--scale", type=float, help="the solvers' gen_solver --scale: iterations are "
                   "divided by it, so the x axis reads in the paper's units")
    options.add_quiet(p, "'wrote' line")
    options.add_version(p)
    return p


def main(argv):
    args = parser().parse_args(argv)
    from ..plots import check_format
    check_format(args.output)
    options.check_writable(args.output)
    if args.label and len(args.label) != len(args.solvers):
        raise UserError(f"--label given {len(args.label)} times for {len(args.solvers)} solvers")
    solvers = []
    for path in args.solvers:
        solver = prototxt.read_text(path, caffe_pb2.SolverParameter)
        check(solver, source=path)
        if solver.max_iter <= 0:
            raise UserError(f"{path}: max_iter is not set; the plot spans 0..max_iter")
        solvers.append(solver)
    labels = args.label or [os.path.splitext(os.path.basename(p))[0] for p in args.solvers]
    from ..schedule_plot import plot_schedules  # matplotlib only when needed

    if args.scale is not None and args.scale <= 0:
        raise UserError(f"--scale must be positive, got {args.scale:g}")
    plot_schedules(solvers, labels, args.output, scale=args.scale)
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
