"""time_net: the counterpart of `caffe time` for the engine.

Logs the net's set-up exactly as Caffe does (one "Top shape:" line per top,
splits and in-place layers included), runs one forward and backward, then times
`--iterations` forward-backward passes layer by layer and prints Caffe's
averages. A last line times the same passes run as training runs them (one
autograd graph), which is the figure that matters for training speed.
"""
import argparse
import time

import torch

from ..engine import Net, read_net
from ..engine.timing import layerwise_pass
from ..formats import tool_log
from ..formats.glog import cpp_number
from ..proto import caffe_pb2
from . import options


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="net prototxt (train_val or deploy)")
    ap.add_argument("--iterations", type=int, default=50, help="timed passes (Caffe's default 50)")
    options.add_gpu(ap)
    ap.add_argument("--phase", choices=["TRAIN", "TEST"], default="TRAIN",
                    help="net phase (Caffe's `time` default: TRAIN)")
    options.add_stage(ap)
    ap.add_argument("--weights", help="a .caffemodel to load first (optional)")
    ap.add_argument("--fast", action="store_true", help="fast numerics (TF32/bf16, channels-last)")
    options.add_quiet(ap, "set-up lines on stderr (the timings stay)")
    options.add_version(ap)
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error("--iterations must be at least 1")
    return args


def main(argv):
    args = parse_args(argv)
    log = options.make_log("time_net")
    setup_log = options.make_log("time_net", args)   # --quiet silences the set-up only
    try:
        return time_model(args, log, setup_log)
    finally:
        log.close()
        setup_log.close()


def time_model(args, log, setup_log, training_line=True):
    """Caffe's `time` for the parsed `args` (model, iterations, gpu, phase, stage, level,
    weights, fast); set-up lines go to `setup_log`, the rest to `log`. `training_line`: also
    time the passes as training runs them (a line Caffe does not write)."""
    net_param = read_net(args.model, setup_log)      # a bad file fails before any log line
    device = options.single_device(args.gpu, log)
    phase = caffe_pb2.Phase.Value(args.phase)
    net = Net(net_param, phase=phase, stages=options.stages(args), level=args.level,
              device=device, fast=args.fast, source=args.model, logger=setup_log)
    if args.weights:
        net.copy_trained_layers_from_file(args.weights)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    tool_log.performing_forward(log)
    loss = net.forward(build_graph=True)
    tool_log.initial_loss(log, loss)
    tool_log.performing_backward(log)
    net.backward()

    n = len(net.nodes)
    forward_us, backward_us = [0.0] * n, [0.0] * n
    its = args.iterations
    tool_log.benchmark_begins(log, its)
    total_start = time.perf_counter()
    for j in range(its):
        start = time.perf_counter()
        layerwise_pass(net, forward_us, backward_us)
        sync()
        tool_log.iteration_time(log, j + 1, (time.perf_counter() - start) * 1e3)
    total_ms = (time.perf_counter() - total_start) * 1e3
    tool_log.average_time_per_layer(log)
    for node, f, b in zip(net.nodes, forward_us, backward_us):
        tool_log.layer_times(log, node.layer.name, f / 1000 / its, b / 1000 / its)
    tool_log.average_times(log, sum(forward_us) / 1000, sum(backward_us) / 1000, total_ms, its)
    if training_line:
        _time_as_training(net, its, sync, log)
    tool_log.benchmark_ends(log)
    net.close()
    return 0


def _time_as_training(net, its, sync, log):
    """The same passes as training runs them: one graph, one backward call."""
    sync()
    start = time.perf_counter()
    for _ in range(its):
        net.forward(build_graph=True)
        net.backward()
    sync()
    graph_ms = (time.perf_counter() - start) * 1e3 / its
    batch = next((shape[0] for shape in net.shapes.values() if shape), 0)
    rate = f" ({cpp_number(batch * 1e3 / graph_ms)} images/s at batch {batch})" if batch else ""
    log.info("time_net.py:0", f"Average Forward-Backward as training runs it (one autograd graph): "
             f"{cpp_number(graph_ms)} ms.{rate}")


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
