"""The paper's comparison table from runs: iterations to a target accuracy, iterations
to convergence, best accuracy. Markdown and CSV.

Definitions (test points only: Caffe measures accuracy at test iterations, nothing
is known in between):
- iterations to target: the first test iteration whose accuracy is >= target
  (optionally interpolated linearly from the test point before it).
- convergence, with tolerance tol (percentage points, default 0.1): the first test
  iteration after which the best accuracy never improves by more than tol. That is
  the first test whose accuracy is within tol of the run's best. A run whose last
  test is the first to come that close is still improving: "not converged".
- stays at target from: the first test iteration from which every later test is >= target
  (BN runs at a high learning rate can touch the target once and fall back).
- best accuracy: the highest test accuracy, and the first test iteration reaching it.
nan accuracies (a diverged run) are ignored.
"""
import csv
import io
import math

from .paper import RESULTS as PAPER_TABLE  # the paper's "Figure 2" table, for comparison
TINY = 1e-12  # so that "improves by exactly tol" counts as not improving by more than tol


def _finite_points(iters, values):
    return [(i, v) for i, v in zip(iters, values) if not math.isnan(v)]


def iterations_to_target(iters, values, target, interpolate=False):
    """First test iteration with accuracy >= target, or None if never reached."""
    points = _finite_points(iters, values)
    for k, (it, v) in enumerate(points):
        if v >= target:
            if interpolate and k > 0:
                it0, v0 = points[k - 1]
                return it0 + (target - v0) * (it - it0) / (v - v0)
            return it
    return None


def iterations_to_stay_at_target(iters, values, target):
    """First test iteration from which every later test is >= target, or None."""
    points = _finite_points(iters, values)
    start = None
    for it, v in points:
        if v >= target:
            start = it if start is None else start
        else:
            start = None
    return start


def best_accuracy(iters, values):
    """(best accuracy, first iteration reaching it), or (None, None) with no finite value."""
    points = _finite_points(iters, values)
    if not points:
        return None, None
    best = max(v for _, v in points)
    return best, next(it for it, v in points if v == best)


def convergence_iteration(iters, values, tolerance_pp=0.1):
    """The first test iteration within tolerance_pp percentage points of the best accuracy,
    provided a later test confirms it; None when the run is still improving (or empty)."""
    points = _finite_points(iters, values)
    if not points:
        return None
    best = max(v for _, v in points)
    k = next(k for k, (_, v) in enumerate(points) if v >= best - tolerance_pp / 100.0 - TINY)
    return points[k][0] if k < len(points) - 1 else None


def summarize(run, target=0.80, tolerance_pp=0.1, interpolate=False):
    """One table row (a dict) for a Run; iteration numbers as logged (not scaled)."""
    best, best_at = best_accuracy(run.test_iters, run.test_values)
    notes = []
    if not run.test_iters:
        notes.append("no test accuracy in the log" if run.metric is None
                     else f"no '{run.metric}' test points")
    return {
        "run": run.label,
        "lr_policy": run.policy,
        "metric": run.metric or "",
        "to_target": iterations_to_target(run.test_iters, run.test_values, target, interpolate),
        "stays_at_target": iterations_to_stay_at_target(run.test_iters, run.test_values, target),
        "to_convergence": convergence_iteration(run.test_iters, run.test_values, tolerance_pp),
        "best": best,
        "best_at": best_at,
        "last_test": run.test_iters[-1] if run.test_iters else None,
        "log": run.path,
        "notes": "; ".join(notes),
    }


def _iters(n, scale):
    return "" if n is None else f"{round(n / scale):,}"


def _percent(x, digits=2):
    return "" if x is None else f"{100 * x:.{digits}f}%"


def _target_text(target):
    return f"{100 * target:g}%"


def _cells(r, scale):
    """The Markdown cells after name and policy: to target, to convergence, best, best at."""
    if r["last_test"] is None:  # nothing measured: say why in the accuracy cell
        return ["", "", "", r["notes"] or "no test points", ""]
    to_target = _iters(r["to_target"], scale) or "not reached"
    stays = _iters(r["stays_at_target"], scale) or "—"
    converged = _iters(r["to_convergence"], scale)
    if r["to_convergence"] is None:
        converged = f"not converged (still improving at {_iters(r['last_test'], scale)})"
    return [to_target, stays, converged, _percent(r["best"]), _iters(r["best_at"], scale)]


def _verification_cells(run, verification):
    """Verification accuracy (mean ± std over folds) and EER of a run, from tools/verify.py's
    metrics.csv rows ({name: row}); blank when the run was not evaluated."""
    v = verification.get(run)
    if not v:
        return ["", ""]
    return [f"{_percent(float(v['accuracy']))} ± {_percent(float(v['accuracy_std']))}",
            _percent(float(v["eer"]))]


def markdown(rows, target, tolerance_pp, scale=1.0, paper=True, verification=None):
    """The table as Markdown, with the definitions above it; with `verification` ({run name:
    tools/verify.py metrics.csv row}) two more columns: verification accuracy and EER."""
    lines = [
        f"Target accuracy {_target_text(target)}. Convergence: the first test iteration after "
        f"which the best test accuracy never improves by more than {tolerance_pp:g} percentage "
        "points (confirmed by a later test).",
    ]
    if scale != 1.0:
        lines.append(f"Iterations are divided by the run's scale {scale:g} (as given to "
                     "gen_solver.py --scale), so they read in the paper's units.")
    if verification is not None:
        lines.append("Verification: same/different pairs of held-out people (bnface-verify: "
                     "accuracy over folds, threshold chosen on the other folds; EER from the "
                     "ROC of all pairs).")
    t = _target_text(target)
    extra = " verification accuracy | EER |" if verification is not None else ""
    lines += ["", f"| run | LR policy | iterations to {t} | stays ≥ {t} from | iterations to "
              f"convergence | best accuracy | best at iteration |{extra}",
              "|---|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if extra else "")]
    for r in rows:
        cells = [r["run"], r["lr_policy"]] + _cells(r, scale)
        if verification is not None:
            cells += _verification_cells(r["run"], verification)
        lines.append("| " + " | ".join(cells) + " |")
    if paper:
        lines += ["", "The paper's table, for comparison (its runs, its units; target 80%):", "",
                  "| run | LR | iterations to 80% | iterations to convergence | max accuracy |",
                  "|---|---|---:|---:|---:|"]
        for name, formula, to80, conv, best in PAPER_TABLE:
            lines.append(f"| {name} | {formula} | {to80:,} | {conv:,} | {_percent(best, 1)} |")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ["run", "lr_policy", "metric", "target", "iterations_to_target",
               "iterations_to_stay_at_target", "iterations_to_convergence", "best_accuracy", "best_iteration",
               "last_test_iteration", "scale", "tolerance_pp", "log", "notes"]


VERIFICATION_COLUMNS = ["verification_accuracy", "verification_accuracy_std", "verification_eer"]


def csv_text(rows, target, tolerance_pp, scale=1.0, verification=None):
    """The table as CSV; iterations divided by `scale` like the Markdown one."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + (VERIFICATION_COLUMNS if verification is not None else []))
    for r in rows:
        def it(n):
            return "" if n is None else round(n / scale)
        writer.writerow([r["run"], r["lr_policy"], r["metric"], target, it(r["to_target"]),
                         it(r["stays_at_target"]), it(r["to_convergence"]), "" if r["best"] is None else r["best"],
                         it(r["best_at"]), it(r["last_test"]), scale, tolerance_pp, r["log"],
                         r["notes"]] + _verification_values(r["run"], verification))
    return out.getvalue()


def _verification_values(run, verification):
    if verification is None:
        return []
    v = verification.get(run) or {}
    return [v.get("accuracy", ""), v.get("accuracy_std", ""), v.get("eer", "")]
