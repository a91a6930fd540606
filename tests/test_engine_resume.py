"""Exact resume (engine/resume.py + the sidecar): a run resumed from a snapshot in the middle
of an epoch, with mirror, crop and dropout drawing random numbers, ends with the
uninterrupted run's weights bit for bit and writes the same log lines; without its sidecar
(or with one of another state) it resumes as Caffe does and says so."""
import json
import os
import re
import shutil

import numpy as np
import pytest

from bnface_caffe.engine import train as train_module
from bnface_caffe.engine.data_reader import BadRecord
from bnface_caffe.engine.signals import NONE, SNAPSHOT
from bnface_caffe.engine.train import TrainOptions, train
from bnface_caffe.errors import UserError
from bnface_caffe.formats import glog
from bnface_caffe.formats.lmdb_io import LmdbWriter
from solver_fixtures import make_lmdb, make_setup

BODY = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (\S+:\d+)\] (.*)$")

# 40 records, batch 8: 5 iterations per epoch, so the snapshots at 3, 6, 9, 12 are all in the
# middle of an epoch. The test net reads 3 × 10 of its 20 records per test (tests at 5, 10,
# 15), so its cursor matters too. average_loss 4 smooths the displayed loss over a window.
SOLVER = {"snapshot": 3, "max_iter": 15, "average_loss": 4, "test_iter": [3],
          "test_initialization": False, "snapshot_prefix": "snap/toy"}
RANDOM_NET = {"mirror": True, "crop": 6, "dropout": 0.3}


def run(folder, log_name, bn=True, solver=None, observer=None, **options):
    """Train in-process in `folder`; returns (loop, [(file:line, message)])."""
    os.chdir(folder)
    path = make_setup(folder, dict(SOLVER, **(solver or {})), bn=bn, **RANDOM_NET)
    log = glog.Glog(stderr=False)
    if os.path.exists(log_name):
        os.remove(log_name)
    log.add_file(log_name)
    try:
        loop = train(TrainOptions(path, **options), observer=observer, log=log)
    finally:
        log.close()
    lines = [BODY.match(raw).groups() for raw in open(log_name).read().splitlines()
             if BODY.match(raw)]
    return loop, lines


def weights(loop):
    return [p.data.clone().numpy() for p in loop.net.learnable_params]


def assert_same_weights(a, b):
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(x, y)


def timing_free(lines):
    """Messages with the display line's rate and lapse taken out (they are timings)."""
    return [(where, re.sub(r" \([^)]*iter/s[^)]*\)", "", message)) for where, message in lines]


def after_snapshot(lines, state):
    i = max(i for i, (_, m) in enumerate(lines)
            if m == f"Snapshotting solver state to binary proto file {state}")
    return timing_free(lines[i + 1:])


def after_start(lines):
    """A resumed run's lines from its first iteration on (after Solve's two header lines)."""
    i = [m for _, m in lines].index("Starting Optimization")
    return timing_free(lines[i + 3:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run per net (BatchNorm and baseline), each with its snapshot folder
    kept aside so tests can resume from copies."""
    out = {}
    for bn in (True, False):
        folder = tmp_path_factory.mktemp("bn" if bn else "baseline")
        loop, lines = run(folder, "straight.log", bn=bn)
        shutil.copytree(folder / "snap", folder / "straight_snap")
        out[bn] = (folder, loop, lines)
    return out


def fresh_snapshots(folder):
    shutil.rmtree(folder / "snap", ignore_errors=True)
    shutil.copytree(folder / "straight_snap", folder / "snap")


@pytest.mark.parametrize("bn, at", [(True, 6), (False, 9)], ids=["bn-at-6", "baseline-at-9"])
def test_resume_mid_epoch_is_bit_exact_with_the_same_log(runs, bn, at):
    folder, straight, straight_lines = runs[bn]
    fresh_snapshots(folder)
    state = f"snap/toy_iter_{at}.solverstate"
    resumed, lines = run(folder, f"resume{at}.log", bn=bn, snapshot=state)
    assert resumed.solver.iter == 15
    assert_same_weights(straight, resumed)
    messages = [m for _, m in lines]
    assert ("Exact resume: data positions, random states and the smoothed loss restored from "
            f"snap/toy_iter_{at}.resume.json") in messages
    # every line after the snapshot, the data layer's restarts and the tests included
    expected = after_snapshot(straight_lines, state)
    assert after_start(lines) == expected
    assert any("Restarting data prefetching" in m for _, m in expected)
    assert any(m.startswith("Iteration 10, Testing net") for _, m in expected)


def test_without_its_sidecar_a_resume_is_caffes(runs):
    folder, straight, _ = runs[True]
    fresh_snapshots(folder)
    os.remove(folder / "snap/toy_iter_6.resume.json")
    resumed, lines = run(folder, "caffe_like.log", snapshot="snap/toy_iter_6.solverstate")
    assert ("resume.py:1", "Resuming as Caffe does (data from the first record, new random "
            "draws, an empty loss window): no snap/toy_iter_6.resume.json beside the solver "
            "state") in lines
    # Caffe's resume reads the epoch from its start again: the weights differ
    assert not all(np.array_equal(x, y) for x, y in zip(weights(straight), weights(resumed)))


def test_a_sidecar_of_another_state_is_ignored(runs):
    folder, _, _ = runs[True]
    fresh_snapshots(folder)
    shutil.copy(folder / "snap/toy_iter_3.resume.json", folder / "snap/toy_iter_6.resume.json")
    _, lines = run(folder, "foreign.log", snapshot="snap/toy_iter_6.solverstate")
    warned = [m for w, m in lines if w == "resume.py:1"]
    assert len(warned) == 1
    assert ("ignoring snap/toy_iter_6.resume.json: it was written for another "
            "toy_iter_3.solverstate (its SHA-256 differs)") in warned[0]
    assert not any(m.startswith("Exact resume") for m in warned)


def test_a_malformed_sidecar_is_one_clear_error(runs):
    folder, _, _ = runs[True]
    fresh_snapshots(folder)
    path = folder / "snap/toy_iter_6.resume.json"
    document = json.loads(path.read_text())
    del document["rng"]
    path.write_text(json.dumps(document))
    with pytest.raises(UserError) as err:
        run(folder, "malformed.log", snapshot="snap/toy_iter_6.solverstate")
    assert str(err.value) == ("snap/toy_iter_6.resume.json: a malformed resume sidecar "
                              "(KeyError: 'rng'); delete it to resume as Caffe does")


class HangUpDuringTest:
    """SignalActions stand-in: one SIGHUP (snapshot) arriving during the test at `at`."""

    def __init__(self, at):
        self.at, self.armed = at, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def iteration(self, it, loss):     # the observer: armed once iteration `at` is reached
        self.armed = self.armed or it == self.at

    def tested(self, i, outputs):
        pass

    def requested_action(self):
        if self.armed:
            self.armed, self.at = False, None
            return SNAPSHOT
        return NONE


def test_a_snapshot_taken_while_testing_resumes_exactly(runs, monkeypatch):
    folder, straight, straight_lines = runs[True]
    fresh_snapshots(folder)
    hangup = HangUpDuringTest(10)
    monkeypatch.setattr(train_module, "SignalActions", lambda *a: hangup)
    interrupted, lines = run(folder, "hup.log", observer=hangup)
    assert_same_weights(straight, interrupted)        # a snapshot does not disturb the run
    body = [m for _, m in lines]
    testing = body.index("Iteration 10, Testing net (#0)")
    assert body[testing + 1] == "Snapshotting to binary proto file snap/toy_iter_10.caffemodel"
    monkeypatch.undo()
    resumed, lines = run(folder, "after_hup.log", snapshot="snap/toy_iter_10.solverstate")
    assert_same_weights(straight, resumed)
    # the resumed run repeats the whole test at 10 that the snapshot interrupted
    i = max(i for i, (_, m) in enumerate(straight_lines) if m.startswith("Iteration 9, lr"))
    assert after_start(lines) == timing_free(straight_lines[i + 1:])


def test_a_bad_record_stops_with_a_snapshot_and_the_fixed_run_resumes_exactly(runs, tmp_path):
    _, straight, _ = runs[True]
    # the same toy set with record 37 (iteration 4's batch) replaced by garbage
    make_lmdb(tmp_path / "good_lmdb", 40, seed=1)
    good = dict(_records(tmp_path / "good_lmdb"))
    make_setup(tmp_path, SOLVER, **RANDOM_NET)      # test_lmdb, net and solver
    _write_lmdb(tmp_path / "train_lmdb", {**good, b"00000037": b"\x08garbage"})
    with pytest.raises(BadRecord) as failure:
        run(tmp_path, "bad.log")
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("train_lmdb record '00000037': not a serialized caffe.Datum")
    assert ("the run's state at iteration 4 is in snap/toy_iter_4.solverstate: fix the data, "
            "then resume with --snapshot snap/toy_iter_4.solverstate (or --resume)") in message
    # fixed, the run goes on from iteration 4 as if nothing had happened
    _write_lmdb(tmp_path / "train_lmdb", good)
    resumed, _ = run(tmp_path, "fixed.log", resume=True)
    assert_same_weights(straight, resumed)


def _records(path):
    import lmdb
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        records = list(txn.cursor())
    env.close()
    return records


def _write_lmdb(path, records):
    shutil.rmtree(path, ignore_errors=True)
    with LmdbWriter(str(path)) as db:
        for key, value in sorted(records.items()):
            db.put(key.decode(), value)


def test_the_data_layers_position_is_the_next_batch_not_the_prefetch_threads(tmp_path):
    from bnface_caffe.engine.net import Net
    from bnface_caffe.formats import prototxt
    from bnface_caffe.proto import caffe_pb2
    from solver_fixtures import net_text
    make_lmdb(tmp_path / "train_lmdb", 40, seed=1)
    make_lmdb(tmp_path / "test_lmdb", 20, seed=2)
    os.chdir(tmp_path)
    param = prototxt.parse_text(net_text("train_lmdb", "test_lmdb", mirror=True, crop=6),
                                caffe_pb2.NetParameter)
    net = Net(param, phase=caffe_pb2.TRAIN, logger=glog.Glog.silent())
    data = net.nodes[0].layer
    start = data.resume_state()
    assert start["offset"] == 0
    batches = [net.nodes[0].layer.forward([])[0].numpy().copy() for _ in range(6)]
    position = data.resume_state()           # the thread has read up to 4 batches further
    assert position["offset"] == 48 and bytes.fromhex(position["next_key"]) == b"00000008"
    # a second net put at that position gives batch 7 onwards, mirror and crop draws included
    again = Net(param, phase=caffe_pb2.TRAIN, logger=glog.Glog.silent())
    again.nodes[0].layer.restore_resume_state(position)
    following = net.nodes[0].layer.forward([])[0].numpy()
    np.testing.assert_array_equal(again.nodes[0].layer.forward([])[0].numpy(), following)
    # and put back at the start it repeats the first batches
    again.nodes[0].layer.restore_resume_state(start)
    np.testing.assert_array_equal(again.nodes[0].layer.forward([])[0].numpy(), batches[0])
    net.close()
    again.close()


def test_hdf5_snapshots_resume_exactly_too(runs, tmp_path):
    _, straight, _ = runs[True]
    hdf5 = {"snapshot_format": "HDF5"}
    uninterrupted, _ = run(tmp_path, "h5.log", solver=hdf5)
    assert_same_weights(straight, uninterrupted)
    os.remove(tmp_path / "snap/toy_iter_15.solverstate.h5")     # as if killed before it
    resumed, lines = run(tmp_path, "h5_from_12.log", solver=hdf5, resume=True)
    messages = [m for _, m in lines]
    assert ("--resume: the newest complete snapshot of snap/toy is "
            "snap/toy_iter_12.solverstate.h5") in messages
    assert ("Exact resume: data positions, random states and the smoothed loss restored from "
            "snap/toy_iter_12.resume.json") in messages
    assert_same_weights(straight, resumed)


def test_data_layers_without_a_resume_state_are_named():
    from types import SimpleNamespace
    from bnface_caffe.engine import resume

    def node(name, type_, stateful):
        layer = SimpleNamespace(name=name, type=type_)
        if stateful:
            layer.resume_state = lambda: {}
        return SimpleNamespace(layer=layer)
    train_net = SimpleNamespace(nodes=[node("data", "Data", True), node("ip", "InnerProduct", False)])
    test_net = SimpleNamespace(nodes=[node("images", "ImageData", False), node("in", "Input", False)])
    loop = SimpleNamespace(net=train_net, test_nets=[test_net])
    assert [(label, layer.name) for label, layer in resume.layers_left_out(loop)] == [
        ("test#0", "images")]
    assert [(label, layer.name) for label, layer in resume.data_layers(loop)] == [
        ("train", "data")]
