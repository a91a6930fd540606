"""SIGKILL at every stage of a snapshot and between snapshots, each time continued with
`tools/train.py --resume`: the chain of runs ends with the uninterrupted run's weights bit for
bit (mirror, crop and dropout on, snapshots in the middle of epochs) and its last run logs
what the uninterrupted run logged."""
import glob
import os
import re
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

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
SOLVER = {"snapshot": 4, "max_iter": 20, "average_loss": 3, "test_iter": [3],
          "test_initialization": False}
RANDOM_NET = {"mirror": True, "crop": 6, "dropout": 0.3}
BODY = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (\S+:\d+)\] (.*)$")


def start(folder, solver, log_name, pause=None, resume=True):
    env = dict(ENV, **({"BNFACE_TEST_SNAPSHOT_PAUSE": str(pause)} if pause else {}))
    err = open(os.path.join(folder, log_name + ".stderr"), "w")
    args = ["--resume"] if resume else []
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "train.py"), solver,
                             "--backend", "engine", "--log", log_name, "-q", *args],
                            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=err)


def kill_when(proc, ready, timeout=180):
    end = time.time() + timeout
    while time.time() < end:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            return
        assert proc.poll() is None, f"the run ended early (status {proc.returncode})"
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("timed out")


def lines_of(path):
    return [BODY.match(raw).groups() for raw in open(path).read().splitlines() if BODY.match(raw)]


def timing_free(lines):
    return [(w, re.sub(r" \([^)]*iter/s[^)]*\)", "", m)) for w, m in lines]


def model_blobs(path):
    net = prototxt.read_binary(str(path), caffe_pb2.NetParameter)
    return [(layer.name, proto_to_array(b)) for layer in net.layer for b in layer.blobs]


@pytest.mark.slow
def test_killed_at_every_stage_and_resumed_ends_as_the_uninterrupted_run(tmp_path):
    make_setup(tmp_path, dict(SOLVER, snapshot_prefix="straight/toy"), name="straight.prototxt",
               **RANDOM_NET)
    make_setup(tmp_path, dict(SOLVER, snapshot_prefix="snap/toy"), name="chain.prototxt",
               **RANDOM_NET)
    straight = start(tmp_path, "straight.prototxt", "straight.log", resume=False)
    snap = tmp_path / "snap"

    def exists(pattern):
        return bool(glob.glob(str(snap / pattern)))

    # 1. while the first snapshot's weights are still under a temporary name
    run = start(tmp_path, "chain.prototxt", "run1.log", pause=1)
    kill_when(run, lambda: exists(".tmp-*-toy_iter_4.caffemodel"))
    # 2. weights and sidecar renamed, the state not yet written: a partial set on disk
    run = start(tmp_path, "chain.prototxt", "run2.log", pause=1)
    kill_when(run, lambda: exists("toy_iter_4.resume.json") and not exists("*toy_iter_4.solverstate"))
    # 3. after complete snapshots (at 4 and 8), before the next one is complete (the pauses
    # make each snapshot take seconds, so the kill cannot miss the window)
    run = start(tmp_path, "chain.prototxt", "run3.log", pause=1)
    kill_when(run, lambda: exists("toy_iter_8.solverstate"))
    # 4. to the end
    run = start(tmp_path, "chain.prototxt", "run4.log")
    assert run.wait(300) == 0, (tmp_path / "run4.log.stderr").read_text()[-2000:]
    assert straight.wait(300) == 0, (tmp_path / "straight.log.stderr").read_text()[-2000:]

    said = {n: [m for _, m in lines_of(tmp_path / f"run{n}.log")] for n in range(2, 5)}
    stale = [m for m in said[2] if m.startswith("Ignoring the stale lock")]
    assert len(stale) == 1 and stale[0].endswith("(no longer running)")
    assert any(re.fullmatch(r"Removed snap/\.tmp-.*-toy_iter_4\.caffemodel, left by an "
                            r"interrupted write", m) for m in said[2])
    for n in (2, 3):
        assert "--resume: no complete snapshot of snap/toy; starting fresh" in said[n]
    assert ("--resume: skipping snap/toy_iter_4.caffemodel, snap/toy_iter_4.resume.json: no "
            ".solverstate (a snapshot cut short)") in said[3]
    resumed_from = [m for m in said[4] if m.startswith("--resume: the newest")][0].split()[-1]
    assert resumed_from == "snap/toy_iter_8.solverstate"
    assert any(m.startswith("Exact resume:") for m in said[4])

    a = model_blobs(tmp_path / "straight/toy_iter_20.caffemodel")
    b = model_blobs(snap / "toy_iter_20.caffemodel")
    assert [n for n, _ in a] == [n for n, _ in b]
    for (name, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y, err_msg=name)
    # the last run logs, from its first iteration, what the uninterrupted run logged
    straight_lines = lines_of(tmp_path / "straight.log")
    state = resumed_from.replace("snap/", "straight/")
    i = max(i for i, (_, m) in enumerate(straight_lines)
            if m == f"Snapshotting solver state to binary proto file {state}")
    last = lines_of(tmp_path / "run4.log")
    j = [m for _, m in last].index("Starting Optimization")
    expected = [(w, m.replace("straight/", "snap/")) for w, m in straight_lines[i + 1:]]
    assert timing_free(last[j + 3:]) == timing_free(expected)
