"""HDF5 weights and solver states in Caffe's layout (formats/hdf5.py, with the Net side in
engine/net_weights.py and engine/snapshot.py): the file structure read back with h5py, files
written here with h5py as Caffe writes them, --weights by content, and snapshot_format: HDF5
training resumed from .solverstate.h5."""
import os
import re

import h5py
import numpy as np
import pytest
import torch

from bnface_caffe.engine import Net, net_weights, snapshot
from bnface_caffe.engine.train import TrainOptions, train
from bnface_caffe.errors import UserError
from bnface_caffe.formats import caffemodel, glog, hdf5
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log, messages, net_param
from solver_fixtures import make_setup

NET = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  param { name: "shared_w" } inner_product_param { num_output: 3
  weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }
layer { name: "fc2" type: "InnerProduct" bottom: "fc" top: "fc2"
  param { name: "shared_w" } inner_product_param { num_output: 3
  weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } } }
layer { name: "bn" type: "BatchNorm" bottom: "fc2" top: "bn" }
"""


def quiet_net(text=NET, seed=0):
    torch.manual_seed(seed)
    logger, buffer = captured_log()
    return Net(net_param(text), logger=logger), buffer


def test_caffemodel_h5_layout_owned_blobs_and_diffs(tmp_path):
    net, _ = quiet_net()
    net.set_input("data", np.ones((2, 3), np.float32))
    net.forward_backward()
    path = tmp_path / "w.caffemodel.h5"
    net_weights.to_hdf5(net, str(path), write_diff=True)
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["data", "diff"]
        assert sorted(f["data"]) == ["bn", "data", "fc", "fc2", "relu"]   # every layer
        assert list(f["data/data"]) == [] and list(f["data/relu"]) == []
        assert sorted(f["data/fc"]) == ["0", "1"]
        assert sorted(f["data/fc2"]) == ["1"]          # blob 0 is fc's, written only there
        assert sorted(f["diff/fc2"]) == ["0", "1"]     # diffs are written for every blob
        assert sorted(f["data/bn"]) == ["0", "1", "2"]
        w = f["data/fc/0"]
        assert w.dtype == np.float32 and w.shape == (3, 3)
        np.testing.assert_array_equal(w[()], net.params["fc"][0].detach().numpy())
        np.testing.assert_array_equal(f["diff/fc/0"][()],
                                      net.learnable_params[0].diff.numpy())
        assert f["data/bn/2"].shape == (1,)


def test_weights_round_trip_by_content_and_ignore_unknown_layers(tmp_path):
    source, _ = quiet_net(seed=1)
    path = tmp_path / "weights"                       # no extension: found by its content
    net_weights.to_hdf5(source, str(path))
    assert hdf5.is_hdf5(str(path))
    target, buffer = quiet_net(NET.replace('name: "fc2"', 'name: "other"'), seed=2)
    hdf5._logged_classes.clear()          # as in a fresh process
    target.copy_trained_layers_from_file(str(path))
    for a, b in zip(source.params["fc"], target.params["fc"]):
        assert torch.equal(a, b)
    assert "Ignoring source layer fc2" in messages(buffer)
    assert messages(buffer).count("Datatype class: H5T_FLOAT") == 1   # LOG_FIRST_N


def write_caffe_style(path, layers):
    """An .h5 as Caffe's Net::ToHDF5 writes it: /data/<layer>/<index> float datasets."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for name, blobs in layers.items():
            g = data.create_group(name)
            for i, a in blobs.items():
                g.create_dataset(str(i), data=np.asarray(a, np.float32))


def test_a_caffe_written_file_loads_and_bad_ones_are_one_line_errors(tmp_path):
    w = np.arange(9, dtype=np.float32).reshape(3, 3)
    good = tmp_path / "caffe.caffemodel.h5"
    write_caffe_style(good, {"fc": {0: w, 1: [1, 2, 3]}, "fc2": {1: [4, 5, 6]}})
    net, _ = quiet_net()
    net.copy_trained_layers_from_file(str(good))
    np.testing.assert_array_equal(net.params["fc"][0].detach().numpy(), w)
    np.testing.assert_array_equal(net.params["fc2"][0].detach().numpy(), w)   # shared
    np.testing.assert_array_equal(net.params["fc2"][1].detach().numpy(), [4, 5, 6])
    bad_shape = tmp_path / "bad_shape.h5"
    write_caffe_style(bad_shape, {"fc": {0: np.zeros((3, 4)), 1: [1, 2, 3]}})
    with pytest.raises(UserError, match="blob 0 of layer 'fc'.*source shape 3 4 \\(12\\), "
                                        "target shape 3 3 \\(9\\)"):
        net.copy_trained_layers_from_file(str(bad_shape))
    too_many = tmp_path / "too_many.h5"
    write_caffe_style(too_many, {"fc": {0: w, 1: [1, 2, 3], 2: [0]}})
    with pytest.raises(UserError, match="holds 3 blob.*incompatible number of blobs"):
        net.copy_trained_layers_from_file(str(too_many))
    missing = tmp_path / "missing.h5"
    write_caffe_style(missing, {"fc": {1: [1, 2, 3]}})
    with pytest.raises(UserError, match="has no blob 0, which the net's layer 'fc'"):
        net.copy_trained_layers_from_file(str(missing))
    strings = tmp_path / "strings.h5"
    with h5py.File(strings, "w") as f:
        f.create_group("data/fc").create_dataset("0", data=np.array([b"ab"] * 9).reshape(3, 3))
    with pytest.raises(UserError, match="unsupported datatype class H5T_STRING"):
        net.copy_trained_layers_from_file(str(strings))
    assert net.params["fc"][1].detach().numpy().tolist() == [1, 2, 3]    # nothing half-copied


def test_is_hdf5_finds_the_signature_after_a_user_block(tmp_path):
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["x"] = np.zeros(2)
    assert open(path, "rb").read(8) != hdf5.SIGNATURE
    assert hdf5.is_hdf5(str(path))
    net, _ = quiet_net()
    caffemodel.write(net.to_proto(), str(tmp_path / "binary.caffemodel"))
    assert not hdf5.is_hdf5(str(tmp_path / "binary.caffemodel"))
    assert not hdf5.is_hdf5(str(tmp_path / "absent"))


class FakeSolver:
    def __init__(self, history, it=7, step=2):
        self.iter, self.current_step, self.history = it, step, history
        self.param = caffe_pb2.SolverParameter(type="SGD")


def write_state(solver, path, learned):
    hdf5.write_solverstate(str(path), solver.iter, learned, solver.current_step,
                           [h.numpy() for h in solver.history])


def test_solverstate_h5_layout_as_caffe_writes_it(tmp_path):
    history = [torch.arange(6, dtype=torch.float32).reshape(2, 3), torch.ones(4)]
    path = tmp_path / "s.solverstate.h5"
    write_state(FakeSolver(history), path, "snap/x_iter_7.caffemodel.h5")
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["current_step", "history", "iter", "learned_net"]
        assert f["iter"].dtype == np.int32 and f["iter"].shape == (1,) and f["iter"][0] == 7
        assert f["current_step"][0] == 2
        name = f["learned_net"]
        assert name.shape == () and name.dtype == np.dtype("S28")     # 27 characters + NUL
        assert name.id.get_type().get_strpad() == h5py.h5t.STR_NULLTERM
        assert name[()] == b"snap/x_iter_7.caffemodel.h5"
        assert sorted(f["history"]) == ["0", "1"]
        np.testing.assert_array_equal(f["history/0"][()], history[0].numpy())
    it, learned, step, arrays = hdf5.read_solverstate(str(path), glog.Glog.silent())
    assert (it, learned, step) == (7, "snap/x_iter_7.caffemodel.h5", 2)
    assert [a.shape for a in arrays] == [(2, 3), (4,)]


def test_restore_checks_history_length_and_shapes(tmp_path):
    net, _ = quiet_net()
    path = tmp_path / "s.solverstate.h5"
    write_state(FakeSolver([torch.ones(2)]), path, "nowhere.caffemodel.h5")
    with h5py.File(path, "a") as f:
        del f["learned_net"]                    # Caffe restores weights only when it is there
    target = FakeSolver([torch.zeros(2), torch.zeros(3)], it=0, step=0)
    with pytest.raises(UserError, match="1 history blobs.*keeps 2"):
        snapshot.restore(target, net, str(path))
    target.history = [torch.zeros(3)]
    with pytest.raises(UserError, match="history blob 0.*source shape 2 \\(2\\), target shape 3"):
        snapshot.restore(target, net, str(path))
    target.history = [torch.zeros(2)]
    snapshot.restore(target, net, str(path))
    assert target.iter == 7 and target.current_step == 2
    assert target.history[0].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- training end to end

BODY = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (\S+:\d+)\] (.*)$")


def run(folder, log_name, **options):
    path = make_setup(folder, {"snapshot_format": caffe_pb2.SolverParameter.HDF5, "max_iter": 10, "snapshot": 5,
                               "test_interval": 100})
    log_path = os.path.join(folder, log_name)
    log = glog.Glog(stderr=False)
    log.add_file(log_path)
    try:
        loop = train(TrainOptions(path, **options), log=log)
    finally:
        log.close()
    lines = [BODY.match(x).group(2) for x in open(log_path).read().splitlines() if BODY.match(x)]
    return loop, lines


@pytest.mark.slow
def test_hdf5_snapshots_and_resume_reproduce_the_straight_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    straight, lines = run(tmp_path, "straight.log")
    assert "Snapshotting to HDF5 file snap/toy_iter_5.caffemodel.h5" in lines
    assert ("Snapshotting solver state to HDF5 file snap/toy_iter_5.solverstate.h5"
            in lines)
    assert os.path.exists("snap/toy_iter_10.caffemodel.h5")
    assert not os.path.exists("snap/toy_iter_10.caffemodel")
    resumed, lines = run(tmp_path, "resume.log", snapshot="snap/toy_iter_5.solverstate.h5")
    assert "Resuming from snap/toy_iter_5.solverstate.h5" in lines
    assert resumed.solver.iter == 10
    for a, b in zip(straight.net.learnable_params, resumed.net.learnable_params):
        np.testing.assert_array_equal(a.data.numpy(), b.data.numpy())
    tuned, lines = run(tmp_path, "tune.log", weights="snap/toy_iter_10.caffemodel.h5")
    assert "Finetuning from snap/toy_iter_10.caffemodel.h5" in lines
