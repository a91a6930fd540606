"""The study's tables and figures from results made up in the test (values by hand)."""
import csv
import io
import math

from bnface_caffe.study import figures, tables
from bnface_caffe.study.aggregate import summarize
from bnface_caffe.study.plan import QUICK
from test_study_aggregate import result


def test_cell_text():
    assert tables.cell_text(summarize([63000, 70000, 56000]), "iterations", "not reached") == \
        "63,000 ± 7,000"
    assert tables.cell_text(summarize([63000, None, 70000]), "iterations", "not reached") == \
        "66,500 ± 4,950 (2 of 3; 1 not reached)"
    assert tables.cell_text(summarize([None] * 3), "iterations", "not reached") == "not reached (3 of 3)"
    assert tables.cell_text(summarize([63000]), "iterations", "not reached") == "63,000"
    assert tables.cell_text(summarize([0.95, 0.97, 0.99]), "fraction", "x") == "97.00% ± 2.00%"
    assert tables.cell_text(summarize([2.0, 2.5]), "ratio", "x") == "2.25× ± 0.35"
    assert tables.cell_text(summarize([-1.0, -3.0]), "pp", "x") == "-2.00 pp ± 1.41 pp"
    assert tables.cell_text(summarize([]), "pp", "x") == "—"


def made_up_results():
    """Three seeds for two scale sizes and the ablations of the quick study (its cell names
    and scales); the baseline reaches 80% in half the BN runs' speed at 6 identities."""
    grouped = {}
    for cell in QUICK.cells:
        runs = []
        for seed in range(3):
            if cell.name == "scale-6-original":
                m = dict(to_target=[0.8, 1.0, 1.2][seed], best=[0.90, 0.92, 0.94][seed], final=0.9,
                         verification_accuracy=[0.70, 0.80, 0.90][seed], verification_eer=0.1)
            elif cell.name == "scale-6-multistep":
                m = dict(to_target=[0.4, 0.4, None][seed], best=[0.95, 0.95, 0.95][seed], final=0.95,
                         verification_accuracy=0.85, verification_eer=0.1)
            elif cell.name == "scale-12-original" and seed == 0:   # never reached 80%
                m = dict(to_target=None, best=0.7, final=0.7, last_test=2.0)
            elif cell.name == "ablation-baseline-lr0.055" and seed == 1:
                m = dict(to_target=None, best=0.3, final=None, diverged_at=0.2)
            else:
                m = dict(to_target=0.5, best=0.9, final=0.9)
            runs.append(result(seed, scale=1e-5, **m) | {"cell": cell.name, "train_images": 54,
                                                          "seconds": 1.0, "log": "x.log"})
        grouped[cell.name] = runs
    return grouped


def test_markdown_and_csv_tables():
    grouped = made_up_results()
    md = tables.markdown(QUICK, grouped)
    # speed-up at 6 identities, multistep: seeds 0, 1: 80,000/40,000 = 2, 100,000/40,000 = 2.5
    # best accuracy 95% against 90, 92, 94%: +5, +3, +1 pp; verification 85% against 70, 80,
    # 90%: +15, +5, −5 pp
    assert ("| 6 | multistep | 2.25× ± 0.35 (2 of 3; 1 undefined) | +3.00 pp ± 2.00 pp | "
            "+5.00 pp ± 10.00 pp | 3 |") in md
    # at 12 identities seed 0's baseline never reached 80% by its last test (200,000) while
    # the BN run did at 50,000: more than 4× sooner; seeds 1 and 2: 50,000 / 50,000
    assert ("| 12 | multistep | 1.00× ± 0.00 (2 of 3; 1 undefined); in 1 of 3 only BN reached "
            "80%: > 4.00× |") in md
    assert "| undefined (3 of 3) | 3 |" in md   # no verification figures at 12 identities
    # the cells: the baseline's iterations to 80% 80,000 100,000 120,000 → 100,000 ± 20,000
    assert ("| scale-6-original | baseline, original | 6 × 10 | 2 | 3 | 100,000 ± 20,000 | "
            "never stays (3 of 3) | not converged (3 of 3) | 92.00% ± 2.00% | 90.00% ± 0.00% | "
            "80.00% ± 10.00% | 10.00% ± 0.00% | — |") in md
    assert "| not verified (3 of 3) | not verified (3 of 3) | — |" in md
    assert "| ablation-baseline-lr0.055 |" in md and "1 of 3, at 20,000 (seed 1)" in md
    # the ablation table pairs seeds with the BN reference's (scale-6-multistep, 0.95 each):
    # −5, −65, −5 → −25 ± 34.64 pp
    assert "best accuracy − scale-6-multistep's" in md and "| -25.00 pp ± 34.64 pp |" in md
    ablation_rows = [line.split(" | ")[0] for line in md.split("## Ablations")[1].splitlines()
                     if line.startswith("| scale-") or line.startswith("| ablation-")]
    assert ablation_rows == ["| scale-6-original", "| scale-6-multistep", "| ablation-bn-block2-2convs",
                             "| ablation-bn-dropout", "| ablation-baseline-lr0.055", "| ablation-bn-lr0.01"]
    rows = list(csv.DictReader(io.StringIO(tables.table_csv(QUICK, grouped))))
    assert [r["cell"] for r in rows] == [c.name for c in QUICK.cells]
    base = rows[0]
    assert float(base["to_target_mean"]) == 100000 and float(base["to_target_std"]) == 20000
    assert (base["to_target_n"], base["to_target_missing"], base["seeds"]) == ("3", "0", "3")
    ms = rows[1]
    assert (ms["to_target_n"], ms["to_target_missing"], ms["to_target_std"]) == ("2", "1", "0.0")
    scale = list(csv.DictReader(io.StringIO(tables.scale_csv(QUICK, grouped))))
    assert float(scale[0]["speedup_mean"]) == 2.25
    assert math.isclose(float(scale[0]["speedup_std"]), 0.5 / math.sqrt(2))
    assert (scale[0]["speedup_lower_bound_n"], scale[2]["speedup_lower_bound_n"]) == ("0", "1")
    assert float(scale[2]["speedup_lower_bound_min"]) == 4.0
    runs = list(csv.DictReader(io.StringIO(tables.runs_csv(QUICK, grouped))))
    assert len(runs) == 3 * len(QUICK.cells)
    diverged = next(r for r in runs if r["cell"] == "ablation-baseline-lr0.055" and r["seed"] == "1")
    assert (diverged["to_target"], diverged["final"], float(diverged["diverged_at"])) == ("", "", 20000)


def test_figures_plot_the_means_with_their_spread():
    grouped = made_up_results()
    fig = figures.speedup_figure(QUICK, grouped)
    ax = fig.axes[0]
    # one error-bar line per BN schedule; at 6 identities multistep's mean is 2.25
    bars = {c.get_label(): c for c in ax.containers}
    multistep = bars["multistep (mean ± std over seeds)"]
    assert list(multistep.lines[0].get_ydata()) == [2.25, 1.0]   # 12 identities: 0.5 / 0.5
    # its error bar spans mean ± std: 2.25 ± 0.354
    segments = multistep.lines[2][0].get_segments()
    assert math.isclose(segments[0][0][1], 2.25 - 0.5 / math.sqrt(2))
    assert math.isclose(segments[0][1][1], 2.25 + 0.5 / math.sqrt(2))
    gap = figures.gap_figure(QUICK, grouped).axes[0]
    means = {c.get_label(): list(c.lines[0].get_ydata()) for c in gap.containers}
    assert math.isclose(means["multistep (mean ± std over seeds)"][0], 3.0)   # +3 pp, 6 identities
    verified = figures.gap_figure(QUICK, grouped).axes[1]
    means = {c.get_label(): list(c.lines[0].get_ydata()) for c in verified.containers}
    assert math.isclose(means["multistep (mean ± std over seeds)"][0], 5.0)   # verification
    assert figures.PAPER_SPEEDUP == 64000 / 45000
    assert math.isclose(figures.PAPER_GAP_PP, -3.2)
    bars = figures.ablation_figure(QUICK, grouped)
    widths = [p.get_width() for p in bars.axes[1].patches]
    assert len(widths) == 6 and math.isclose(widths[-2], 100 * (0.9 + 0.3 + 0.9) / 3)
