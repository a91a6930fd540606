"""engine/compiled.py: which layers are compiled together, that a compiled net computes what the
eager one does (losses, gradients, every blob, BatchNorm statistics), and the fallbacks — no
compiler at all, or one run that fails to compile — each one log line, then eager results.

The equality checks use the aot_eager backend (torch's graph capture and autograd, without
code generation: seconds instead of minutes); inductor is timed in bench/bench_net.py."""
import pytest
import torch

from bnface_caffe.architectures import NetOptions, build_net, fed_by_input
from bnface_caffe.engine import Net, compiled
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log, messages

TOY_WIDTHS = (2, 4, 4, 4, 4, 4, 4, 8)


def toy_param(bn, batch=4, classes=6):
    p = build_net(NetOptions(bn=bn, num_classes=classes, widths=TOY_WIDTHS))
    return fed_by_input(p, batch)


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setenv(compiled.BACKEND_SWITCH, "aot_eager")
    monkeypatch.setattr(compiled, "_probe", {})


def train_twice(bn, compile, fast=False):
    """Two forward/backward passes on fixed inputs; (losses, diffs, blobs, BN stats, log)."""
    logger, buffer = captured_log()
    torch.manual_seed(3)
    net = Net(toy_param(bn), phase=caffe_pb2.TRAIN, logger=logger, compile=compile, fast=fast)
    net.set_input("data", torch.rand(4, 1, 50, 50, generator=torch.Generator().manual_seed(4)))
    net.set_input("label", torch.tensor([0.0, 5.0, 2.0, 2.0]))
    losses = []
    for _ in range(2):
        net.clear_param_diffs()
        losses.append(net.forward_backward())
    stats = [b.clone() for n in net.nodes if n.layer.type == "BatchNorm" for b in n.layer.blobs]
    blobs = {name: net.blob(name) for name in net.values}
    return (losses, [p.diff.clone() for p in net.learnable_params], blobs, stats,
            messages(buffer), net)


def test_runs_are_the_consecutive_plain_tensor_layers():
    for bn in (True, False):
        net = Net(toy_param(bn), phase=caffe_pb2.TRAIN, logger=captured_log()[0])
        types = [n.layer.type for n in net.nodes]
        runs = compiled.runs(net.nodes)
        # Input first and the loss last stay eager; the baseline's Dropout cuts the run before
        # its classifier, which alone is too short to compile.
        last = types.index("Dropout") - 1 if not bn else types.index("SoftmaxWithLoss") - 1
        assert runs == [(1, last)], (types, runs)
        assert all(types[i] in compiled.COMPILABLE for i in range(1, last + 1))


@pytest.mark.parametrize("bn", [True, False])
def test_a_compiled_net_computes_what_the_eager_net_does(bn, aot_eager):
    eager = train_twice(bn, compile=False)
    fused = train_twice(bn, compile=True)
    assert fused[5].compiled_runs, "nothing was compiled"
    assert any("Compiling 1 run(s) of layers with torch.compile (backend aot_eager)" in line
               for line in fused[4])
    assert fused[0] == pytest.approx(eager[0], rel=1e-6)
    for a, b in zip(fused[1], eager[1]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert fused[2].keys() == eager[2].keys()          # every blob, as eagerly
    for name in eager[2]:
        assert fused[2][name] == pytest.approx(eager[2][name], rel=1e-5, abs=1e-6), name
    for a, b in zip(fused[3], eager[3]):               # BN statistics updated once per pass
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    if bn:
        factors = [float(s) for s in fused[3][2::3]]
        assert factors == pytest.approx([1 + 0.999] * 4)


def test_no_compiler_means_one_log_line_and_eager_results(monkeypatch):
    def unavailable(fn, backend):
        raise RuntimeError("no C++ compiler found (simulated)")
    monkeypatch.setattr(compiled, "torch_compile", unavailable)
    monkeypatch.setattr(compiled, "_probe", {})
    eager = train_twice(True, compile=False)
    fallback = train_twice(True, compile=True)
    said = [line for line in fallback[4] if "torch.compile" in line or "ompil" in line]
    assert said == ["torch.compile is unavailable here (RuntimeError: no C++ compiler found "
                    "(simulated)); running the layers eagerly"]
    assert fallback[5].compiled_runs == {}
    assert fallback[0] == eager[0]
    for a, b in zip(fallback[1], eager[1]):
        assert torch.equal(a, b)


def test_a_run_that_fails_to_compile_runs_eagerly_after_one_line(monkeypatch):
    # The probe compiles; the net's run does not (as with a layer the compiler cannot capture).
    def picky(fn, backend):
        if getattr(fn, "__name__", "") != "_run":
            return fn
        def fails(*args):
            raise RuntimeError("cannot capture this layer (simulated)")
        return fails
    monkeypatch.setattr(compiled, "torch_compile", picky)
    monkeypatch.setattr(compiled, "_probe", {})
    eager = train_twice(True, compile=False)
    fallback = train_twice(True, compile=True)
    warned = [line for line in fallback[4] if "failed" in line]
    assert warned == ["Compiling layers conv1_1..fc failed (RuntimeError: cannot capture this "
                      "layer (simulated)); running them eagerly"]      # once, not per pass
    assert fallback[0] == eager[0]
    for a, b in zip(fallback[3], eager[3]):            # the failed call updated nothing twice
        assert torch.equal(a, b)
