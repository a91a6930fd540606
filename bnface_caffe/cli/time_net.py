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
from ..errors import UserError
from ..glog import cpp_number, log
from ..proto import caffe_pb2


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="time_net.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="net prototxt (train_val or deploy)")
    ap.add_argument("--iterations", type=int, default=50, help="timed passes (Caffe's default 50)")
    ap.add_argument("--gpu", type=int, default=None, metavar="ID", help="CUDA device id")
    ap.add_argument("--phase", choices=["TRAIN", "TEST"], default="TRAIN",
                    help="net phase (Caffe's `time` default: TRAIN)")
    ap.add_argument("--level", type=int, default=0)
    ap.add_argument("--stage", action="append", default=[], help="a NetState stage (repeatable)")
    ap.add_argument("--weights", help="a .caffemodel to load first (optional)")
    ap.add_argument("--fast", action="store_true", help="fast numerics (TF32/bf16, channels-last)")
    args = ap.parse_args(argv)
    if args.iterations < 1:
        ap.error("--iterations must be at least 1")
    return args


def device_for(gpu):
    if gpu is None:
        log.info("caffe.cpp:343", "Use CPU.")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"--gpu {gpu}: no CUDA device is available here; drop --gpu to run on the CPU")
    if not 0 <= gpu < torch.cuda.device_count():
        raise UserError(f"--gpu {gpu}: only {torch.cuda.device_count()} CUDA device(s) "
                        f"(ids 0..{torch.cuda.device_count() - 1})")
    log.info("caffe.cpp:339", f"Use GPU with device ID {gpu}")
    log.info("caffe.cpp:343", f"GPU device name: {torch.cuda.get_device_name(gpu)}")
    return torch.device("cuda", gpu)


def main(argv):
    args = parse_args(argv)
    net_param = read_net(args.model)          # a bad file fails before any log line
    device = device_for(args.gpu)
    phase = caffe_pb2.Phase.Value(args.phase)
    net = Net(net_param, phase=phase, stages=args.stage, level=args.level,
              device=device, fast=args.fast, source=args.model)
    if args.weights:
        net.copy_trained_layers_from_file(args.weights)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    log.info("caffe.cpp:351", "Performing Forward")
    loss = net.forward(build_graph=True)
    log.info("caffe.cpp:356", f"Initial loss: {cpp_number(loss)}")
    log.info("caffe.cpp:357", "Performing Backward")
    net.backward()

    n = len(net.nodes)
    forward_us, backward_us = [0.0] * n, [0.0] * n
    log.info("caffe.cpp:365", "*** Benchmark begins ***")
    log.info("caffe.cpp:366", f"Testing for {args.iterations} iterations.")
    total_start = time.perf_counter()
    for j in range(args.iterations):
        start = time.perf_counter()
        layerwise_pass(net, forward_us, backward_us)
        sync()
        ms = (time.perf_counter() - start) * 1e3
        log.info("caffe.cpp:394", f"Iteration: {j + 1} forward-backward time: {cpp_number(ms)} ms.")
    total_ms = (time.perf_counter() - total_start) * 1e3
    log.info("caffe.cpp:397", "Average time per layer: ")
    for node, f, b in zip(net.nodes, forward_us, backward_us):
        name = f"{node.layer.name:>10}"
        log.info("caffe.cpp:400", f"{name}\tforward: {cpp_number(f / 1000 / args.iterations)} ms.")
        log.info("caffe.cpp:403", f"{name}\tbackward: {cpp_number(b / 1000 / args.iterations)} ms.")
    its = args.iterations
    log.info("caffe.cpp:408", f"Average Forward pass: {cpp_number(sum(forward_us) / 1000 / its)} ms.")
    log.info("caffe.cpp:410", f"Average Backward pass: {cpp_number(sum(backward_us) / 1000 / its)} ms.")
    log.info("caffe.cpp:412", f"Average Forward-Backward: {cpp_number(total_ms / its)} ms.")
    log.info("caffe.cpp:414", f"Total Time: {cpp_number(total_ms)} ms.")

    # The same passes as training runs them: one graph, one backward call.
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
    log.info("caffe.cpp:415", "*** Benchmark ends ***")
    return 0
