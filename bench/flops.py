"""Training FLOPs of a net, layer by layer, from its prototxt (through the engine's set-up, which
gives every blob's shape and which layers and blobs need a backward pass).

Counted: the multiply-adds of Convolution, Deconvolution and InnerProduct, two FLOPs each, as
GEMM and convolution peaks are counted. Per layer: forward = 2·MACs; backward = 2·MACs for the
gradient of the bottom (only when the bottom needs one: not for the first convolution on the
data) + 2·MACs for the weight gradient (only when the weights learn). Not counted: biases,
BatchNorm, Scale, ReLU, pooling, softmax, the update; their work is memory traffic, a few
operations per element, which the peak figures do not measure. So "GFLOP/s" here is the rate of
the arithmetic a peak kernel could do, and time spent elsewhere shows up as a lower % of peak.

    python bench/flops.py [--net bn|baseline] [--batch 64] [--classes 14700]
"""
import argparse
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

COUNTED = ("Convolution", "Deconvolution", "InnerProduct")


@dataclass
class LayerFlops:
    name: str
    type: str
    forward: int
    backward: int

    @property
    def total(self):
        return self.forward + self.backward


def multiply_adds(layer, bottom_shape, top_shape):
    """MACs of one forward pass of a counted layer."""
    kind = layer.type
    if kind == "InnerProduct":
        outer = 1
        for d in bottom_shape[:layer.axis]:
            outer *= d
        return outer * layer.K * layer.num_output
    kernel = 1
    for k in layer.kernel:
        kernel *= k
    if kind == "Convolution":   # every output value: (C_in/group)·k² MACs
        outputs = 1
        for d in top_shape:
            outputs *= d
        return outputs * (layer.channels // layer.group) * kernel
    inputs = 1                  # Deconvolution: every input value: (C_out/group)·k² MACs
    for d in bottom_shape:
        inputs *= d
    return inputs * (layer.num_output // layer.group) * kernel


def count(net):
    """[LayerFlops] for every layer of an engine Net (TRAIN phase), in net order."""
    rows = []
    for node in net.nodes:
        layer = node.layer
        if layer.type not in COUNTED:
            rows.append(LayerFlops(layer.name, layer.type, 0, 0))
            continue
        macs = sum(multiply_adds(layer, net.shapes[b], net.shapes[t])
                   for b, t in zip(node.bottoms, node.tops))
        backward = 0
        if node.need_backward:
            if any(node.bottom_need_backward):
                backward += 2 * macs
            if layer.param_grad and layer.param_grad[0]:
                backward += 2 * macs
        rows.append(LayerFlops(layer.name, layer.type, 2 * macs, backward))
    return rows


def training_flops(net):
    """FLOPs of one training iteration (forward + backward) of an engine Net."""
    return sum(row.total for row in count(net))


def net_flops(bn, batch, classes=common.CLASSES, widths=common.PAPER_WIDTHS):
    """[LayerFlops] for a paper net built by the generator at this batch, classes and widths."""
    from bnface_caffe.engine import Net
    from bnface_caffe.formats.glog import Glog
    from bnface_caffe.proto import caffe_pb2
    net = Net(common.input_net_param(bn, batch, classes, widths), phase=caffe_pb2.TRAIN,
              logger=Glog.silent())
    return count(net)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--net", choices=["bn", "baseline"], default="bn")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--classes", type=int, default=common.CLASSES)
    args = p.parse_args(argv)
    rows = [r for r in net_flops(args.net == "bn", args.batch, args.classes) if r.total]
    for r in rows:
        print(f"{r.name:10s} {r.type:14s} forward {r.forward / 1e9:8.3f} GFLOP  "
              f"backward {r.backward / 1e9:8.3f} GFLOP")
    total = sum(r.total for r in rows)
    print(f"one training iteration of batch {args.batch}: {total / 1e9:.2f} GFLOP "
          f"({total / args.batch / 1e9:.3f} GFLOP per image)")


if __name__ == "__main__":
    main()
