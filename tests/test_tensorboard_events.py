"""TensorBoard scalars from Caffe logs (parse_log.py --tensorboard) and from training
(train.py --tensorboard, engine and pycaffe backends), read back with tensorboard's own
reader: tag names, steps and values are the log's, as written in its lines."""
import os
import re

import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from bnface_caffe.cli import parse_log, train  # noqa: E402
from conftest import assert_one_line_status, call_main  # noqa: E402
from solver_fixtures import make_setup  # noqa: E402
from test_backends import train as train_subprocess  # noqa: E402
from test_caffelog import FULL_LOG, write  # noqa: E402


def scalars(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})   # 0: keep all
    events.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def steps_values(points):
    return [(step, pytest.approx(value, rel=1e-6)) for step, value, _ in points]


def test_a_caffe_log_converted_to_tensorboard_scalars(tmp_path, capsys):
    log = write(tmp_path, FULL_LOG)   # Caffe master's lines, values read off FULL_LOG by hand
    status, stdout, _ = call_main(parse_log.main, [log, "--tensorboard", tmp_path / "tb"], capsys)
    assert status == 0 and "scalars to" in stdout
    got = scalars(tmp_path / "tb")
    assert sorted(got) == ["iterations_per_second", "learning_rate", "test/accuracy", "test/loss",
                           "train/accuracy", "train/loss", "train/smoothed_loss"]
    expected = {
        "train/accuracy": [(0, 0.125), (50, 0.375), (100, 0.5), (150, 0.625)],
        "train/loss": [(0, 2.6), (50, 1.8), (100, 1.5), (150, 1.125)],
        "train/smoothed_loss": [(0, 2.6), (50, 1.9), (100, 1.5), (150, 1.25), (200, 1.0)],
        "learning_rate": [(0, 0.1), (50, 0.1), (100, 0.05), (150, 0.025)],
        "iterations_per_second": [(0, 0.0), (50, 5.0), (100, 5.0), (150, 5.0)],
        "test/accuracy": [(0, 0.1), (100, 0.5), (200, 0.75)],
        "test/loss": [(0, 2.5), (100, 1.25), (200, 0.75)],
    }
    for tag, points in expected.items():
        assert steps_values(got[tag]) == points, tag
    # wall times are the lines' time stamps: the tests at 19:35:21.0, 19:35:41.5, 19:36:02.6
    times = [t for _, _, t in got["test/accuracy"]]
    assert [round(b - a, 3) for a, b in zip(times, times[1:])] == [20.5, 21.1]


def test_a_second_test_net_gets_its_own_tags(tmp_path, capsys):
    text = ("I0501 08:00:00.000000  5 solver.cpp:289] Solving n\n"
            "I0501 08:00:01.000000  5 solver.cpp:347] Iteration 0, Testing net (#0)\n"
            "I0501 08:00:01.100000  5 solver.cpp:414]     Test net output #0: acc = 0.25\n"
            "I0501 08:00:01.200000  5 solver.cpp:347] Iteration 0, Testing net (#1)\n"
            "I0501 08:00:01.300000  5 solver.cpp:414]     Test net output #0: acc = 0.5\n")
    log = write(tmp_path, text)
    status, _, _ = call_main(parse_log.main, [log, "--tensorboard", tmp_path / "tb", "-q"], capsys)
    got = scalars(tmp_path / "tb")
    assert status == 0 and sorted(got) == ["test/acc", "test1/acc"]
    assert steps_values(got["test1/acc"]) == [(0, 0.5)]


def test_a_file_in_the_way_is_one_line(tmp_path, capsys):
    log = write(tmp_path, FULL_LOG)
    (tmp_path / "tb").write_text("")
    status, _, err = call_main(parse_log.main, [log, "--tensorboard", tmp_path / "tb"], capsys)
    assert_one_line_status(status, err, "--tensorboard", "is a file")


def values_in(log_text, pattern):
    """(iteration, value) of each line matching `pattern` (group 1: iteration or None, 2: value),
    with the iteration of the latest 'Iteration N' line when the pattern has none."""
    out, iteration = [], None
    for line in log_text.splitlines():
        m = re.search(r"Iteration (\d+)", line)
        if m:
            iteration = int(m.group(1))
        m = re.search(pattern, line)
        if m:
            out.append((iteration, pytest.approx(float(m.group(1)), rel=1e-6)))
    return out


def check_against_log(events, log_text):
    assert {"train/loss", "train/smoothed_loss", "learning_rate", "iterations_per_second",
            "test/accuracy", "test/loss"} <= set(events)
    pairs = [(step, value) for step, value, _ in events["train/loss"]]
    assert pairs == values_in(log_text, r"Train net output #\d+: loss = (\S+)")
    assert [(s, v) for s, v, _ in events["test/accuracy"]] == \
        values_in(log_text, r"Test net output #\d+: accuracy = (\S+)")
    assert [(s, v) for s, v, _ in events["learning_rate"]] == values_in(log_text, r", lr = (\S+)")
    assert [(s, v) for s, v, _ in events["iterations_per_second"]] == \
        values_in(log_text, r"\((\S+) iter/s")


def test_engine_training_writes_the_scalars_of_its_log(tmp_path, capsys, monkeypatch):
    make_setup(tmp_path, {"max_iter": 6, "snapshot": 0, "test_interval": 3, "display": 2,
                          "snapshot_after_train": False})
    monkeypatch.chdir(tmp_path)
    status, _, _ = call_main(train.main, ["solver.prototxt", "--backend", "engine", "-q",
                                          "--log", "run.log", "--tensorboard", "tb"], capsys)
    assert status == 0
    events = scalars(tmp_path / "tb")
    check_against_log(events, (tmp_path / "run.log").read_text())
    assert [s for s, _, _ in events["test/accuracy"]] == [0, 3, 6]


@pytest.mark.slow
def test_pycaffe_backend_writes_the_scalars_of_caffes_lines(tmp_path):
    # the stand-in `caffe` logs to fd 2 as C++ glog does: the writer reads that stream
    make_setup(tmp_path, {"max_iter": 4, "snapshot": 0, "test_interval": 2, "display": 2,
                          "snapshot_after_train": False})
    done = train_subprocess(tmp_path, "solver.prototxt", "--backend", "caffe", "--log", "c.log",
                            "--tensorboard", "tb")
    assert done.returncode == 0, done.stderr[-2000:]
    check_against_log(scalars(tmp_path / "tb"), (tmp_path / "c.log").read_text())
    assert not os.path.exists(tmp_path / "tb" / "c.log")
