"""tools/train.py as a process: SIGINT, SIGHUP, SIGKILL right after a snapshot, a NaN loss."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bnface_caffe.formats import prototxt
from bnface_caffe.formats.blobproto import proto_to_array
from bnface_caffe.proto import caffe_pb2
from conftest import ROOT
from solver_fixtures import make_setup

# One thread each: the 2-core CI machine runs several of these at once.
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
LONG = {"max_iter": 100000}


def start(folder, solver, *args):
    log = open(os.path.join(folder, solver + ".stderr"), "w")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "train.py"), solver,
                             "--backend", "engine", *args], cwd=folder, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=log)


def wait_for(predicate, proc, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early (status {proc.returncode})")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("timed out")


def log_has(folder, name, text):
    path = os.path.join(folder, name)
    return os.path.exists(path) and text in open(path).read()


def model_blobs(path):
    net = prototxt.read_binary(path, caffe_pb2.NetParameter)
    return [(layer.name, proto_to_array(b)) for layer in net.layer for b in layer.blobs]


def state_iter(path):
    return prototxt.read_binary(path, caffe_pb2.SolverState).iter


def test_sigint_snapshots_and_stops_cleanly(tmp_path):
    make_setup(tmp_path, dict(LONG, snapshot=0, test_interval=1000), name="s.prototxt")
    proc = start(tmp_path, "s.prototxt", "--log", "s.log")
    wait_for(lambda: log_has(tmp_path, "s.log", "Iteration 3, lr"), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    text = open(tmp_path / "s.log").read()
    assert "Optimization stopped early." in text and text.rstrip().endswith("Optimization Done.")
    states = sorted(tmp_path.glob("snap/toy_iter_*.solverstate"))
    assert len(states) == 1
    n = state_iter(states[0])
    assert states[0].name == f"toy_iter_{n}.solverstate" and n >= 4
    assert (tmp_path / f"snap/toy_iter_{n}.caffemodel").exists()
    assert "Traceback" not in (tmp_path / "s.prototxt.stderr").read_text()


def test_sighup_snapshots_and_goes_on(tmp_path):
    make_setup(tmp_path, dict(LONG, snapshot=0, test_interval=1000), name="h.prototxt")
    proc = start(tmp_path, "h.prototxt", "--log", "h.log")
    wait_for(lambda: log_has(tmp_path, "h.log", "Iteration 2, lr"), proc)
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(list(tmp_path.glob("snap/toy_iter_*.solverstate"))) == 1, proc)
    first = state_iter(next(tmp_path.glob("snap/toy_iter_*.solverstate")))
    wait_for(lambda: log_has(tmp_path, "h.log", f"Iteration {first + 3}, lr"), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    iters = sorted(state_iter(p) for p in tmp_path.glob("snap/toy_iter_*.solverstate"))
    assert len(iters) == 2 and iters[0] == first and iters[1] >= first + 3


@pytest.mark.slow
def test_resume_after_sigkill_right_after_a_snapshot(tmp_path):
    # the straight run: 20 iterations
    make_setup(tmp_path, {"snapshot_prefix": "straight/toy"}, name="straight.prototxt")
    # a long run, killed as soon as its iteration-10 pair exists
    make_setup(tmp_path, dict(LONG, snapshot_prefix="killed/toy"), name="long.prototxt")
    proc = start(tmp_path, "long.prototxt")
    wait_for(lambda: (tmp_path / "killed/toy_iter_10.solverstate").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    straight = start(tmp_path, "straight.prototxt")
    assert straight.wait(300) == 0
    # every file at a final name is complete (temporary names are the only casualties)
    for path in tmp_path.glob("killed/*.caffemodel"):
        model_blobs(path)
    make_setup(tmp_path, {"snapshot_prefix": "resumed/toy"}, name="resumed.prototxt")
    resumed = start(tmp_path, "resumed.prototxt", "--snapshot", "killed/toy_iter_10.solverstate")
    assert resumed.wait(300) == 0, (tmp_path / "resumed.prototxt.stderr").read_text()[-2000:]
    a = model_blobs(tmp_path / "straight/toy_iter_20.caffemodel")
    b = model_blobs(tmp_path / "resumed/toy_iter_20.caffemodel")
    assert [n for n, _ in a] == [n for n, _ in b]
    for (name, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    make_setup(tmp_path, {"base_lr": 1e30, "max_iter": 50, "snapshot": 0}, name="n.prototxt")
    proc = start(tmp_path, "n.prototxt")
    assert proc.wait(120) == 1
    err = (tmp_path / "n.prototxt.stderr").read_text().strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("train.py: error: iteration ")
    assert "the training loss is nan" in err[-1] or "the training loss is inf" in err[-1]
    n = int(err[-1].split("iteration ")[1].split(":")[0])
    assert (tmp_path / f"snap/toy_iter_{n}.solverstate").exists()
    assert any("training diverged" in line and line.startswith("E") for line in err)
