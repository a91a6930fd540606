"""tools/reproduce.py study: the quick study end to end, a re-run of one cell with the command
it printed, seeds that change what they should, and a diverged run recorded as a result."""
import csv
import json
import shlex

import matplotlib.image
import pytest

from bnface_caffe.cli import reproduce, reproduce_study
from bnface_caffe.cli.reproduce import Steps
from bnface_caffe.curves import load_run
from bnface_caffe.study.aggregate import COLUMNS
from bnface_caffe.study.plan import QUICK, Study
from conftest import assert_one_line_error, run_tool
from solver_fixtures import make_setup

# One thread: the toy nets gain nothing from two, and on a loaded machine OpenMP's
# spin-waiting thread team makes tiny ops orders of magnitude slower. Same count every run.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_quick_study_end_to_end_and_a_rerun_of_one_cell(tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    first = run_tool("reproduce", "study", "--quick", "--out", out, "--data-root", data,
                     cwd=tmp_path, timeout=900, env=dict(ONE_THREAD, PYTHONHASHSEED="1"))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # the table: every cell with mean ± std columns over its 3 seeds
    table = (out / "table.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| cell | net, schedule"))
    for column in COLUMNS:
        assert column.label.format(target="80%") in header
    for cell in QUICK.cells:
        row = next(line for line in table.splitlines() if line.startswith(f"| {cell.name} |"))
        assert "±" in row and "| 3 |" in row, row
    assert "## Scale: speed-up and accuracy gaps" in table and "## Ablations" in table
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert [r["cell"] for r in rows] == [c.name for c in QUICK.cells]
    assert all(r["seeds"] == "3" and r["best_n"] == "3" and r["best_std"] != "" for r in rows)
    # every run's final weights verified on the 20 held-out people
    assert all(r["verification_accuracy_n"] == "3" and r["verification_eer_std"] != "" for r in rows)
    result = json.loads((out / "runs/scale-6-original/seed0/result.json").read_text())
    verified = next(csv.DictReader(open(out / "runs/scale-6-original/seed0/verification.csv")))
    assert result["metrics"]["verification_accuracy"] == float(verified["accuracy"])
    assert result["metrics"]["verification_eer"] == float(verified["eer"])
    runs = list(csv.DictReader(open(out / "runs.csv")))
    assert len(runs) == 3 * len(QUICK.cells)
    for figure in ("speedup.png", "accuracy_gap.png", "ablations.png"):
        image = matplotlib.image.imread(str(out / figure))
        assert image.shape[0] > 300 and image.std() > 0.05
    info = json.loads((out / "run.json").read_text())
    assert info["command"].startswith("bnface-reproduce study --quick")
    assert {"date", "minutes", "machine"} <= set(info) and info["machine"]["cpus"] >= 1
    assert len(info["runs"]) == 3 * len(QUICK.cells)
    assert list((out / "snapshots" / "scale-6-original").iterdir())   # the final weights

    # a seed changes the training order (not the split) and the initial weights
    orders = {s: (data / f"synthetic-6x10-d0.5-s0-h20-o{s}") for s in (0, 1)}
    assert (orders[0] / "test.txt").read_text() == (orders[1] / "test.txt").read_text()
    train = [(orders[s] / "train.txt").read_text().splitlines() for s in (0, 1)]
    assert sorted(train[0]) == sorted(train[1]) and train[0] != train[1]
    nets = ["".join(line for line in (out / f"runs/scale-6-multistep/seed{s}/net.prototxt")
                    .read_text().splitlines(True) if not line.startswith("#")) for s in (0, 1)]
    assert "-o0/train_lmdb" in nets[0] and nets[0].replace("-o0/", "-o1/") == nets[1]
    # the held-out people are the same for every seed
    assert (orders[0] / "holdout.txt").read_text() == (orders[1] / "holdout.txt").read_text()
    solvers = [(out / f"runs/scale-6-multistep/seed{s}/solver.prototxt").read_text() for s in (0, 1)]
    assert "random_seed: 0" in solvers[0] and "random_seed: 1" in solvers[1]
    losses = [load_run(str(out / f"runs/scale-6-multistep/seed{s}/train.log")).loss_values
              for s in (0, 1)]
    assert losses[0] and losses[0][0] != losses[1][0]   # at iteration 0 already

    # the printed command re-runs one cell and gives the same numbers (another hash seed:
    # nothing depends on set or dict order), the tables unchanged, run.json untouched
    cell = "ablation-bn-dropout"
    result_path = out / "runs" / cell / "seed2" / "result.json"
    before = json.loads(result_path.read_text())
    command = before["command"]
    assert f"re-run: {command}" in first.stdout
    assert command.startswith(f"bnface-reproduce study --quick --cells {cell} --seeds 2 --out ")
    run_json, table_csv = (out / "run.json").read_text(), (out / "table.csv").read_text()
    again = run_tool("reproduce", *shlex.split(command)[1:], cwd=tmp_path, timeout=600,
                     env=dict(ONE_THREAD, PYTHONHASHSEED="2"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = json.loads(result_path.read_text())
    assert after["metrics"] == before["metrics"] and after["scale"] == before["scale"]
    assert (out / "table.csv").read_text() == table_csv and (out / "table.md").read_text() == table
    assert (out / "run.json").read_text() == run_json
    assert "run.json is written by a run of the whole plan" in again.stdout
    assert "the same numbers as the result it replaces" in again.stdout


def test_a_diverged_run_is_a_result_not_a_crash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = make_setup(tmp_path, {"base_lr": 1e30, "max_iter": 50, "snapshot": 0,
                                   "test_interval": 1})
    seconds, diverged_at = reproduce_study.train(Steps(1), "diverging", solver, "run.log", None)
    assert diverged_at is not None and 0 < diverged_at < 50
    # the engine snapshots the weights that gave the bad loss, at that iteration
    assert (tmp_path / f"snap/toy_iter_{diverged_at}.solverstate").exists()
    assert "diverged" in capsys.readouterr().out
    study = Study("t", (), (), target=0.5)
    metrics = reproduce_study.measure("run.log", "diverging", study, diverged_at)
    assert metrics["diverged_at"] == diverged_at and metrics["final"] is None
    assert metrics["last_test"] is not None and metrics["last_test"] <= diverged_at
    assert metrics["best"] is not None  # what it reached before


def test_results_of_another_plan_are_left_out(tmp_path):
    cell = QUICK.cells[0]
    good = {"cell": cell.name, "seed": 0, "config": cell.config(), "scale": 1.0, "metrics": {}}
    stale = dict(good, seed=1, config=dict(cell.config(), schedule="short_step"))
    unknown = dict(good, cell="scale-99-original")
    for name, result in (("a/seed0", good), ("a/seed1", stale), ("b/seed0", unknown)):
        reproduce_study.write_json(str(tmp_path / "runs" / name / "result.json"), result)
    grouped, left_out = reproduce_study.load_results(str(tmp_path), QUICK)
    assert grouped == {cell.name: [good]}
    assert sorted(p.split("runs/")[1] for p in left_out) == ["a/seed1/result.json",
                                                              "b/seed0/result.json"]


def test_a_rerun_says_whether_its_numbers_moved():
    old = {"metrics": {"best": 0.9, "to_target": 10}, "scale": 0.5, "torch_threads": 2,
           "date": "d"}
    assert reproduce_study.compare_with_previous(old, dict(old)).startswith("the same numbers")
    moved = dict(old, metrics={"best": 0.91, "to_target": 10}, torch_threads=1)
    text = reproduce_study.compare_with_previous(old, moved)
    assert text.startswith("NOT the numbers") and "best differ" in text and "2 CPU threads" in text


def test_list_and_bad_options(capsys):
    assert reproduce.main(["study", "--list", "--cells", "scale-1000-*", "--seeds", "0"]) == 0
    text = capsys.readouterr().out
    assert "3 cells × 1 seeds" in text and "scale-1000-original" in text and "54000" in text
    assert "113,142 training iterations in all" in text   # 54,000 + 2 × 29,571
    assert reproduce.main(["study", "--list"]) == 0
    text = capsys.readouterr().out
    assert "10 cells × 3 seeds" in text and "72,327 training iterations" in text
    assert "run only when --cells names them: scale-200-original" in text and "scale-1000-original" in text
    assert_one_line_error(run_tool("reproduce", "study", "--cells", "scale-7-*", "--list"),
                          "--cells: scale-7-* matches no cell")
