"""The engine on a CUDA device (skipped without one; bench/gpu.sh runs them with `-m cuda`):
faithful mode computes what the CPU computes, fast mode trains, the Data layer's pinned prefetch
feeds the GPU, the fused update and the compiled path match their references there too."""
import os

import pytest
import torch

from bnface_caffe.architectures import NetOptions, build_net, fed_by_input
from bnface_caffe.engine import Net, compiled, precision
from bnface_caffe.engine.solver import Solver
from bnface_caffe.engine.train import TrainOptions, train
from bnface_caffe.formats.glog import Glog
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log
from solver_fixtures import make_setup

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TOY_WIDTHS = (8, 16, 16, 16, 16, 16, 16, 32)


def toy_param(bn, batch=16, classes=8):
    p = build_net(NetOptions(bn=bn, num_classes=classes, widths=TOY_WIDTHS, filler="msra"))
    return fed_by_input(p, batch)


def one_pass(device, bn=True, fast=False, compile=False):
    torch.manual_seed(0)
    net = Net(toy_param(bn), phase=caffe_pb2.TRAIN, device=device, fast=fast,
              logger=captured_log()[0], compile=compile)
    g = torch.Generator().manual_seed(1)
    net.set_input("data", torch.rand(16, 1, 50, 50, generator=g))
    net.set_input("label", (torch.arange(16) % 8).float())
    loss = net.forward_backward()
    return loss, [p.diff.detach().cpu() for p in net.learnable_params], net


def test_faithful_cuda_computes_what_the_cpu_computes():
    cpu_loss, cpu_diffs, _ = one_pass("cpu")
    gpu_loss, gpu_diffs, net = one_pass("cuda")
    assert net.values["fc"].is_cuda
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for a, b in zip(gpu_diffs, cpu_diffs):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("bn", [True, False], ids=["bn", "baseline"])
def test_fast_mode_trains_on_the_gpu(bn):
    torch.manual_seed(0)
    net = Net(toy_param(bn), phase=caffe_pb2.TRAIN, device="cuda", fast=True,
              logger=captured_log()[0])
    labels = torch.arange(16) % 8
    g = torch.Generator().manual_seed(1)
    images = torch.rand(16, 1, 50, 50, generator=g) * 0.2 + labels.view(-1, 1, 1, 1) / 8
    net.set_input("data", images - 0.5)
    net.set_input("label", labels.float())
    solver = Solver(caffe_pb2.SolverParameter(base_lr=0.02, lr_policy="fixed", momentum=0.9,
                                              weight_decay=5e-4), net)
    assert solver.fused
    losses = []
    for _ in range(100):
        net.clear_param_diffs()
        losses.append(net.forward_backward())
        solver.apply_update()
    assert sum(losses[-10:]) / 10 < 0.75 * sum(losses[:3]) / 3, losses
    assert net.values["fc"].dtype == torch.bfloat16


def test_fused_update_on_the_gpu_matches_the_step_by_step_one():
    results = []
    for fused in (True, False):
        torch.manual_seed(2)
        net = Net(toy_param(True), phase=caffe_pb2.TRAIN, device="cuda",
                  logger=captured_log()[0])
        solver = Solver(caffe_pb2.SolverParameter(base_lr=0.05, lr_policy="step", gamma=0.1,
                                                  stepsize=2, momentum=0.9, weight_decay=5e-4),
                        net, fused=fused)
        for p in net.learnable_params:
            p.diff.copy_(torch.randn(p.diff.shape, generator=torch.Generator().manual_seed(3)))
        for _ in range(4):
            solver.apply_update()
        results.append([p.data.cpu() for p in net.learnable_params])
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_training_from_an_lmdb_on_the_gpu(tmp_path, monkeypatch):
    # the Data layer pins batches in its prefetch thread and copies them asynchronously
    solver = make_setup(tmp_path, {"max_iter": 10, "solver_mode": caffe_pb2.SolverParameter.GPU,
                                   "snapshot": 0, "test_interval": 5})
    monkeypatch.chdir(tmp_path)
    log = Glog(stderr=False)
    loop = train(TrainOptions(os.path.basename(solver), device="cuda:0"), log=log)
    assert loop.solver.iter == 10
    assert all(p.data.is_cuda for p in loop.net.learnable_params)
    assert loop.losses and all(torch.isfinite(torch.tensor(loop.losses)))


def test_compiled_net_on_the_gpu_matches_eager(monkeypatch):
    monkeypatch.setenv(compiled.BACKEND_SWITCH, "aot_eager")
    monkeypatch.setattr(compiled, "_probe", {})
    eager_loss, eager_diffs, _ = one_pass("cuda")
    loss, diffs, net = one_pass("cuda", compile=True)
    assert net.compiled_runs
    assert loss == pytest.approx(eager_loss, rel=1e-5)
    for a, b in zip(diffs, eager_diffs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert precision.channels_last(True, "cuda")
