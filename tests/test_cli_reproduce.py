"""tools/reproduce.py end to end at a toy size (seconds): data, nets, five trained runs,
figures and the paper's table."""
import csv
import json
import os

import matplotlib.image
import pytest

from bnface_caffe.cli.reproduce import apply_overrides, data_folder_name
from bnface_caffe.errors import UserError
from bnface_caffe.reproduce_plan import PLANS, RUNS
from conftest import TINY_PLAN, assert_one_line_error, run_tool


@pytest.mark.slow
def test_pipeline_trains_five_runs_and_writes_the_table(tmp_path):
    out = tmp_path / "out"
    result = run_tool("reproduce", "fast", "--out", out, "--data-root", tmp_path / "data",
                      *TINY_PLAN, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(out / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == [name for name, _, _ in RUNS]
    for row in rows:
        best = float(row["best_accuracy"])
        assert 0 <= best <= 1, row
        assert row["lr_policy"], row
    table = (out / "table.md").read_text()
    assert all(f"| {name} |" in table for name, _, _ in RUNS)
    assert "| verification accuracy | EER |" in table
    for row in rows:                       # every run evaluated on the held-out people
        with open(out / "verification" / row["run"] / "metrics.csv") as f:
            metrics = next(csv.DictReader(f))
        assert metrics["name"] == row["run"] and int(metrics["pairs"]) > 0
        assert row["verification_accuracy"] == metrics["accuracy"]
        assert row["verification_eer"] == metrics["eer"]
        assert 0 < float(metrics["accuracy"]) <= 1 and 0 <= float(metrics["eer"]) < 1
        assert (out / "verification" / row["run"] / "features.npz").stat().st_size > 0
    image = matplotlib.image.imread(str(out / "roc.png"))
    assert image.shape[0] > 300 and image.std() > 0.05
    for figure in ("curves.png", "lr.png"):
        image = matplotlib.image.imread(str(out / figure))
        assert image.shape[0] > 300 and image.std() > 0.05
    info = json.loads((out / "run.json").read_text())
    assert set(info["runs"]) == {name for name, _, _ in RUNS}
    assert info["data"]["classes"] == 6 and info["command"].startswith("bnface-reproduce fast")
    assert all(0 < r["verification"]["auc"] <= 1 for r in info["runs"].values())
    # every run's log is a Caffe log that ends as Caffe's does
    for name, _, _ in RUNS:
        assert (out / "logs" / f"{name}.log").read_text().rstrip().endswith("Optimization Done.")


def test_overrides_and_data_folder_names():
    plan = apply_overrides(PLANS["demo"], ["original_epochs=3", "widths=4,4,4,4,4,4,4,8"])
    assert plan.original_epochs == 3.0 and plan.widths == "4,4,4,4,4,4,4,8"
    assert data_folder_name(plan, None) == "synthetic-50x160-d0.5-s0-h40"
    assert data_folder_name(plan, "/x/CASIA-WebFace/") == "faces-CASIA-WebFace-h40"
    none = apply_overrides(plan, ["holdout_identities=0"])
    assert data_folder_name(none, None) == "synthetic-50x160-d0.5-s0"
    with pytest.raises(UserError, match="KEY=VALUE"):
        apply_overrides(plan, ["bogus=1"])
    with pytest.raises(UserError, match="not a valid float"):
        apply_overrides(plan, ["original_epochs=many"])


def test_scale_covers_the_planned_epochs():
    plan = PLANS["demo"]
    scale = plan.scale(7200)
    assert abs(420000 * scale * plan.batch_size / 7200 - plan.original_epochs) < 1e-9
    assert plan.test_iter(800) == 8 and plan.test_iter(801) == 9


def test_unknown_run_is_a_one_line_error():
    assert_one_line_error(run_tool("reproduce", "fast", "--runs", "original,cosine"), "unknown run(s) cosine")


@pytest.mark.parametrize("flags, fragment", [
    (["--set", "widths=1,2"], "--widths needs 8 conv widths"),
    (["--gpu", "0"], "--gpu 0: no CUDA device"),
])
def test_mistakes_are_refused_before_anything_is_built(tmp_path, capsys, flags, fragment):
    from bnface_caffe.cli import reproduce
    from conftest import assert_one_line_status, call_main
    if flags[0] == "--gpu":
        import torch
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        status, out, err = call_main(reproduce.main, ["fast", *flags], capsys)
    finally:
        os.chdir(cwd)
    assert_one_line_status(status, err, fragment)
    assert os.listdir(tmp_path) == []   # no data, nets, solvers or results


def test_your_table_next_to_the_reference_run(tmp_path):
    from bnface_caffe.cli.reproduce import compare_with_reference
    head = "run,iterations_to_target,iterations_to_stay_at_target,best_accuracy,scale\n"
    yours, reference = tmp_path / "demo", tmp_path / "reference"
    yours.mkdir()
    reference.mkdir()
    (yours / "table.csv").write_text(head + "original,1400,1500,0.9375,0.01\n"
                                            "early_drop,,,0.5,0.01\n")
    (reference / "table.csv").write_text(head + "original,1400,1400,0.9338,0.01\n"
                                                "multistep,700,1540,0.98,0.01\n")
    (reference / "run.json").write_text(json.dumps({"machine": {"cpu": "Some CPU"},
                                                    "date": "2026-11-30T10:00:00", "minutes": 10.8}))
    text = compare_with_reference(str(yours), str(reference))
    lines = text.splitlines()
    assert lines[0] == f"Your run next to the reference run in {reference}/ (Some CPU, 2026-11-30, 10.8 minutes):"
    assert "| original | 140,000 / 140,000 | 150,000 / 140,000 | 93.75% / 93.38% |" in lines
    assert "| multistep | (not run) / 70,000 | (not run) / 154,000 | (not run) / 98.00% |" in lines
    assert "| early_drop | — / (not run) | — / (not run) | 50.00% / (not run) |" in lines
    assert "other CPUs" in lines[-1]
