"""Crash-safe snapshots (engine/snapshot.py): the order of the writes, a write that fails
(disk full, I/O error) leaving the previous set intact, partial sets never taken for
complete, --keep-snapshots pruning, leftovers of interrupted writes."""
import errno
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bnface_caffe.engine import snapshot
from bnface_caffe.engine.snapshot import SnapshotFailed
from bnface_caffe.engine.train import TrainOptions, train
from bnface_caffe.formats import caffemodel, glog, prototxt, resume_state, solverstate
from bnface_caffe.formats.blobproto import array_to_proto
from bnface_caffe.proto import caffe_pb2
from conftest import ROOT
from bnface_caffe.engine.net import Net
from engine_util import captured_log, messages, net_param
from solver_fixtures import make_setup

SHORT = {"max_iter": 10, "snapshot": 5, "test_interval": 10, "test_initialization": False,
         "snapshot_prefix": "snap/toy"}


# -- hand-made sets ---------------------------------------------------------------------------
def make_set(prefix, iteration, kinds=("caffemodel", "resume.json", "solverstate"), value=1.0):
    """A small but real snapshot set: one layer with one blob, its state and a sidecar."""
    model_path, state_path = solverstate.snapshot_paths(prefix, iteration)
    net = caffe_pb2.NetParameter(name="n")
    layer = net.layer.add(name="ip", type="InnerProduct")
    layer.blobs.append(array_to_proto(np.full((2, 3), value, np.float32)))
    state = solverstate.make(iteration, model_path, 0, [np.zeros((2, 3), np.float32)])
    if "caffemodel" in kinds:
        caffemodel.write(net, model_path)
    if "resume.json" in kinds:
        resume_state.write({"format": resume_state.FORMAT, "version": 1, "iter": iteration},
                           resume_state.path_for(state_path))
    if "solverstate" in kinds:
        solverstate.write(state, state_path)
    return model_path, state_path


def truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])


def test_newest_complete_skips_partial_and_damaged_sets(tmp_path):
    os.chdir(tmp_path)
    make_set("snap/toy", 10)
    make_set("snap/toy", 15, kinds=("caffemodel", "resume.json"))       # cut before its state
    make_set("snap/toy", 20)
    truncate("snap/toy_iter_20.caffemodel")                               # e.g. by real Caffe
    make_set("snap/toy", 25)
    truncate("snap/toy_iter_25.solverstate")
    make_set("snap/other", 30)                                            # another prefix
    open("snap/.tmp-x1-toy_iter_40.solverstate", "wb").close()             # a temporary name
    log, out = captured_log()
    assert snapshot.newest_complete("snap/toy", log) == "snap/toy_iter_10.solverstate"
    said = messages(out)
    assert len(said) == 3 and all(m.startswith("--resume: skipping ") for m in said)
    assert "snap/toy_iter_25.solverstate: not a binary caffe.SolverState" in said[0]
    assert said[1].startswith("--resume: skipping snap/toy_iter_20.solverstate: "
                              "snap/toy_iter_20.caffemodel: not a binary caffe.NetParameter")
    assert said[2] == ("--resume: skipping snap/toy_iter_15.caffemodel, snap/toy_iter_15.resume.json: "
                       "no .solverstate (a snapshot cut short)")
    assert snapshot.newest_complete("snap/none") is None


def test_prune_keeps_the_newest_and_leaves_other_runs_alone(tmp_path):
    os.chdir(tmp_path)
    for it in (5, 10, 15, 20, 30):
        make_set("snap/toy", it)
    make_set("snap/toy", 12, kinds=("caffemodel",))
    log, out = captured_log()
    snapshot.prune("snap/toy", 2, 20, log)
    assert sorted(snapshot.snapshot_files("snap/toy")) == [15, 20, 30]
    assert all(len(kinds) == 3 for kinds in snapshot.snapshot_files("snap/toy").values())
    assert messages(out) == [f"Removed snapshot {p} (--keep-snapshots 2)" for p in
                             ("snap/toy_iter_12.caffemodel", "snap/toy_iter_10.solverstate",
                              "snap/toy_iter_5.solverstate")]
    snapshot.prune("snap/toy", 1, 20, log)
    assert sorted(snapshot.snapshot_files("snap/toy")) == [20, 30]


def test_leftover_temporaries_of_the_prefix_are_removed(tmp_path):
    os.chdir(tmp_path)
    os.makedirs("snap")
    for name in (".tmp-ab12-toy_iter_5.caffemodel", ".tmp-cd-toy_iter_5.resume.json",
                 ".tmp-x-other_iter_5.caffemodel", "toy_iter_5.caffemodel"):
        open(os.path.join("snap", name), "wb").close()
    log, out = captured_log()
    snapshot.remove_temporaries("snap/toy", log)
    assert sorted(os.listdir("snap")) == [".tmp-x-other_iter_5.caffemodel",
                                          "toy_iter_5.caffemodel"]
    assert len(messages(out)) == 2


TINY_NET = """name: "n"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
  inner_product_param { num_output: 2 weight_filler { type: "constant" value: 1 } } }"""


@pytest.mark.parametrize("hdf5_format", [False, True], ids=["binaryproto", "hdf5"])
def test_the_order_of_a_snapshots_writes(tmp_path, monkeypatch, hdf5_format):
    """weights, sidecar, state; each renamed after the pause hook, its folder fsynced; an
    older state of the same iteration removed first."""
    os.chdir(tmp_path)
    h5 = ".h5" if hdf5_format else ""
    os.makedirs("snap")
    open(f"snap/toy_iter_7.solverstate{h5}", "wb").close()    # an older set's state
    net = Net(net_param(TINY_NET), logger=glog.Glog.silent())
    param = caffe_pb2.SolverParameter(snapshot_format=caffe_pb2.SolverParameter.HDF5
                                      if hdf5_format else caffe_pb2.SolverParameter.BINARYPROTO)
    solver = SimpleNamespace(param=param, iter=7, current_step=2,
                             history=[torch.zeros_like(p.data) for p in net.learnable_params])
    events = []
    real_replace, real_unlink, real_fsync = os.replace, os.unlink, os.fsync
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("rename", b)),
                                                     real_replace(a, b))[1])
    monkeypatch.setattr(os, "unlink", lambda p: (events.append(("delete", p)), real_unlink(p))[1])

    def fsync(fd):
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            events.append(("fsync folder", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(snapshot.time, "sleep", lambda s: events.append(("pause", s)))
    monkeypatch.setenv(snapshot.PAUSE_VARIABLE, "0.5")
    sidecar = {"format": resume_state.FORMAT, "version": 1}
    paths = snapshot.write_snapshot(solver, net, "snap/toy", sidecar=sidecar)
    assert paths == (f"snap/toy_iter_7.caffemodel{h5}", f"snap/toy_iter_7.solverstate{h5}")
    folder = ("fsync folder", "snap")
    assert events == [
        ("delete", f"snap/toy_iter_7.solverstate{h5}"), folder,
        ("pause", 0.5), ("rename", f"snap/toy_iter_7.caffemodel{h5}"), folder, ("pause", 0.5),
        ("pause", 0.5), ("rename", "snap/toy_iter_7.resume.json"), folder, ("pause", 0.5),
        ("pause", 0.5), ("rename", f"snap/toy_iter_7.solverstate{h5}"), folder, ("pause", 0.5)]
    monkeypatch.undo()
    state_bytes = open(f"snap/toy_iter_7.solverstate{h5}", "rb").read()
    written = resume_state.read("snap/toy_iter_7.resume.json")
    assert written["iter"] == 7 and written["solverstate"] == f"toy_iter_7.solverstate{h5}"
    assert resume_state.mismatch(written, state_bytes) is None
    if hdf5_format:
        from bnface_caffe.formats import hdf5
        iteration, learned, step, _ = hdf5.read_solverstate(paths[1], glog.Glog.silent())
        assert (iteration, learned, step) == (7, paths[0], 2)
        layers = dict(hdf5.read_caffemodel(paths[0], glog.Glog.silent()))
        assert layers["ip"][0].tolist() == [[1.0] * 3] * 2
    else:
        state = prototxt.read_binary(paths[1], caffe_pb2.SolverState)
        assert state.iter == 7 and state.current_step == 2
        assert list(caffemodel.read(paths[0]).layer[1].blobs[0].data) == [1.0] * 6
    assert snapshot.newest_complete("snap/toy") == paths[1]


# -- a failing write during training ----------------------------------------------------------
class FailingFile:
    """A file object that writes half its data and then finds the disk full."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)


def _target(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


def fail(monkeypatch, suffix, how):
    """Make the write of the file ending in `suffix` fail `how`."""
    if how == "disk full":
        real = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: (
            FailingFile(real(fd, *a, **k)) if _target(fd).endswith(suffix) else real(fd, *a, **k)))
    elif how == "fsync EIO":
        real = os.fsync

        def fsync(fd):
            if _target(fd).endswith(suffix):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real(fd)
        monkeypatch.setattr(os, "fsync", fsync)
    else:   # the rename
        real = os.replace

        def replace(src, dst):
            if dst.endswith(suffix):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real(src, dst)
        monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("kind, how, reason", [
    ("caffemodel", "disk full", "No space left on device"),
    ("resume.json", "fsync EIO", "Input/output error"),
    ("solverstate", "disk full", "No space left on device"),
    ("solverstate", "rename EIO", "Input/output error")])
def test_a_failed_write_leaves_the_previous_snapshot_intact(tmp_path, monkeypatch, kind, how,
                                                            reason):
    os.chdir(tmp_path)
    path = make_setup(tmp_path, SHORT, bn=False)
    fail(monkeypatch, f"toy_iter_10.{kind}", how)
    log = glog.Glog(stderr=False)
    log.add_file("train.log")
    with pytest.raises(SnapshotFailed) as failure:
        train(TrainOptions(path), log=log)
    log.close()
    monkeypatch.undo()
    assert str(failure.value) == (
        f"snapshot at iteration 10 failed: snap/toy_iter_10.{kind}: cannot write ({reason}); "
        "nothing was written there; the newest complete snapshot is snap/toy_iter_5.solverstate "
        "(resume with --snapshot snap/toy_iter_5.solverstate or --resume)")
    # only the set of iteration 5 is on disk: no temporary, nothing of iteration 10, no lock
    assert sorted(os.listdir("snap")) == ["toy_iter_5.caffemodel", "toy_iter_5.resume.json",
                                          "toy_iter_5.solverstate"]
    assert snapshot.newest_complete("snap/toy") == "snap/toy_iter_5.solverstate"
    resumed = train(TrainOptions(path, resume=True), log=glog.Glog.silent())
    assert resumed.solver.iter == 10


FAILING_RUN = """import errno, os, sys
sys.path.insert(0, {root!r})
real = os.replace
def replace(src, dst):
    if dst.endswith("toy_iter_10.solverstate"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(src, dst)
os.replace = replace
from bnface_caffe.cli import run, train
run(train.main, prog="train.py")
"""


def test_a_full_disk_ends_the_tool_with_one_error_line_and_status_1(tmp_path):
    make_setup(tmp_path, SHORT, bn=False)
    script = tmp_path / "failing_train.py"
    script.write_text(FAILING_RUN.format(root=ROOT))
    result = subprocess.run([sys.executable, str(script), "solver.prototxt", "--backend", "engine",
                             "-q", "--log", "run.log"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    last = result.stderr.strip()
    assert last == ("train.py: error: snapshot at iteration 10 failed: "
                    "snap/toy_iter_10.solverstate: cannot write (No space left on device); "
                    "nothing was written there; the newest complete snapshot is "
                    "snap/toy_iter_5.solverstate (resume with --snapshot "
                    "snap/toy_iter_5.solverstate or --resume)")
    assert sorted(os.listdir(tmp_path / "snap")) == [
        "toy_iter_5.caffemodel", "toy_iter_5.resume.json", "toy_iter_5.solverstate"]
    # the log file ends with the same error, as an E line
    end = open(tmp_path / "run.log").read().splitlines()[-1]
    assert end.startswith("E") and end.endswith("train.py:1] " + last.split("error: ", 1)[1])
