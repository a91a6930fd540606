"""Fidelity of the engine's speed-ups against real Caffe: the same BN net (the paper's widths,
14,700 classes), the same starting weights, the same LMDB, the same solver, `--iters` training
iterations each; the training loss of every iteration side by side.

The starting weights are the engine's fillers written as a .caffemodel; `caffe train --weights`
and `tools/train.py --weights` (faithful, then fast mode) start from them. Both read the LMDB in
key order with no mirror or crop, and the BN net has no Dropout, so nothing random differs: the
losses differ only by float rounding (summation order; Caffe's im2col + OpenBLAS against
oneDNN), which training amplifies slowly. Tolerance (issue 15): faithful within 1e-3 relative
over 30 iterations. Fast mode (bf16) is shown for scale, without a tolerance. Without a `caffe`
binary (--caffe or PATH) the faithful and fast engine runs are compared with each other only.

    python bench/bench_fidelity.py [--iters 30] [--threads 2] [--caffe PATH] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train  # noqa: E402
import common  # noqa: E402

TOLERANCE = 1e-3


def losses(path):
    """{iteration: loss} from the "Iteration N (...), loss = X" lines of a training log."""
    from bnface_caffe.caffelog import parse_log
    return {it: loss for it, _, loss in parse_log(path).loss_points}


def starting_weights(net_param, path, seed=1):
    """The engine's fillers for this train net, written as a .caffemodel."""
    import torch
    from bnface_caffe.engine import Net
    from bnface_caffe.formats import caffemodel
    from bnface_caffe.formats.glog import Glog
    from bnface_caffe.proto import caffe_pb2
    torch.manual_seed(seed)
    net = Net(net_param, phase=caffe_pb2.TRAIN, logger=Glog.silent())
    caffemodel.write(net.to_proto(), path)
    net.close()


def engine_losses(solver, folder, weights, threads, fast):
    log = os.path.join(folder, f"engine{'_fast' if fast else ''}.log")
    cmd = [sys.executable, os.path.join(common.ROOT, "tools", "train.py"), solver,
           "--backend", "engine", "--weights", weights, "--log", log, *(["--fast"] if fast else [])]
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return losses(log)


def caffe_losses(caffe, solver, folder, weights, threads):
    log = os.path.join(folder, "caffe.log")
    with open(log, "w") as f:
        subprocess.run([caffe, "train", f"--solver={solver}", f"--weights={weights}"], check=True,
                       env=common.caffe_env(caffe, threads), stderr=f, stdout=subprocess.DEVNULL)
    return losses(log)


def max_relative(a, b):
    """The largest |a − b| / |b| over the iterations both have."""
    common_its = sorted(set(a) & set(b))
    return max(abs(a[i] - b[i]) / abs(b[i]) for i in common_its), len(common_its)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--classes", type=int, default=common.CLASSES)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--caffe", help="real Caffe's binary (default: `caffe` on PATH, if any)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    caffe = common.find_caffe(args.caffe)
    with tempfile.TemporaryDirectory() as folder:
        data = bench_train.make_data(folder)
        solver, net = bench_train.write_run(folder, data, True, args.iters, args.batch,
                                            classes=args.classes)
        weights = os.path.join(folder, "start.caffemodel")
        starting_weights(net, weights)
        runs = {"faithful": engine_losses(solver, folder, weights, args.threads, False),
                "fast": engine_losses(solver, folder, weights, args.threads, True)}
        if caffe:
            runs["caffe"] = caffe_losses(caffe, solver, folder, weights, args.threads)
    reference = "caffe" if caffe else "faithful"
    result = {"net": "bn", "batch": args.batch, "classes": args.classes, "iters": args.iters,
              "reference": reference, "tolerance": TOLERANCE,
              "losses": {k: [v[i] for i in sorted(v)] for k, v in runs.items()}}
    for mode in ("faithful", "fast"):
        if mode == reference:
            continue
        worst, n = max_relative(runs[mode], runs[reference])
        result[f"{mode}_max_relative"] = worst
        result[f"{mode}_iterations_compared"] = n
    if "faithful_max_relative" in result:
        result["faithful_within_tolerance"] = result["faithful_max_relative"] <= TOLERANCE
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"BN net, batch {args.batch}, {args.classes} classes, {args.iters} iterations from the "
          f"same weights; reference: {reference}")
    for mode in ("faithful", "fast"):
        if f"{mode}_max_relative" in result:
            print(f"  {mode}: max relative loss difference {result[f'{mode}_max_relative']:.2e} "
                  f"over {result[f'{mode}_iterations_compared']} iterations")


if __name__ == "__main__":
    main()
