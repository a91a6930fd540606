"""The paper's table metrics on hand-built curves, and the table from written logs."""
import csv
import io
import math

import pytest

from bnface_caffe import curves, report
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from bnface_caffe.report import best_accuracy, convergence_iteration, iterations_to_target

ITERS = [0, 1000, 2000, 3000, 4000]


def test_target_reached_between_test_points():
    acc = [0.5, 0.7, 0.85, 0.9, 0.91]
    assert iterations_to_target(ITERS, acc, 0.8) == 2000  # the first test at or above it
    # interpolated: 1000 + (0.8 - 0.7) / (0.85 - 0.7) * 1000
    assert iterations_to_target(ITERS, acc, 0.8, interpolate=True) == pytest.approx(1666.6667, rel=1e-6)
    assert iterations_to_target(ITERS, acc, 0.85) == 2000  # exactly on a test point counts
    assert iterations_to_target(ITERS, acc, 0.5, interpolate=True) == 0  # already at the first test


def test_target_never_reached_and_nan_ignored():
    assert iterations_to_target(ITERS, [0.5, 0.6, 0.7, 0.75, 0.79], 0.8) is None
    assert iterations_to_target(ITERS, [0.5, math.nan, 0.9, 0.7, 0.7], 0.8) == 2000
    assert iterations_to_target([], [], 0.8) is None


def test_convergence_is_first_test_within_tolerance_of_the_best():
    # best 0.9008; within 0.1 percentage point means >= 0.8998: the test at 2000 (0.9)
    assert convergence_iteration(ITERS, [0.5, 0.8, 0.9, 0.9005, 0.9008], 0.1) == 2000
    # a wider tolerance converges earlier, a zero tolerance only at the best itself
    assert convergence_iteration(ITERS, [0.5, 0.8, 0.9, 0.9005, 0.9008], 15) == 1000
    assert convergence_iteration(ITERS, [0.5, 0.8, 0.9, 0.9008, 0.9008], 0) == 3000


def test_convergence_edge_cases():
    # still improving by more than the tolerance at the last test: not converged
    assert convergence_iteration(ITERS, [0.5, 0.6, 0.7, 0.8, 0.9], 0.1) is None
    # improving by exactly the tolerance is not "more than" it (0.75 - 0.5 = 25 points)
    assert convergence_iteration([0, 10], [0.5, 0.75], 25) == 0
    # a single test cannot confirm anything; no finite accuracy at all either
    assert convergence_iteration([0], [0.9], 0.1) is None
    assert convergence_iteration([0, 10], [math.nan, math.nan], 0.1) is None
    # a peak followed by worse tests: converged at the peak
    assert convergence_iteration(ITERS, [0.5, 0.9, 0.6, 0.6, 0.6], 0.1) == 1000
    # a late jump of more than the tolerance moves convergence to the jump
    assert convergence_iteration(ITERS, [0.5, 0.9, 0.9, 0.95, 0.95], 0.1) == 3000


def test_best_accuracy_first_time_reached():
    assert best_accuracy(ITERS, [0.5, 0.9, 0.8, 0.9, math.nan]) == (0.9, 1000)
    assert best_accuracy([], []) == (None, None)


def glog_run(tmp_path, name, points, policy="step", header=True):
    """A small Caffe log whose tests give `points` [(iteration, accuracy), ...]."""
    lines = []
    if header:
        lines += ["I0102 10:00:00.000000  9 solver.cpp:45] Initializing solver from parameters: ",
                  "base_lr: 0.055", "gamma: 0.7", "stepsize: 110", f'lr_policy: "{policy}"']
    lines += ["I0102 10:00:00.000000  9 solver.cpp:289] Solving facenet"]
    if header:
        lines += [f"I0102 10:00:00.000000  9 solver.cpp:290] Learning Rate Policy: {policy}"]
    for k, (it, acc) in enumerate(points):
        t = f"I0102 10:{k // 60:02d}:{k % 60:02d}.000000  9"
        lines += [f"{t} solver.cpp:347] Iteration {it}, Testing net (#0)",
                  f"{t} solver.cpp:414]     Test net output #0: accuracy = {acc}",
                  f"{t} solver.cpp:414]     Test net output #1: loss = 1 (* 1 = 1 loss)",
                  f"{t} solver.cpp:239] Iteration {it} (1 iter/s, 1s/10 iters), loss = 1",
                  f"{t} solver.cpp:258]     Train net output #0: loss = 1 (* 1 = 1 loss)",
                  f"{t} sgd_solver.cpp:112] Iteration {it}, lr = 0.055"]
    path = tmp_path / f"{name}.log"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_table_from_logs_markdown_and_csv(tmp_path):
    logs = [glog_run(tmp_path, "original", [(0, 0.1), (320, 0.6), (640, 0.81), (960, 0.9), (1280, 0.9)]),
            glog_run(tmp_path, "short_step", [(0, 0.1), (450, 0.5), (900, 0.7)], policy="multistep")]
    runs = curves.load_runs(logs)
    rows = [report.summarize(r, target=0.80, tolerance_pp=0.1) for r in runs]
    assert [(r["run"], r["to_target"], r["to_convergence"], r["best"], r["best_at"]) for r in rows] == [
        ("original", 640, 960, 0.9, 960), ("short_step", None, None, 0.7, 900)]
    assert rows[0]["lr_policy"] == "step (base_lr 0.055, gamma 0.7, stepsize 110)"
    md = report.markdown(rows, 0.80, 0.1, scale=0.01)
    assert "| original | step (base_lr 0.055, gamma 0.7, stepsize 110) | 64,000 | 64,000 | 96,000 | 90.00% | 96,000 |" in md
    assert "| short_step | multistep (base_lr 0.055, gamma 0.7) | not reached | — | not converged (still improving at 90,000) | 70.00% | 90,000 |" in md
    assert "never improves by more than 0.1 percentage points" in md and "| multistep |" in md  # the paper's rows
    table = list(csv.DictReader(io.StringIO(report.csv_text(rows, 0.80, 0.1, scale=0.01))))
    assert table[0]["iterations_to_target"] == "64000" and table[1]["iterations_to_target"] == ""
    assert table[0]["iterations_to_stay_at_target"] == "64000" and table[1]["iterations_to_stay_at_target"] == ""
    assert table[0]["best_accuracy"] == "0.9" and table[0]["scale"] == "0.01"


def test_policy_from_solver_labels_and_missing_accuracy(tmp_path):
    log = glog_run(tmp_path, "train", [(0, 0.1), (10, 0.2)], header=False)
    solver = caffe_pb2.SolverParameter(lr_policy="multistep", base_lr=0.055, gamma=0.7, stepvalue=[1, 2, 3])
    run = curves.load_runs([log], solvers=[solver])[0]
    assert run.label == tmp_path.name  # a generic file name (train.log) takes its folder's
    assert run.policy == "multistep (base_lr 0.055, gamma 0.7, 3 steps)"
    assert curves.load_runs([log])[0].policy == "unknown"
    assert curves.load_runs([log], labels=["mine"])[0].label == "mine"
    with pytest.raises(UserError, match="--label given 2 times for 1 logs"):
        curves.load_runs([log], labels=["a", "b"])
    with pytest.raises(UserError, match="--label given 1 time for 2 logs"):
        curves.load_runs([log, log], labels=["a"])
    with pytest.raises(UserError, match=r"--test-net 3: the log has test nets #0$"):
        curves.load_runs([log], test_net=3)
    with pytest.raises(UserError, match="no test output named 'top5'"):
        curves.load_runs([log], metric="top5")
    no_test = tmp_path / "notest.log"
    no_test.write_text("I0102 10:00:00.000000  9 solver.cpp:289] Solving n\n" + "".join(
        f"I0102 10:00:0{i}.000000  9 solver.cpp:258]     Train net output #0: loss = 1\n"
        f"I0102 10:00:0{i}.000000  9 sgd_solver.cpp:112] Iteration {i * 10}, lr = 0.1\n" for i in range(3)))
    row = report.summarize(curves.load_runs([str(no_test)])[0])
    assert row["best"] is None and row["notes"] == "no test accuracy in the log"
    assert "| notest | unknown |  |  |  | no test accuracy in the log |  |" in report.markdown([row], 0.8, 0.1)


def test_labels_from_file_names():
    assert curves.label_for("results/demo/short_step.log") == "short_step"
    assert curves.label_for("runs/multistep/train.log") == "multistep"
    assert curves.label_for("a/x.log", taken={"x"}) == "a/x"


def test_stays_at_target_ignores_a_single_touch():
    from bnface_caffe.report import iterations_to_stay_at_target
    acc = [0.5, 0.85, 0.6, 0.81, 0.9]                       # touches at 1000, stays from 3000
    assert iterations_to_stay_at_target(ITERS, acc, 0.8) == 3000
    assert iterations_to_target(ITERS, acc, 0.8) == 1000
    assert iterations_to_stay_at_target(ITERS, [0.9, 0.9, 0.9, 0.9, 0.7], 0.8) is None  # fell at the end
    assert iterations_to_stay_at_target(ITERS, [0.9, math.nan, 0.85, 0.8, 0.8], 0.8) == 0
