"""tools/parse_log.py, plot_curves.py, report.py: outputs, --follow, and one-line errors."""
import os
import subprocess
import sys
import threading
import time

import pytest

from bnface_caffe.cli import parse_log, plot_curves, report, run
from test_caffelog import FULL_LOG, SHORT_LOG, write
from test_report import glog_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(main, argv, capsys):
    """Run a tool in-process as its wrapper does: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as done:
        run(main, argv)
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def test_parse_log_writes_train_and_test_tables(tmp_path, capsys):
    log = write(tmp_path, SHORT_LOG)
    out = tmp_path / "out"
    out.mkdir()
    status, stdout, _ = call(parse_log.main, [log, str(out)], capsys)
    assert status == 0 and "run.log.train (3 rows)" in stdout
    assert (out / "run.log.train").read_text().splitlines() == [
        "NumIters,Seconds,LearningRate,loss", "0.0,1.1,0.01,2.31",
        "100.0,3.1,0.00992565,0.25", "200.0,6.2,0.00985258,0.125"]
    assert (out / "run.log.test").read_text().splitlines()[2] == "200.0,6.1,0.00985258,0.9712,0.0921"
    # like Caffe's: the rate printed before each row, row 0 taking row 1's
    status, _, _ = call(parse_log.main, [log, str(out), "--like-caffe", "--delimiter", ";"], capsys)
    assert (out / "run.log.train").read_text().splitlines()[1:] == [
        "0.0;1.1;0.01;2.31", "100.0;3.1;0.01;0.25", "200.0;6.2;0.00992565;0.125"]


def test_log_without_test_output_gives_train_table_and_says_so(tmp_path, capsys):
    train_only = "".join(line + "\n" for line in SHORT_LOG.splitlines() if "Test" not in line)
    log = write(tmp_path, train_only, "train_only.log")
    status, stdout, _ = call(parse_log.main, [log], capsys)
    assert status == 0 and "no test output" in stdout
    assert os.path.exists(log + ".train") and not os.path.exists(log + ".test")


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "not a Caffe log"),
    ("just some notes\n", "not a Caffe log"),
    ("I0210 13:39:22.381027 25210 net.cpp:51] Initializing net from parameters:\n", "without training output"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "x.log"
    if content is not None:
        path.write_text(content)
    for main in (parse_log.main, report.main):
        status, _, err = call(main, [str(path)], capsys)
        assert status == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    status, _, err = call(plot_curves.main, [str(path), "-o", str(tmp_path / "c.png")], capsys)
    assert status == 2 and message in err and err.count("\n") == 1


def test_binary_file_and_directory_as_log(tmp_path):
    junk = tmp_path / "model.caffemodel"
    junk.write_bytes(bytes(range(256)) * 40)
    for path, message in ((junk, "not a Caffe log"), (tmp_path, "is a directory")):
        done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "parse_log.py"), str(path)],
                              capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_follow_tracks_a_growing_log(tmp_path):
    path = tmp_path / "growing.log"
    lines = FULL_LOG.splitlines(keepends=True)
    updates = []

    def writer():
        time.sleep(0.05)  # the log appears after the follower started
        with open(path, "w") as f:
            for i, line in enumerate(lines):
                f.write(line[:10])  # half-written lines must wait for their end
                f.flush()
                f.write(line[10:])
                f.flush()
                if i % 10 == 0:
                    time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    stop_at = time.time() + 20
    log = parse_log.follow(str(path), updates.append, interval=0.01, should_stop=lambda: time.time() > stop_at)
    thread.join()
    assert log.done and len(updates) >= 2
    assert [r["NumIters"] for r in updates[-1].train] == [0.0, 50.0, 100.0, 150.0]
    os.utime(path, (time.mktime((2016, 6, 1, 12, 0, 0, 0, 0, -1)),) * 2)
    from bnface_caffe.caffelog import parse_log as parse_whole
    whole = parse_whole(str(path))
    assert log.train == whole.train and log.test == whole.test


def test_follow_cli_stops_at_optimization_done(tmp_path, capsys):
    log = write(tmp_path, FULL_LOG)
    status, stdout, _ = call(parse_log.main, [log, "--follow", "--interval", "0.01"], capsys)
    assert status == 0 and "Optimization Done." in stdout and "test at 200: accuracy 0.75" in stdout
    assert open(log + ".test").read().count("\n") == 4


def test_report_writes_markdown_and_csv(tmp_path, capsys):
    logs = [glog_run(tmp_path, "original", [(0, 0.1), (640, 0.81), (960, 0.9), (1280, 0.9)]),
            glog_run(tmp_path, "multistep", [(0, 0.1), (450, 0.85), (900, 0.91)], policy="multistep")]
    solver = tmp_path / "solver.prototxt"
    solver.write_text('base_lr: 0.055\nlr_policy: "multistep"\ngamma: 0.7\nstepvalue: 140\n')
    out = tmp_path / "table.md"
    status, stdout, _ = call(report.main, logs + ["--target", "80", "--scale", "0.01", "-o", str(out),
                                                  "--label", "baseline", "--label", "multistep"], capsys)
    assert status == 0 and "table.csv" in stdout
    md = out.read_text()
    assert "| baseline | step (base_lr 0.055, gamma 0.7, stepsize 110) | 64,000 | 64,000 | 96,000 | 90.00% | 96,000 |" in md
    assert "| multistep | multistep (base_lr 0.055, gamma 0.7) | 45,000 | 45,000 | not converged" in md
    assert (tmp_path / "table.csv").read_text().splitlines()[0].startswith("run,lr_policy,metric,target")
    status, stdout, _ = call(report.main, [logs[1], "--solver", str(solver), "--no-paper"], capsys)
    assert "multistep (base_lr 0.055, gamma 0.7, 1 step)" in stdout and "paper's table" not in stdout
    status, _, err = call(report.main, [logs[0], "-o", str(tmp_path / "t.txt")], capsys)
    assert status == 2 and "must end in .md or .csv" in err
    status, _, err = call(report.main, [logs[0], "--solver", str(tmp_path / "none.prototxt")], capsys)
    assert status == 2 and "no such file" in err


def test_report_adds_verification_columns(tmp_path, capsys):
    logs = [glog_run(tmp_path, "original", [(0, 0.1), (640, 0.81), (960, 0.9), (1280, 0.9)]),
            glog_run(tmp_path, "multistep", [(0, 0.1), (450, 0.85), (900, 0.91)])]
    metrics = tmp_path / "metrics.csv"      # tools/verify.py's format, one row per model
    metrics.write_text("name,pairs,folds,accuracy,accuracy_std,accuracy_se,auc,eer\n"
                       "original,6000,10,0.9125,0.0123,0.0039,0.97,0.0875\n")
    out = tmp_path / "table.md"
    status, _, _ = call(report.main, logs + ["--verification", str(metrics), "-o", str(out)],
                        capsys)
    assert status == 0
    md = out.read_text()
    assert "best at iteration | verification accuracy | EER |" in md
    assert "| 90.00% | 960 | 91.25% ± 1.23% | 8.75% |" in md
    assert md.count("|---|---|---:|---:|---:|---:|---:|---:|---:|") == 1
    assert [l for l in md.splitlines() if l.startswith("| multistep")][0].endswith("|  |  |")
    rows = (tmp_path / "table.csv").read_text().splitlines()
    assert rows[0].endswith(",verification_accuracy,verification_accuracy_std,verification_eer")
    assert rows[1].endswith(",0.9125,0.0123,0.0875") and rows[2].endswith(",,,")
    metrics.write_text("name,x\nfoo,1\n")
    status, _, err = call(report.main, logs + ["--verification", str(metrics)], capsys)
    assert status == 2 and "not a verify metrics.csv" in err


def test_plot_curves_cli(tmp_path, capsys):
    logs = [glog_run(tmp_path, "original", [(0, 0.1), (100, 0.5)]),
            glog_run(tmp_path, "short_step", [(0, 0.2), (100, 0.7)])]
    out = tmp_path / "demo" / "curves.png"
    status, stdout, _ = call(plot_curves.main, logs + ["-o", str(out), "--loss", "--lr", "--target", "0.8"], capsys)
    assert status == 0 and "2 runs, 6 curves" in stdout and out.stat().st_size > 10000
    status, _, err = call(plot_curves.main, logs + ["-o", str(out), "--target", "180"], capsys)
    assert status == 2 and "--target must be" in err


def test_follow_starts_over_when_the_log_is_truncated(tmp_path):
    path = tmp_path / "restarted.log"
    path.write_text(FULL_LOG.split("I1129 19:35:52")[0])  # a first run, cut short
    polls = []

    def should_stop():
        polls.append(1)
        if len(polls) == 2:  # training restarted into the same file: shorter, then complete
            path.write_text(SHORT_LOG.split("I0210 13:39:27")[0])
        if len(polls) == 4:
            with open(path, "a") as f:
                f.write("I0210 13:39:26.000000 25210 solver.cpp:253] Optimization Done.\n")
        return len(polls) > 50

    log = parse_log.follow(str(path), lambda log: None, interval=0.001, should_stop=should_stop)
    assert log.done and [r["loss"] for r in log.train] == [2.31, 0.25]  # only the second run's rows
    assert list(log.train[0]) == ["NumIters", "Seconds", "LearningRate", "loss"]


# What the README's training example leads to when stopped with Ctrl-C early: one test and
# one display (our engine's lines; Caffe's are the same), then the SIGINT snapshot.
INTERRUPTED_LOG = """\
I0301 09:00:00.000000  42 solver.cpp:45] Initializing solver from parameters: 
base_lr: 0.055
lr_policy: "multistep"
I0301 09:00:01.000000  42 solver.cpp:289] Solving facenet_bn
I0301 09:00:01.000000  42 solver.cpp:290] Learning Rate Policy: multistep
I0301 09:00:01.000000  42 solver.cpp:347] Iteration 0, Testing net (#0)
I0301 09:00:03.500000  42 solver.cpp:414]     Test net output #0: accuracy = 0.0625
I0301 09:00:03.500000  42 solver.cpp:414]     Test net output #1: accuracy_top5 = 0.1875
I0301 09:00:03.500000  42 solver.cpp:414]     Test net output #2: loss = 2.98628 (* 1 = 2.98628 loss)
I0301 09:00:04.000000  42 solver.cpp:239] Iteration 0 (0 iter/s, 2.9s/20 iters), loss = 3.0625
I0301 09:00:04.000000  42 solver.cpp:258]     Train net output #0: loss = 3.0625 (* 1 = 3.0625 loss)
I0301 09:00:04.000000  42 sgd_solver.cpp:112] Iteration 0, lr = 0.055
I0301 09:00:09.000000  42 solver.cpp:464] Snapshotting to binary proto file snapshots/facenet_bn_iter_7.caffemodel
I0301 09:00:09.000000  42 sgd_solver.cpp:284] Snapshotting solver state to binary proto file snapshots/facenet_bn_iter_7.solverstate
I0301 09:00:09.000000  42 solver.cpp:311] Optimization stopped early.
I0301 09:00:09.000000  42 caffe.cpp:259] Optimization Done.
"""


def read_csv(path):
    import csv
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_short_interrupted_log_gives_one_row_in_every_tool(tmp_path, capsys):
    log = write(tmp_path, INTERRUPTED_LOG, "short.log")
    status, stdout, err = call(parse_log.main, [log], capsys)
    assert status == 0 and err == ""
    assert read_csv(log + ".train") == [{"NumIters": "0.0", "Seconds": "3.0", "LearningRate": "0.055",
                                         "loss": "3.0625"}]
    assert read_csv(log + ".test") == [{"NumIters": "0.0", "Seconds": "2.5", "LearningRate": "0.055",
                                        "accuracy": "0.0625", "accuracy_top5": "0.1875",
                                        "loss": "2.98628"}]
    # the report's one run: the one test, best 6.25% at iteration 0
    status, stdout, _ = call(report.main, [log, "-o", str(tmp_path / "t.csv"), "-q"], capsys)
    assert status == 0
    (table,) = read_csv(tmp_path / "t.csv")
    assert (table["best_accuracy"], table["best_iteration"], table["last_test_iteration"]) == ("0.0625", "0", "0")
    # the figure's curves: one test point, one loss point, one rate
    status, stdout, _ = call(plot_curves.main, [log, "-o", str(tmp_path / "c.svg"), "--loss", "--lr"],
                             capsys)
    assert status == 0 and "(1 runs, 3 curves)" in stdout
    # Caffe's parse_log.py drops the last row of each table, here the only one: --like-caffe
    # does the same and says why there is nothing to write
    status, _, err = call(parse_log.main, [log, "--like-caffe"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "leave out --like-caffe" in err


def test_a_line_cut_inside_a_number_is_dropped_with_a_warning(tmp_path, capsys):
    cut_at = INTERRUPTED_LOG.index("2.98628") + len("2.9")   # the log ends in "loss = 2.9"
    log = write(tmp_path, INTERRUPTED_LOG[:cut_at], "cut.log")
    status, _, err = call(parse_log.main, [log], capsys)
    assert status == 0
    (warning,) = err.strip().splitlines()
    assert ": warning: " in warning
    assert "no newline" in warning and warning.endswith("Test net output #2: loss = 2.9")
    (row,) = read_csv(log + ".test")
    assert row == {"NumIters": "0.0", "Seconds": "2.5", "LearningRate": "nan",
                   "accuracy": "0.0625", "accuracy_top5": "0.1875"}
    for main, out in ((report.main, "t.md"), (plot_curves.main, "c.png")):
        status, _, err = call(main, [log, "-o", str(tmp_path / out)], capsys)
        assert status == 0 and err.count("no newline") == 1
