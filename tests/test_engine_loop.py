"""The engine's training loop end to end on a toy LMDB: Caffe's sequence and log lines,
lr at every iteration, tests, snapshots, resume, random_seed, average_loss, iter_size."""
import os
import re

import numpy as np
import pytest

from bnface_caffe import schedules
from bnface_caffe.formats import glog, prototxt
from bnface_caffe.errors import UserError
from bnface_caffe.engine.train import TrainOptions, train
from bnface_caffe.proto import caffe_pb2
from solver_fixtures import SOLVER, make_setup

BODY = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (\S+:\d+)\] (.*)$")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("loop")


@pytest.fixture(autouse=True)
def in_folder(folder, monkeypatch):
    monkeypatch.chdir(folder)


def run(folder, overrides=None, log_name="train.log", **options):
    """Train in-process; returns (loop, [(file:line, message)] of the log)."""
    bn = options.pop("bn", True)
    batch = options.pop("batch", 8)
    path = make_setup(folder, overrides, bn=bn, batch=batch)
    log_path = os.path.join(folder, log_name)
    if os.path.exists(log_path):
        os.remove(log_path)
    log = glog.Glog(stderr=False)
    log.add_file(log_path)
    try:
        loop = train(TrainOptions(path, **options), log=log)
    finally:
        log.close()
    lines = []
    for raw in open(log_path).read().splitlines():
        m = BODY.match(raw)
        if m:
            lines.append((m.group(1), m.group(2)))
    return loop, lines


def weights(loop):
    return [p.data.clone().numpy() for p in loop.net.learnable_params]


def messages(lines, where=None):
    """Message texts (of one file:line if given), without the prefetch thread's
    "Restarting data prefetching" lines, which come whenever that thread wraps."""
    return [m for w, m in lines if (where is None or w == where)
            and not m.startswith("Restarting data prefetching")]


@pytest.fixture(scope="module")
def straight(folder):
    """One uninterrupted 20-iteration run shared by several tests."""
    os.chdir(folder)
    return run(folder, log_name="straight.log")


def test_sequence_of_caffe_lines(straight):
    _, lines = straight
    body = messages(lines)
    start = body.index("Solving toy")
    seq = [m for m in body[start:] if re.match(r"Iteration \d+, Testing|Snapshotting to|"
                                               r"Iteration 20, loss|Optimization Done", m)]
    assert seq == ["Iteration 0, Testing net (#0)", "Iteration 5, Testing net (#0)",
                   "Snapshotting to binary proto file snap/toy_iter_10.caffemodel",
                   "Iteration 10, Testing net (#0)", "Iteration 15, Testing net (#0)",
                   "Snapshotting to binary proto file snap/toy_iter_20.caffemodel",
                   "Iteration 20, loss = " + seq[6].split(" = ")[1],
                   "Iteration 20, Testing net (#0)", "Optimization Done.", "Optimization Done."]
    assert body[start + 1] == "Learning Rate Policy: multistep"
    assert ("caffe.cpp:250", "Optimization Done.") == lines[-1]
    assert "Snapshotting solver state to binary proto file snap/toy_iter_10.solverstate" in body
    # one test block = 2 output lines: accuracy, then loss with its weight
    i = body.index("Iteration 5, Testing net (#0)")
    assert re.fullmatch(r"    Test net output #0: accuracy = [\d.e-]+", body[i + 1])
    assert re.fullmatch(r"    Test net output #1: loss = ([\d.e-]+) \(\* 1 = \1 loss\)", body[i + 2])


def test_lr_at_every_iteration_equals_the_schedules_module(straight):
    _, lines = straight
    logged = {int(m.group(1)): m.group(2) for m in
              (re.fullmatch(r"Iteration (\d+), lr = (\S+)", x) for x in messages(lines, "sgd_solver.cpp:112")) if m}
    param = prototxt.parse_text(SOLVER, caffe_pb2.SolverParameter)
    rates, events = schedules.lr_curve(param, 20)
    assert sorted(logged) == list(range(20))
    assert [logged[i] for i in range(20)] == [glog.cpp_number(r) for r in rates]
    # stepvalue 12 twice: the step moves at 12 and again at 13
    assert messages(lines, "sgd_solver.cpp:50") == [
        f"MultiStep Status: Iteration {it}, step = {s}" for it, s in events]
    assert events == [(6, 1), (12, 2), (13, 3)]


def test_display_lines_and_train_outputs(straight):
    loop, lines = straight
    body = messages(lines)
    shown = [m for m in body if re.match(r"Iteration \d+ \(", m)]
    assert len(shown) == 20
    assert re.fullmatch(r"Iteration 3 \([\d.e+-]+ iter/s, [\d.e+-]+s/1 iters\), loss = [\d.e+-]+",
                        shown[3])
    i = body.index(shown[3])
    value = body[i + 1].split(" = ")[1].split(" ")[0]
    assert body[i + 1] == f"    Train net output #0: loss = {value} (* 1 = {value} loss)"
    assert body[i + 2] == "Iteration 3, lr = 0.05"


def test_snapshots_hold_the_run_and_test_net_shares_weights(straight, folder):
    loop, _ = straight
    state = prototxt.read_binary(os.path.join(folder, "snap/toy_iter_20.solverstate"),
                                 caffe_pb2.SolverState)
    assert state.iter == 20 and state.learned_net == "snap/toy_iter_20.caffemodel"
    assert state.current_step == 3 and len(state.history) == len(loop.net.learnable_params)
    model = prototxt.read_binary(os.path.join(folder, state.learned_net), caffe_pb2.NetParameter)
    fc = [l for l in model.layer if l.name == "fc"][0]
    np.testing.assert_array_equal(np.asarray(fc.blobs[0].data, np.float32).reshape(4, -1),
                                  dict(loop.net.params)["fc"][0].detach().numpy())
    # the test net reads the train net's very tensors (BatchNorm statistics included)
    train_blobs = {id(b) for blobs in loop.net.params.values() for b in blobs}
    test_blobs = [b for blobs in loop.test_nets[0].params.values() for b in blobs]
    assert test_blobs and all(id(b) in train_blobs for b in test_blobs)


def test_resume_from_solverstate_reproduces_the_straight_run(straight, folder):
    loop, _ = straight
    resumed, lines = run(folder, log_name="resume.log", snapshot="snap/toy_iter_10.solverstate")
    assert resumed.solver.iter == 20
    for a, b in zip(weights(loop), weights(resumed)):
        np.testing.assert_array_equal(a, b)
    body = messages(lines)
    assert "Resuming from snap/toy_iter_10.solverstate" in body
    assert "SGDSolver: restoring history" in body
    # a restored run at a test_interval multiple tests first, as Caffe does
    assert body[body.index("Learning Rate Policy: multistep") + 1] == "Iteration 10, Testing net (#0)"


def test_random_seed_repeats_and_changes(straight, folder):
    loop, _ = straight
    again, _ = run(folder, log_name="again.log")
    for a, b in zip(weights(loop), weights(again)):
        np.testing.assert_array_equal(a, b)
    other, _ = run(folder, {"random_seed": 8, "max_iter": 1}, log_name="other.log")
    assert not np.array_equal(weights(other)[0], weights(loop)[0])


def test_average_loss_is_caffes_incremental_float32_mean(folder):
    _, plain = run(folder, {"max_iter": 8, "snapshot": 0}, log_name="avg1.log")
    _, smooth = run(folder, {"max_iter": 8, "snapshot": 0, "average_loss": 3}, log_name="avg3.log")
    def shown(lines):
        return [np.float32(m.split("loss = ")[1]) for m in messages(lines, "solver.cpp:239")]
    losses = [np.float32(m.split(" = ")[1].split(" ")[0]) for m in messages(plain, "solver.cpp:258")]
    assert len(losses) == 8
    expected, buffer, s = [], [], np.float32(0)
    for it, loss in enumerate(losses):
        if len(buffer) < 3:
            buffer.append(loss)
            s = np.float32((s * np.float32(len(buffer) - 1) + loss) / np.float32(len(buffer)))
        else:
            s = np.float32(s + (loss - buffer[it % 3]) / np.float32(3))
            buffer[it % 3] = loss
        expected.append(s)
    np.testing.assert_allclose(shown(smooth), expected, rtol=2e-5)


def test_iter_size_accumulates_like_a_bigger_batch(folder):
    # no BatchNorm (its statistics depend on the batch): batch 8 × iter_size 2 == batch 16
    a, _ = run(folder, {"max_iter": 6, "snapshot": 0, "iter_size": 2}, bn=False, log_name="is2.log")
    b, _ = run(folder, {"max_iter": 6, "snapshot": 0}, bn=False, batch=16, log_name="b16.log")
    for x, y in zip(weights(a), weights(b)):
        np.testing.assert_allclose(x, y, rtol=2e-5, atol=2e-6)


def test_log_parsed_by_the_log_parser(straight, folder):
    caffelog = pytest.importorskip("bnface_caffe.caffelog")
    log = caffelog.parse_log(os.path.join(folder, "straight.log"))
    # one train row per displayed iteration (the final forward-only line has no outputs)
    assert [r["NumIters"] for r in log.train] == list(range(20))
    losses = [float(m.split(" = ")[1].split(" ")[0])
              for m in messages(straight[1], "solver.cpp:258")]
    assert [r["loss"] for r in log.train] == pytest.approx(losses, rel=1e-6)
    assert [r["NumIters"] for r in log.test] == [0, 5, 10, 15, 20]
    assert all({"accuracy", "loss", "LearningRate", "Seconds"} <= set(r) for r in log.test)
    lrs = {r["NumIters"]: r["LearningRate"] for r in log.train}
    assert lrs[5] == pytest.approx(0.05) and lrs[6] == pytest.approx(0.025)
    assert lrs[12] == pytest.approx(0.0125) and lrs[13] == pytest.approx(0.00625)


def test_finetune_loads_weights_into_train_and_test_nets(straight, folder):
    tuned, lines = run(folder, {"max_iter": 1, "base_lr": 0.0, "snapshot": 0, "random_seed": 3},
                       log_name="tune.log", weights="snap/toy_iter_20.caffemodel")
    assert messages(lines).count("Finetuning from snap/toy_iter_20.caffemodel") == 2
    trained = dict(straight[0].net.params)["fc"][0].detach().numpy()
    np.testing.assert_array_equal(dict(tuned.net.params)["fc"][0].detach().numpy(), trained)
    with pytest.raises(UserError, match="no such weights file"):
        run(folder, {"max_iter": 1}, log_name="bad.log", weights="snap/nope.caffemodel")


def test_test_compute_loss_logs_the_mean_weighted_loss(folder):
    _, lines = run(folder, {"max_iter": 0, "test_compute_loss": True}, log_name="tl.log")
    body = messages(lines)
    i = body.index("Iteration 0, Testing net (#0)")
    loss = body[i + 1]
    assert loss.startswith("Test loss: ")
    value = loss.split(": ")[1]
    assert body[i + 3] == f"    Test net output #1: loss = {value} (* 1 = {value} loss)"
