"""Where one training iteration's time goes, per layer against its FLOPs: both paper nets at
batch 64 with 14,700 classes, and per kind (convolutions, BatchNorm+Scale, ReLU, pooling, the
classifier, the loss, the update, data, logging).

Layers are timed as `caffe time` times them (engine/timing.py: each layer on detached copies of
its bottoms, its backward a separate autograd call), the best of `--rounds` passes per layer;
the update is the Solver's apply_update; data is what the Data layer's prefetch thread spends
per batch (LMDB read + DataTransformer: off the main thread while the net computes, but on the
same cores); logging is one displayed iteration's lines written to a file. The sum of the
layers is a little above a real training step (each layer is its own autograd call).

    python bench/profile_net.py [--nets bn,baseline] [--mode faithful|fast] [--rounds 3]
                                [--threads N] [--clock wall|cpu] [--gpu ID] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import flops  # noqa: E402

KINDS = {"Convolution": "convolutions", "Deconvolution": "convolutions",
         "BatchNorm": "BatchNorm + Scale", "Scale": "BatchNorm + Scale", "ReLU": "ReLU",
         "Pooling": "pooling", "InnerProduct": "classifier (InnerProduct)",
         "SoftmaxWithLoss": "loss (SoftmaxWithLoss)", "Dropout": "Dropout"}


def layer_times(net, rounds, now):
    """Best forward and backward seconds per node over `rounds` layer-by-layer passes."""
    from bnface_caffe.engine import timing
    saved = timing._clock
    timing._clock = lambda device: now      # the benchmark's clock, synchronised on CUDA
    try:
        best_f = best_b = None
        for _ in range(rounds + 1):          # the first pass warms up
            f, b = [0.0] * len(net.nodes), [0.0] * len(net.nodes)
            net.clear_param_diffs()
            timing.layerwise_pass(net, f, b)
            if best_f is None:
                best_f, best_b = [float("inf")] * len(f), [float("inf")] * len(b)
                continue
            best_f = [min(x, y / 1e6) for x, y in zip(best_f, f)]
            best_b = [min(x, y / 1e6) for x, y in zip(best_b, b)]
    finally:
        timing._clock = saved
    return best_f, best_b


def data_seconds(batch, rounds, now):
    """Seconds the Data layer's prefetch thread spends per batch: read + transform."""
    from bnface_caffe.engine.data_reader import DatumReader
    from bnface_caffe.engine.transform import Transformer
    from bnface_caffe.proto import caffe_pb2
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, os.path.join(common.ROOT, "tools", "build_lmdb.py"),
                        "--synthetic", "--identities", "8", "--images-per-identity", "20", "-q",
                        os.path.join(folder, "data")], check=True)
        reader = DatumReader(os.path.join(folder, "data", "train_lmdb"))
        param = caffe_pb2.TransformationParameter(
            scale=0.00390625, mean_file=os.path.join(folder, "data", "mean.binaryproto"))
        transform = Transformer(param, caffe_pb2.TRAIN, "data")

        def one():
            images, _ = reader.next_batch(batch)
            transform(images)
        timed = common.alternate({"data": one}, rounds, now)["data"]["best"]
        reader.close()
    return timed


def logging_seconds(net, rounds, now):
    """One displayed iteration's log lines (the iteration line, the lr line, an output line per
    output element) written through a Glog to a file."""
    from bnface_caffe.engine.loop import Loop
    from bnface_caffe.formats import solver_log
    from bnface_caffe.formats.glog import Glog
    with tempfile.TemporaryDirectory() as folder:
        log = Glog(stderr=False)
        log.add_file(os.path.join(folder, "train.log"))

        def one():
            solver_log.iteration(log, 100, 1.5, 0.667, 1, 9.5)
            Loop.log_outputs(net, lambda *a: solver_log.train_output(log, *a))
            solver_log.lr_line(log, 100, 0.01)
        timed = common.alternate({"log": one}, rounds, now)["log"]["best"]
        log.close()
    return timed


def profile(bn, args, device):
    param = common.input_net_param(bn, args.batch, args.classes)
    fast = args.mode == "fast"
    net, solver, step = common.engine_step(param, device, fast, args.batch, args.classes)
    now = common.clock(args.clock)
    sync = common._sync(device)

    def synced():
        sync()
        return now()
    rows = flops.count(net)
    fwd, bwd = layer_times(net, args.rounds, synced)
    whole = common.alternate({"step": step}, args.rounds, synced)["step"]["best"]

    def update():
        solver.apply_update()
        sync()
    update_s = common.alternate({"update": update}, args.rounds, synced)["update"]["best"]
    layers = []
    for node, r, f, b in zip(net.nodes, rows, fwd, bwd):
        layers.append({"name": r.name, "type": r.type, "kind": KINDS.get(r.type, "other"),
                       "forward_s": f, "backward_s": b, "forward_flop": r.forward,
                       "backward_flop": r.backward})
    kinds = {}
    for layer in layers:
        k = kinds.setdefault(layer["kind"], {"seconds": 0.0, "flop": 0})
        k["seconds"] += layer["forward_s"] + layer["backward_s"]
        k["flop"] += layer["forward_flop"] + layer["backward_flop"]
    kinds["update (SGD)"] = {"seconds": update_s, "flop": 0}
    kinds["data (prefetch thread)"] = {"seconds": data_seconds(args.batch, args.rounds, now),
                                       "flop": 0}
    kinds["logging"] = {"seconds": logging_seconds(net, args.rounds, now), "flop": 0}
    net.close()
    import torch
    return {"net": "bn" if bn else "baseline", "mode": args.mode, "device": device,
            "threads": torch.get_num_threads(), "batch": args.batch, "classes": args.classes,
            "clock": args.clock, "step_s": whole, "layers": layers, "kinds": kinds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default="bn,baseline")
    p.add_argument("--mode", choices=["faithful", "fast"], default="faithful")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--classes", type=int, default=common.CLASSES)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cpu" if args.gpu is None else f"cuda:{args.gpu}"
    results = [profile(name == "bn", args, device) for name in args.nets.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(f"{r['net']} ({r['mode']}, {r['device']}, {r['threads']} threads): training step "
              f"{1e3 * r['step_s']:.0f} ms")
        for layer in r["layers"]:
            s = layer["forward_s"] + layer["backward_s"]
            flop = layer["forward_flop"] + layer["backward_flop"]
            rate = f"{flop / s / 1e9:6.1f} GFLOP/s" if flop and s else ""
            print(f"  {layer['name']:22s} {layer['type']:16s} fwd {1e3 * layer['forward_s']:7.2f} ms"
                  f"  bwd {1e3 * layer['backward_s']:7.2f} ms  {rate}")
        for kind, v in r["kinds"].items():
            print(f"  {kind:28s} {1e3 * v['seconds']:8.1f} ms")


if __name__ == "__main__":
    main()
