"""Engine vs plain PyTorch: forward + backward (and + SGD step) per batch, both paper nets.

For each net (baseline with Dropout; BN with BatchNorm+Scale) the engine runs the
generated train net (its Data layers swapped for an Input layer of the same
shapes) and a hand-written torch.nn model of the same net runs the same batch;
with --sgd both also do Caffe's SGD step (momentum 0.9, weight decay 5e-4; the
engine's written with torch's multi-tensor ops, as torch.optim.SGD). Rounds alternate
between the two so a busy machine slows both alike; the best round of each (the
least disturbed, as timeit advises) and the median are reported. Goal (issue 4):
the engine within 10% of plain PyTorch.

    python bench/bench_net.py [--batch 64] [--rounds 8] [--iters 1] [--gpu ID] [--json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bnface_caffe.architectures import NetOptions, build_net  # noqa: E402
from bnface_caffe.engine import Net  # noqa: E402
from bnface_caffe.formats.glog import Glog  # noqa: E402
from bnface_caffe.proto import caffe_pb2  # noqa: E402

from bnface_caffe.paper import NUM_CLASSES as CLASSES  # noqa: E402
LR, MOMENTUM, DECAY = 0.01, 0.9, 5e-4


def engine_net(bn, batch, device, fast):
    p = build_net(NetOptions(bn=bn, num_classes=CLASSES))
    layers = [l for l in p.layer if l.type != "Data"]
    del p.layer[:]
    data = p.layer.add(name="data", type="Input", top=["data", "label"])
    data.input_param.shape.add(dim=[batch, 1, 50, 50])
    data.input_param.shape.add(dim=[batch])
    p.layer.extend(layers)
    return Net(p, phase=caffe_pb2.TRAIN, device=device, fast=fast, logger=Glog.silent())


class Plain(nn.Module):
    """The same net written directly in torch.nn, read off the generated NetParameter (so it is
    the net the generator makes, layer for layer): Convolution → Conv2d, BatchNorm + Scale →
    BatchNorm2d (affine), ReLU, Pooling (MAX ceil-mode, AVE), Dropout, InnerProduct → Linear."""

    def __init__(self, bn, classes=None, net_param=None):
        super().__init__()
        param = net_param or build_net(NetOptions(bn=bn, num_classes=classes or CLASSES))
        layers, c = [], 1
        for layer in param.layer:
            kind = layer.type
            if kind == "Convolution":
                p = layer.convolution_param
                layers.append(nn.Conv2d(c, p.num_output, p.kernel_size[0], padding=p.pad[0],
                                        bias=p.bias_term))
                c = p.num_output
            elif kind == "BatchNorm":
                layers.append(nn.BatchNorm2d(c, eps=layer.batch_norm_param.eps,
                                             momentum=1 - layer.batch_norm_param.moving_average_fraction))
            elif kind == "ReLU":
                layers.append(nn.ReLU())
            elif kind == "Pooling":
                p = layer.pooling_param
                pool = nn.MaxPool2d if p.pool == caffe_pb2.PoolingParameter.MAX else nn.AvgPool2d
                layers.append(pool(p.kernel_size, p.stride, ceil_mode=True))
            elif kind == "Dropout":
                layers.append(nn.Dropout(layer.dropout_param.dropout_ratio))
            elif kind == "InnerProduct":
                layers.append(nn.Flatten())
                layers.append(nn.Linear(c, layer.inner_product_param.num_output))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def caffe_sgd(groups):
    """Caffe's SGD update per (lr_mult, decay_mult) group: g += decay*w;
    h = momentum*h + lr*g; w -= h."""
    with torch.no_grad():
        for (lr_mult, decay_mult), (data, diff, history) in groups.items():
            if DECAY * decay_mult:
                torch._foreach_add_(diff, data, alpha=DECAY * decay_mult)
            torch._foreach_mul_(history, MOMENTUM)
            torch._foreach_add_(history, diff, alpha=LR * lr_mult)
            torch._foreach_sub_(data, history)


def sgd_groups(net):
    groups = {}
    for p in net.learnable_params:
        if p.lr_mult:
            data, diff, history = groups.setdefault((p.lr_mult, p.decay_mult), ([], [], []))
            data.append(p.data)
            diff.append(p.diff)
            history.append(torch.zeros_like(p.data))
    return groups


CLOCK = time.perf_counter   # --cpu-time: time.process_time (steadier on a shared machine)


def time_engine(net, iters, sync, groups):
    sync()
    start = CLOCK()
    for _ in range(iters):
        net.clear_param_diffs()
        net.forward_backward()
        if groups is not None:
            caffe_sgd(groups)
    sync()
    return (CLOCK() - start) / iters


def time_plain(model, opt, x, y, iters, sync, fast, step):
    sync()
    start = CLOCK()
    for _ in range(iters):
        opt.zero_grad(set_to_none=False)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=fast and x.is_cuda):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        if step:
            opt.step()
    sync()
    return (CLOCK() - start) / iters


def bench(bn, args, device):
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, 50, 50, device=device)
    y = torch.randint(0, CLASSES, (args.batch,), device=device)
    net = engine_net(bn, args.batch, device, args.fast)
    net.set_input("data", x)
    net.set_input("label", y.float())
    model = Plain(bn).to(device)
    if args.fast:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    groups = sgd_groups(net) if args.sgd else None
    time_engine(net, 1, sync, groups)              # warm-up (allocations, kernels)
    time_plain(model, opt, x, y, 1, sync, args.fast, args.sgd)
    engine, plain = [], []
    for _ in range(args.rounds):
        engine.append(time_engine(net, args.iters, sync, groups))
        plain.append(time_plain(model, opt, x, y, args.iters, sync, args.fast, args.sgd))
    e, p = min(engine), min(plain)
    em, pm = statistics.median(engine), statistics.median(plain)
    return {"net": "bn" if bn else "baseline", "device": str(device), "batch": args.batch,
            "fast": args.fast, "sgd": args.sgd, "engine_ms": e * 1e3, "plain_ms": p * 1e3,
            "engine_img_s": args.batch / e, "plain_img_s": args.batch / p,
            "engine_vs_plain": p / e, "median_engine_ms": em * 1e3,
            "median_plain_ms": pm * 1e3, "median_engine_vs_plain": pm / em,
            "threads": torch.get_num_threads()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--iters", type=int, default=1, help="steps per timed round")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--gpu", type=int, default=None)
    ap.add_argument("--fast", action="store_true", help="engine fast mode (and bf16 for plain)")
    ap.add_argument("--net", choices=["baseline", "bn", "both"], default="both")
    ap.add_argument("--cpu-time", action="store_true",
                    help="CPU time of this process instead of wall time (with --threads 1)")
    ap.add_argument("--sgd", action="store_true", help="include Caffe's SGD step in each pass")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    device = torch.device("cpu") if args.gpu is None else torch.device("cuda", args.gpu)
    if args.threads:
        torch.set_num_threads(args.threads)
    nets = [False, True] if args.net == "both" else [args.net == "bn"]
    results = [bench(bn, args, device) for bn in nets]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    clock = "CPU time" if args.cpu_time else "wall time"
    what = "forward+backward+SGD" if args.sgd else "forward+backward"
    print(f"{what} per batch of {args.batch}, {device}, {clock}, "
          f"{'fast' if args.fast else 'faithful'} mode, {torch.get_num_threads()} threads, "
          f"best of {args.rounds} alternating rounds x {args.iters} steps (median in brackets)")
    for r in results:
        print(f"  {r['net']:>8}: engine {r['engine_ms']:7.1f} ms ({r['engine_img_s']:6.1f} img/s)  "
              f"plain PyTorch {r['plain_ms']:7.1f} ms ({r['plain_img_s']:6.1f} img/s)  "
              f"engine speed = {100 * r['engine_vs_plain']:.0f}% of plain "
              f"[{100 * r['median_engine_vs_plain']:.0f}%]")


if __name__ == "__main__":
    main()
