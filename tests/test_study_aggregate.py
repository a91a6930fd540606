"""Seeds → mean ± sample std, checked against values worked out by hand."""
import math

import pytest

from bnface_caffe.study import aggregate
from bnface_caffe.study.aggregate import COLUMNS, summarize


def result(seed, scale=0.01, **metrics):
    """A run's result.json as the runner writes it (iterations as logged, i.e. scaled)."""
    base = {"to_target": None, "stays_at_target": None, "to_convergence": None, "best": None,
            "best_at": None, "final": None, "last_test": None, "diverged_at": None,
            "verification_accuracy": None, "verification_eer": None}
    base.update(metrics)
    return {"cell": "c", "seed": seed, "scale": scale, "metrics": base}


def test_mean_and_sample_std_by_hand():
    # 63,000 70,000 56,000: mean 63,000; deviations 0, ±7,000 → Σd² = 98e6; / (3 − 1) → 7,000
    s = summarize([63000, 70000, 56000])
    assert (s.mean, s.std, s.n, s.missing) == (63000, 7000, 3, 0)
    # accuracies 95%, 97%, 99%: mean 97%, sample std 2 points
    s = summarize([0.95, 0.97, 0.99])
    assert s.mean == pytest.approx(0.97) and s.std == pytest.approx(0.02)
    # two values: std = |a − b| / √2
    assert summarize([1.0, 4.0]).std == pytest.approx(3 / math.sqrt(2))
    # equal values: exactly their value, exactly no spread
    assert summarize([0.2, 0.2, 0.2]) == aggregate.Summary((0.2, 0.2, 0.2), 3, 0.2, 0.0)


def test_missing_seeds_are_counted_not_averaged():
    # seed 1 never reached the target: mean and std over the other two only
    s = summarize([63000, None, 70000])
    assert (s.mean, s.n, s.missing, s.values) == (66500, 3, 1, (63000.0, 70000.0))
    assert s.std == pytest.approx(3500 * math.sqrt(2))       # √((3,500² + 3,500²) / 1)
    one = summarize([None, 0.9, None])
    assert (one.mean, one.std, one.missing) == (0.9, None, 2)  # one value: no spread
    none = summarize([None, None, None])
    assert (none.mean, none.std, none.n, none.missing) == (None, None, 3, 3)
    assert summarize([]).n == 0


def test_cell_summaries_in_the_papers_units():
    # scale 0.01: 630 logged iterations are 63,000 of the paper's
    runs = [result(2, to_target=560, best=0.99, final=0.98),
            result(0, to_target=630, best=0.95, final=0.95),
            result(1, to_target=None, best=0.97, final=None, diverged_at=800)]
    s = aggregate.cell_summaries(runs)
    assert [c.key for c in COLUMNS] == ["to_target", "stays_at_target", "to_convergence", "best",
                                        "final", "verification_accuracy", "verification_eer"]
    assert s["to_target"].values == (63000.0, 56000.0)          # seed order 0, 2
    assert s["to_target"].mean == 59500 and s["to_target"].missing == 1
    assert s["to_target"].std == pytest.approx(7000 / math.sqrt(2))
    assert s["best"].mean == pytest.approx(0.97) and s["best"].std == pytest.approx(0.02)
    assert s["final"].values == (0.95, 0.98) and s["final"].missing == 1
    assert s["stays_at_target"].missing == 3
    assert aggregate.diverged(runs) == [(1, 80000)]


def test_speedup_and_gap_pair_runs_by_seed():
    baseline = [result(0, to_target=900, best=0.93), result(1, to_target=1000, best=0.94),
                result(2, to_target=None, best=0.70), result(3, to_target=800, best=0.90)]
    bn = [result(0, to_target=450, best=0.95), result(1, to_target=400, best=0.93),
          result(2, to_target=300, best=0.96)]               # no seed 3: left out
    speed = aggregate.paired(baseline, bn, aggregate.speedup)
    # 900/450 = 2.0, 1000/400 = 2.5, seed 2 undefined (the baseline never reached it)
    assert speed.values == (2.0, 2.5) and speed.n == 3 and speed.missing == 1
    assert speed.mean == 2.25 and speed.std == pytest.approx(0.5 / math.sqrt(2))
    gap = aggregate.paired(baseline, bn, aggregate.best_gap_pp)
    # +2, −1 and +26 percentage points
    assert gap.values == pytest.approx((2.0, -1.0, 26.0))
    assert gap.mean == pytest.approx(9.0) and gap.std == pytest.approx(math.sqrt((49 + 100 + 289) / 2))
    # where only BN reached it: a lower bound, the baseline's last test (1,500 → 150,000) ÷ 30,000
    baseline[2]["metrics"]["last_test"] = 1500
    bound = aggregate.paired(baseline, bn, aggregate.speedup_at_least)
    assert bound.values == (5.0,) and bound.missing == 2
    # verification accuracy gaps, as the best accuracy's
    for run, v in zip(baseline + bn, (0.8, 0.9, None, 0.7, 0.85, 0.85, 0.9)):
        run["metrics"]["verification_accuracy"] = v
    vgap = aggregate.paired(baseline, bn, aggregate.verification_gap_pp)
    assert vgap.values == pytest.approx((5.0, -5.0)) and vgap.missing == 1
    # the speed-up compares iterations in the paper's units: different scales cancel out
    assert aggregate.speedup(result(0, scale=0.02, to_target=1800),
                             result(0, scale=0.01, to_target=450)) == 2.0
