"""gen_solver: a solver prototxt for one of the paper's named schedules.

--scale F multiplies every iteration number of the schedule: stepsize, stepvalues, max_iter,
test_interval, snapshot and display (each at least 1), so a smaller data set trains with the
same shape of schedule. test_iter (batches per test) is not scaled: it follows the test set.
"""
import argparse

from ..errors import UserError
from ..paper_schedules import ORIGINAL_VARIANTS, SCHEDULE_NAMES, SolverOptions, build_solver, paper_schedule
from ..schedules import check
from . import options, write_generated

DEFAULTS = SolverOptions()
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("name", help=f"schedule: {', '.join(SCHEDULE_NAMES)}")
    p.add_argument("--net", help="net prototxt path, relative to where training runs "
                   "(default: the paper's net for the schedule under prototxt/)")
    p.add_argument("--scale", type=float, default=DEFAULTS.scale,
                   help="iteration scale: multiplies stepsize, stepvalues, max_iter, "
                        "test_interval, snapshot and display")
    p.add_argument("--original-variant", choices=ORIGINAL_VARIANTS, default=DEFAULTS.original_variant,
                   help="how 'original'/'long_step' read the paper: the text (steps at 150k, 300k; "
                        "default) or the table (every 50k)")
    p.add_argument("--max-iter", type=int, help="override max_iter (not scaled)")
    p.add_argument("--test-iter", type=int, default=DEFAULTS.test_iter,
                   help="test batches per test (not scaled)")
    p.add_argument("--test-interval", type=int, default=DEFAULTS.test_interval,
                   help="in paper iterations (scaled)")
    p.add_argument("--display", type=int, default=DEFAULTS.display, help="in paper iterations (scaled)")
    p.add_argument("--snapshot", type=int, default=DEFAULTS.snapshot, help="in paper iterations (scaled)")
    p.add_argument("--snapshot-prefix")
    p.add_argument("--solver-mode", choices=("CPU", "GPU"), default=DEFAULTS.solver_mode)
    p.add_argument("--random-seed", type=int)
    p.add_argument("--type", default=DEFAULTS.type, choices=SOLVER_TYPES)
    p.add_argument("--iter-size", type=int, default=DEFAULTS.iter_size)
    p.add_argument("--average-loss", type=int, default=DEFAULTS.average_loss)
    p.add_argument("--momentum", type=float, default=DEFAULTS.momentum)
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    p.add_argument("-o", "--output", help="output prototxt (default: stdout)")
    options.add_version(p)
    return p


def check_options(args):
    """What Caffe would refuse (or train into nonsense with) later, refused now."""
    positive = {"--test-iter": args.test_iter, "--test-interval": args.test_interval,
                "--display": args.display, "--snapshot": args.snapshot,
                "--iter-size": args.iter_size, "--average-loss": args.average_loss}
    if args.max_iter is not None:
        positive["--max-iter"] = args.max_iter
    for flag, value in positive.items():
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if not 0 <= args.momentum < 1:
        raise UserError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.weight_decay < 0:
        raise UserError(f"--weight-decay must not be negative, got {args.weight_decay}")


def main(argv):
    args = parser().parse_args(argv)
    check_options(args)
    schedule = paper_schedule(args.name, args.original_variant)
    opts = SolverOptions(
        net=args.net, scale=args.scale, original_variant=args.original_variant,
        max_iter=args.max_iter, test_iter=args.test_iter, test_interval=args.test_interval,
        display=args.display, snapshot=args.snapshot, snapshot_prefix=args.snapshot_prefix,
        solver_mode=args.solver_mode, random_seed=args.random_seed, type=args.type,
        iter_size=args.iter_size, average_loss=args.average_loss, momentum=args.momentum,
        weight_decay=args.weight_decay)
    solver = build_solver(args.name, opts)
    check(solver)
    write_generated(solver, f"Schedule '{args.name}': {schedule.about}", "gen_solver", argv,
                    args.output)
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
