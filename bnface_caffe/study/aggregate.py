"""Seeds → one figure per cell and column: mean, sample standard deviation and counts.

A run's result (result.json) holds its metrics as logged: iterations in the run's own
(scaled) iterations, accuracies as fractions, None where the quantity does not exist
(the target never reached, never stayed above, still improving at the end, diverged).
Here iterations are divided by the run's scale, so they read in the paper's units, and a
cell's seeds are summarised over the seeds where the quantity exists:

    mean = Σv / k,   std = sqrt(Σ(v − mean)² / (k − 1))   (the sample standard deviation,
                                                          n − 1; none for k < 2)

with k of the n seeds defined and n − k "missing" (counted and shown, never averaged in:
a run that never reached 80% has no iteration count, and inventing one, e.g. max_iter,
would bias the mean). Comparisons between two cells (speed-up, accuracy gap) pair runs by
seed, which share the data order.
"""
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str        # the run's metrics key
    label: str      # table header ({target} is filled in)
    kind: str       # "iterations" (divided by the run's scale) or "fraction" (shown as %)
    missing: str    # what an undefined value means for this column


# The columns of the study's table: the demo's, the final accuracy, and the final weights'
# verification on held-out people (tools/verify.py: 10-fold accuracy and EER). A new column
# is one entry here and its value in each result's metrics.
COLUMNS = (
    Column("to_target", "iterations to {target}", "iterations", "not reached"),
    Column("stays_at_target", "stays ≥ {target} from", "iterations", "never stays"),
    Column("to_convergence", "iterations to convergence", "iterations", "not converged"),
    Column("best", "best accuracy", "fraction", "no test"),
    Column("final", "final accuracy", "fraction", "diverged"),
    Column("verification_accuracy", "verification accuracy", "fraction", "not verified"),
    Column("verification_eer", "verification EER", "fraction", "not verified"),
)


def column(key):
    return next(c for c in COLUMNS if c.key == key)


@dataclass(frozen=True)
class Summary:
    values: tuple         # the defined values, in seed order
    n: int                # runs (seeds)
    mean: float = None
    std: float = None     # sample standard deviation (n − 1); None with fewer than 2 values

    @property
    def missing(self):
        return self.n - len(self.values)


def summarize(values):
    """Summary of per-seed values, None marking a seed where the quantity is undefined."""
    values = list(values)
    defined = tuple(float(v) for v in values if v is not None)
    if not defined:
        return Summary(defined, len(values))
    # statistics sums exactly (fractions): three equal values give their value and 0.0
    std = statistics.stdev(defined) if len(defined) > 1 else None
    return Summary(defined, len(values), statistics.mean(defined), std)


def value(result, column):
    """A run's value for a column, iterations in the paper's units (whole ones, as report.py
    gives them); None if undefined."""
    v = result["metrics"].get(column.key)
    if v is None:
        return None
    return round(v / result["scale"]) if column.kind == "iterations" else v


def by_seed(results):
    return {r["seed"]: r for r in sorted(results, key=lambda r: r["seed"])}


def cell_summaries(results, columns=COLUMNS):
    """{column key: Summary} over one cell's runs."""
    runs = list(by_seed(results).values())
    return {c.key: summarize(value(r, c) for r in runs) for c in columns}


def paired(results_a, results_b, compare):
    """Summary of compare(run_a, run_b) over the seeds both cells ran (None: undefined)."""
    a, b = by_seed(results_a), by_seed(results_b)
    return summarize(compare(a[s], b[s]) for s in sorted(set(a) & set(b)))


def speedup(baseline, bn):
    """How many times sooner the BN run reaches the target: baseline's iterations ÷ BN's
    (paper units, so runs at one data size compare directly); None if either never did."""
    base, fast = (value(r, column("to_target")) for r in (baseline, bn))
    return None if base is None or fast is None else base / fast


def speedup_at_least(baseline, bn):
    """Where only the BN run reached the target, the speed-up is more than the baseline's
    last test ÷ the BN run's iterations: that lower bound; None otherwise."""
    base, fast = (value(r, column("to_target")) for r in (baseline, bn))
    last = baseline["metrics"].get("last_test")
    if base is not None or fast is None or last is None:
        return None
    return round(last / baseline["scale"]) / fast


def gap_pp(key):
    """compare(baseline, bn): BN's value of metrics[key] minus the baseline's, in percentage
    points; None if either has none."""
    def compare(baseline, bn):
        a, b = baseline["metrics"].get(key), bn["metrics"].get(key)
        return None if a is None or b is None else 100.0 * (b - a)
    return compare


best_gap_pp = gap_pp("best")                                     # test accuracy
verification_gap_pp = gap_pp("verification_accuracy")            # held-out people


def diverged(results):
    """(seed, iteration in the paper's units) of the runs that diverged."""
    return [(r["seed"], round(r["metrics"]["diverged_at"] / r["scale"]))
            for r in by_seed(results).values() if r["metrics"].get("diverged_at") is not None]
