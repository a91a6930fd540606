"""A parsed log as the curves a report or a plot needs: one run.

Test accuracy comes from one test net (#0 by default) and one output (the one
named "accuracy", else the first whose name contains "acc"). When a log holds a
restart that went back to an earlier snapshot, the later values of an iteration
replace the earlier ones, so each curve has one point per iteration, in order.
"""
import os

from . import caffelog
from .errors import UserError

GENERIC_STEMS = {"train", "training", "log", "caffe", "output", "out", "stderr", "run"}


class Run:
    """label, policy, and curves as (x, y) lists: test metric, train loss, lr."""

    def __init__(self, label, path, policy, metric, test_iters, test_values, test_seconds,
                 loss_iters, loss_values, loss_seconds, lr_iters, lr_values, log):
        self.label, self.path, self.policy, self.metric = label, path, policy, metric
        self.test_iters, self.test_values, self.test_seconds = test_iters, test_values, test_seconds
        self.loss_iters, self.loss_values, self.loss_seconds = loss_iters, loss_values, loss_seconds
        self.lr_iters, self.lr_values = lr_iters, lr_values
        self.log = log


def label_for(path, taken=()):
    """A run name from its file name: 'runs/short_step.log' -> 'short_step'; a generic name
    such as 'train.log' takes its folder's: 'runs/multistep/train.log' -> 'multistep'."""
    stem = os.path.basename(path)
    for suffix in (".log", ".txt", ".INFO"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    if stem.lower() in GENERIC_STEMS and folder:
        stem = folder
    if stem in taken and folder:
        stem = f"{folder}/{stem}"
    return stem


def pick_metric(names, wanted=None, path=""):
    """The accuracy column among test output `names` (None if there is none)."""
    if wanted:
        if wanted not in names:
            raise UserError(f"{path}: no test output named '{wanted}' "
                            f"(test outputs: {', '.join(names) or 'none'})")
        return wanted
    if "accuracy" in names:
        return "accuracy"
    for name in names:
        if "acc" in name.lower():
            return name
    return None


def describe_policy(policy, solver):
    """'multistep (base_lr 0.055, gamma 0.7, 14 steps)' from a policy name and solver fields."""
    if not policy:
        return "unknown"
    solver = solver or {}
    uses = {"base_lr": True, "gamma": policy in ("step", "multistep", "exp", "inv", "sigmoid"),
            "stepsize": policy in ("step", "sigmoid"), "power": policy in ("inv", "poly")}
    details = [f"{field} {solver[field][-1]}" for field, used in uses.items() if used and field in solver]
    if policy == "multistep" and "stepvalue" in solver:
        n = len(solver["stepvalue"])
        details.append(f"{n} step{'' if n == 1 else 's'}")
    return policy + (f" ({', '.join(details)})" if details else "")


def solver_fields(solver_param):
    """A SolverParameter as the same field -> [values] dict the log printout gives."""
    fields = {}
    for desc, value in solver_param.ListFields():
        values = value if desc.is_repeated else [value]
        fields[desc.name] = ["%g" % v if isinstance(v, float) else str(v) for v in values]
    return fields


def _dedupe(points):
    """Later points of an iteration replace earlier ones (a restart); sorted by iteration."""
    by_iter = {}
    for point in points:
        by_iter[point[0]] = point
    return [by_iter[k] for k in sorted(by_iter)]


def load_run(path, label=None, metric=None, test_net=0, solver=None, log=None):
    """Read one log into a Run. `solver`: a SolverParameter that overrides the log's header."""
    log = log or caffelog.parse_log(path)
    caffelog.check_has_output(log)
    check_test_net(log, test_net, path)
    names = list(dict.fromkeys(name for net, _, _, name, _ in log.test_points if net == test_net))
    metric = pick_metric(names, metric, path)
    test = [(it, value, sec) for net, it, sec, name, value in log.test_points
            if net == test_net and name == metric]
    test = _dedupe(test)
    losses = _dedupe([(it, value, sec) for it, sec, value in log.loss_points])
    rates = _dedupe(log.lr_points)
    fields = solver_fields(solver) if solver is not None else log.solver
    policy = solver.lr_policy if solver is not None else log.policy
    return Run(label or label_for(path), path, describe_policy(policy, fields), metric,
               [p[0] for p in test], [p[1] for p in test], [p[2] for p in test],
               [p[0] for p in losses], [p[1] for p in losses], [p[2] for p in losses],
               [p[0] for p in rates], [p[1] for p in rates], log)


def check_test_net(log, test_net, path):
    """--test-net must name a test net the log reports (an empty row helps nobody)."""
    nets = sorted({net for net, _, _, _, _ in log.test_points})
    if test_net == 0 and not nets:
        return   # no test at all: the run is reported without test figures
    if test_net not in nets:
        have = (f"test nets {', '.join(f'#{n}' for n in nets)}" if nets else "no test output")
        raise UserError(f"{path}: --test-net {test_net}: the log has {have}")


def load_runs(paths, labels=None, metric=None, test_net=0, solvers=None):
    """Several runs; labels from --label (in order) or from the file names, kept distinct."""
    labels = list(labels or [])
    if labels and len(labels) != len(paths):
        raise UserError(f"--label given {len(labels)} time{'s' if len(labels) != 1 else ''} for "
                        f"{len(paths)} logs; give one per log, in order, or none")
    solvers = list(solvers or [])
    if solvers and len(solvers) not in (1, len(paths)):
        raise UserError(f"{len(solvers)} solvers given for {len(paths)} logs (give one, or one per log)")
    runs, taken = [], set()
    for i, path in enumerate(paths):
        label = labels[i] if i < len(labels) else label_for(path, taken)
        taken.add(label)
        solver = solvers[i if len(solvers) > 1 else 0] if solvers else None
        runs.append(load_run(path, label, metric, test_net, solver))
    return runs
