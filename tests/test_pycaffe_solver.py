"""caffe.SGDSolver and family on the engine's loop (bnface_caffe/pycaffe/solver.py): a
pycaffe training loop logs and computes what tools/train.py does on the same solver, a Python
Euclidean loss trains as SGD worked out by hand, blobs after step() hold the last pass,
callbacks, snapshots, restore, apply_update, and the class deciding the update rule."""
import re

import numpy as np
import pytest

import bnface_caffe.pycaffe as caffe
from bnface_caffe.cli import train as train_cli
from bnface_caffe.engine.layers import LAYERS
from bnface_caffe.formats.glog import cpp_number
from bnface_caffe.pycaffe import mode
from engine_util import captured_log, messages
from pycaffe_util import caffe_modules_restored, write  # noqa: F401
from solver_fixtures import make_setup

# The smoothed-loss line ("Iteration N (x iter/s, ...), loss = ...") is left out: each
# step(1) starts Caffe's running mean afresh, one Solve keeps it (its float32 updates round).
KEPT = re.compile(r"(Train|Test) net output|Testing net|, lr = ")


@pytest.fixture
def pycaffe_log():
    """pycaffe's process-wide log captured for one test."""
    saved = mode.settings.log
    log, buffer = captured_log()
    mode.settings.log = log
    yield buffer
    mode.settings.log = saved


def loop_lines(text_lines):
    """The loop's lr, output and test lines."""
    return [line for line in text_lines if KEPT.search(line)]


def test_pycaffe_training_loop_equals_tools_train(tmp_path, monkeypatch, pycaffe_log):
    monkeypatch.chdir(tmp_path)
    solver_path = make_setup(tmp_path, {"max_iter": 12, "snapshot": 0, "test_interval": 4})
    caffe.set_random_seed(3)
    caffe.Net("net.prototxt", caffe.TRAIN).save("init.caffemodel")
    log_file = tmp_path / "train.log"
    assert train_cli.main([solver_path, "--backend", "engine", "--weights", "init.caffemodel",
                           "--log", str(log_file), "-q"]) == 0
    logged = loop_lines(line.split("] ", 1)[1] for line in log_file.read_text().splitlines()
                        if "] " in line)
    pycaffe_log.truncate(0)
    solver = caffe.SGDSolver(solver_path)
    solver.net.copy_from("init.caffemodel")
    losses = []
    for _ in range(12):
        solver.step(1)
        losses.append(solver.net.blobs["loss"].data.copy())
    ours = loop_lines(messages(pycaffe_log))
    train_outputs = [line.split(" = ")[1].split(" ")[0] for line in logged
                     if "Train net output" in line]
    assert [cpp_number(loss) for loss in losses] == train_outputs[:12]
    assert ours == logged[:len(ours)] and len(ours) > 30   # lr, outputs, tests: line for line


def test_blobs_after_step_hold_the_last_pass_and_its_gradients(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    solver = caffe.SGDSolver(make_setup(tmp_path, {"max_iter": 4, "snapshot": 0}))
    solver.step(2)
    net = solver.net
    assert solver.iter == 2
    # the second batch: records 8..15 of the toy LMDB, scaled by 1/256
    from bnface_caffe.engine.data_reader import DatumReader
    reader = DatumReader("train_lmdb")
    reader.next_batch(8)
    images, labels = reader.next_batch(8)
    reader.close()
    assert np.allclose(net.blobs["data"].data, images * np.float32(0.00390625))
    assert net.blobs["label"].data.tolist() == labels.tolist()
    # the loss's gradient with respect to the scores, by hand from the blobs: (p - onehot) / N
    fc = net.blobs["fc"].data.astype(np.float64)
    p = np.exp(fc - fc.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = p.copy()
    want[np.arange(8), labels] -= 1
    assert np.allclose(net.blobs["fc"].diff, want / 8, atol=1e-6)
    assert net.blobs["loss"].data == pytest.approx(-np.log(p[np.arange(8), labels]).mean(),
                                                   rel=1e-5)


PYLOSS = '''
import numpy as np
import caffe


class Table(caffe.Layer):
    def setup(self, bottom, top):
        rng = np.random.RandomState(0)
        self.x = rng.randn(4, 3).astype(np.float32)
        self.y = rng.randn(4, 2).astype(np.float32)

    def reshape(self, bottom, top):
        top[0].reshape(4, 3)
        top[1].reshape(4, 2)

    def forward(self, bottom, top):
        top[0].data[...] = self.x
        top[1].data[...] = self.y

    def backward(self, top, propagate_down, bottom):
        pass


class EuclideanLoss(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        self.diff = np.zeros(bottom[0].data.shape, np.float32)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for i, sign in ((0, 1), (1, -1)):
            if propagate_down[i]:
                bottom[i].diff[...] = sign * self.diff / bottom[i].num
'''

REG_NET = """name: "reg"
layer {{ name: "data" type: "Python" top: "x" top: "y"
  python_param {{ module: "pyloss_mod" layer: "Table" }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "pred"
  inner_product_param {{ num_output: 2 }} }}
layer {{ name: "loss" type: "{loss}" bottom: "pred" bottom: "y" top: "loss" loss_weight: 1
  {python} }}
"""
REG_SOLVER = """net: "{net}"
base_lr: 0.1
momentum: 0.9
weight_decay: 0.01
lr_policy: "fixed"
max_iter: 6
display: 0
snapshot_prefix: "reg"
"""


def train_regression(tmp_path, loss_type):
    python = 'python_param { module: "pyloss_mod" layer: "EuclideanLoss" }' \
        if loss_type == "Python" else ""
    net = write(tmp_path, f"reg_{loss_type}.prototxt", REG_NET.format(loss=loss_type, python=python))
    solver = caffe.SGDSolver(write(tmp_path, f"solver_{loss_type}.prototxt",
                                   REG_SOLVER.format(net=net)))
    solver.net.params["ip"][0].data[...] = [[0.1, -0.2, 0.3], [0.0, 0.4, -0.5]]
    solver.net.params["ip"][1].data[...] = [0.2, -0.1]
    losses = []
    for _ in range(6):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data.reshape(-1)[0]))
    return losses, solver


@pytest.mark.parametrize("host_copies", [False, True])
def test_python_euclidean_loss_trains_as_sgd_by_hand(tmp_path, monkeypatch, caffe_modules_restored,
                                                    host_copies):
    """host_copies: every blob keeps a separate host copy, as on a GPU (forced on the CPU)."""
    from bnface_caffe.engine.blob import Storage
    monkeypatch.setattr(Storage, "host_copies_on_cpu", host_copies)
    write(tmp_path, "pyloss_mod.py", PYLOSS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    losses, solver = train_regression(tmp_path, "Python")
    rng = np.random.RandomState(0)
    x = rng.randn(4, 3).astype(np.float32).astype(np.float64)
    y = rng.randn(4, 2).astype(np.float32).astype(np.float64)
    w = np.array([[0.1, -0.2, 0.3], [0.0, 0.4, -0.5]])
    b = np.array([0.2, -0.1])
    hw, hb, want = np.zeros_like(w), np.zeros_like(b), []
    for _ in range(6):    # Caffe's SGD: diff + decay * w, history = m * history + lr * diff
        err = x @ w.T + b - y
        want.append(np.sum(err ** 2) / 4 / 2)
        gw, gb = err.T @ x / 4 + 0.01 * w, err.sum(0) / 4 + 0.01 * b
        hw, hb = 0.9 * hw + 0.1 * gw, 0.9 * hb + 0.1 * gb
        w, b = w - hw, b - hb
    assert np.allclose(losses, want, rtol=1e-5)
    assert np.allclose(solver.net.params["ip"][0].data, w, rtol=1e-5, atol=1e-6)
    if "EuclideanLoss" in LAYERS and not host_copies:   # the built-in loss, where it exists
        builtin, _ = train_regression(tmp_path, "EuclideanLoss")
        assert np.allclose(builtin, losses, rtol=1e-6)


def test_callbacks_snapshot_restore(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = make_setup(tmp_path, {"max_iter": 4, "snapshot": 0, "test_interval": 0,
                                 "test_iter": []})
    solver = caffe.SGDSolver(path)
    seen = []
    solver.add_callback(lambda: seen.append(("start", solver.iter)),
                        lambda: seen.append(("ready", float(solver.net.blobs["loss"].data))))
    solver.step(2)
    assert [s[0] for s in seen] == ["start", "ready", "start", "ready"]
    assert seen[3][1] == pytest.approx(float(solver.net.blobs["loss"].data))
    solver.snapshot()
    assert (tmp_path / "snap" / "toy_iter_2.caffemodel").exists()
    resumed = caffe.SGDSolver(path)
    resumed.restore("snap/toy_iter_2.solverstate")
    assert resumed.iter == 2
    for name in solver.net.params:
        for a, b in zip(solver.net.params[name], resumed.net.params[name]):
            assert np.array_equal(a.data, b.data)


def test_apply_update_and_the_class_decides_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = make_setup(tmp_path, {"max_iter": 4, "snapshot": 0, "momentum": 0.0,
                                 "weight_decay": 0.0, "lr_policy": "fixed", "base_lr": 0.01})
    for cls, want in ((caffe.SGDSolver, -0.02), (caffe.AdaGradSolver, -0.01)):
        solver = cls(path)                           # the file says SGD; the class decides
        w = solver.net.params["fc"][0]
        w.data[...] = 0
        w.diff[...] = 2
        solver.apply_update()
        assert np.allclose(w.data, want, rtol=1e-6) and solver.iter == 1
    assert type(caffe.get_solver(path)) is caffe.SGDSolver
    assert caffe.SGDSolver(path).lr == pytest.approx(0.01)
