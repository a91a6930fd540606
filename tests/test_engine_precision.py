"""engine/precision.py and host_memory.py: fast mode trains the paper's nets (bf16 where the CPU
has it), activations run channels-last on a CPU in both modes without changing a value, and freed
host memory is reused instead of faulted in again."""
import resource
import sys

import pytest
import torch
import torch.nn.functional as F

from bnface_caffe.architectures import NetOptions, build_net, fed_by_input
from bnface_caffe.engine import Net, host_memory, precision
from bnface_caffe.engine.solver import Solver
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log

TOY_WIDTHS = (8, 16, 16, 16, 16, 16, 16, 32)


def toy_param(bn, batch, classes):
    p = build_net(NetOptions(bn=bn, num_classes=classes, widths=TOY_WIDTHS, filler="msra"))
    return fed_by_input(p, batch)


@pytest.mark.parametrize("bf16", ["1", "0"], ids=["bf16-if-the-cpu-has-it", "float32"])
@pytest.mark.parametrize("bn", [True, False], ids=["bn", "baseline"])
def test_fast_mode_trains_the_papers_nets_and_the_loss_falls(bn, bf16, monkeypatch):
    monkeypatch.setenv(precision.CPU_BF16_SWITCH, bf16)
    torch.manual_seed(0)
    batch, classes = 16, 8
    net = Net(toy_param(bn, batch, classes), phase=caffe_pb2.TRAIN, fast=True,
              logger=captured_log()[0])
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(batch) % classes
    # each class a different brightness: learnable by any working net in a few dozen steps
    images = torch.rand(batch, 1, 50, 50, generator=g) * 0.2 + labels.view(-1, 1, 1, 1) / classes
    net.set_input("data", images - 0.5)
    net.set_input("label", labels.float())
    solver = Solver(caffe_pb2.SolverParameter(base_lr=0.02, lr_policy="fixed", momentum=0.9,
                                              weight_decay=5e-4), net)
    losses = []
    for _ in range(100):
        net.clear_param_diffs()
        losses.append(net.forward_backward())
        solver.apply_update()
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:3]) / 3, sum(losses[-10:]) / 10   # the baseline's Dropout: noisy
    assert last < 0.75 * first, losses
    if precision.uses_bf16(True, "cpu"):     # the classifier really ran in bf16
        assert net.values["fc"].dtype == torch.bfloat16
    else:
        assert net.values["fc"].dtype == torch.float32
    assert all(p.data.dtype == torch.float32 for p in net.learnable_params)   # fp32 masters


def test_activations_are_channels_last_on_a_cpu_and_equal_the_nchw_values():
    torch.manual_seed(2)
    net = Net(toy_param(False, 2, 5), phase=caffe_pb2.TRAIN, logger=captured_log()[0])
    x = torch.rand(2, 1, 50, 50)
    net.set_input("data", x)
    net.set_input("label", torch.tensor([1.0, 4.0]))
    net.forward()
    blob = net.values["conv1_1"]      # conv1_1 then the in-place relu1_1, from one-channel data
    n, c, h, w = blob.shape
    assert blob.stride() == (h * w * c, 1, w * c, c)     # explicit NHWC strides
    conv = net.nodes[1].layer
    weight, bias = (b.detach() for b in conv.blobs)
    want = F.relu(F.conv2d(x, weight, bias, padding=1))  # the NCHW computation
    assert torch.allclose(blob, want, rtol=1e-5, atol=1e-6)
    # the weights stay in Caffe's layout (what Param.data, snapshots and pycaffe see)
    assert all(p.data.is_contiguous() for p in net.learnable_params)


def test_channels_last_convolution_gives_the_nchw_numbers():
    torch.manual_seed(3)
    from bnface_caffe.engine.layers.conv import channels_last
    x = torch.randn(3, 1, 9, 9)
    w = torch.randn(4, 1, 3, 3)
    y = F.conv2d(channels_last(x), w, padding=1)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    assert torch.allclose(y, F.conv2d(x, w, padding=1), rtol=1e-5, atol=1e-6)
    x = torch.randn(2, 5, 4, 4)
    once = channels_last(x)
    assert once.stride() == (80, 1, 20, 5) and torch.equal(once, x)
    assert channels_last(once) is once       # already NHWC: no copy


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_host_memory_is_reused_without_new_page_faults():
    assert host_memory.reuse_freed_memory() in (True, False)
    if not host_memory.reuse_freed_memory():
        pytest.skip("this C library has no mallopt")
    pages = 64 * 2**20 // 4096              # a 64 MiB tensor: 16,384 pages if faulted in anew
    for _ in range(2):                      # the first round may grow the heap
        x = torch.empty(16 * 2**20).fill_(1.0)
        del x
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = torch.empty(16 * 2**20).fill_(2.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del y
    assert faults < pages // 10, faults


def test_describe_names_the_numerics_in_one_line(monkeypatch):
    assert precision.describe(False, "cpu") == ("Numerics: faithful (float32, no TF32, "
                                                "deterministic algorithms) on CPU")
    monkeypatch.setenv(precision.CPU_BF16_SWITCH, "0")
    assert precision.describe(True, "cpu") == (
        "Numerics: FAST mode (float32: bf16 autocast off by BNFACE_CPU_BF16=0, channels-last) "
        "on CPU; results differ from Caffe's")
    assert not precision.uses_bf16(True, "cpu")
    assert precision.uses_bf16(True, "cuda") and not precision.uses_bf16(False, "cuda")
    assert precision.channels_last(False, "cpu") and not precision.channels_last(False, "cuda")


def test_accuracy_is_not_rounded_to_bf16_in_fast_mode():
    # 3 right out of 7 = 0.428571...; in bf16 it would read 0.427734375
    from bnface_caffe.engine.layers import create_layer
    from engine_util import layer_param
    layer = create_layer(layer_param('name: "acc" type: "Accuracy" bottom: "s" bottom: "l" '
                                     'top: "acc"'), caffe_pb2.TEST)
    layer.setup([(7, 4), (7,)])
    layer.reshape([(7, 4), (7,)])
    scores = torch.eye(4)[[0, 1, 2, 3, 0, 1, 2]].to(torch.bfloat16)
    labels = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 3.0])
    acc = layer.forward([scores, labels])[0]
    assert acc.dtype == torch.float32
    assert float(acc) == pytest.approx(3 / 7, rel=1e-7)
