"""Training throughput, full iterations (data, forward/backward, update, logging), both paper
nets at batch 64 with 14700 classes: the engine (tools/train.py), real Caffe's `caffe train`
when one is on PATH (or given with --caffe), and a plain PyTorch loop of the same net.

The engine and Caffe are timed the same way: from their logs' timestamps ("Iteration N"
lines, display 1), skipping the warm-up iterations. The plain loop is timed in-process over
the same LMDB, reading it in key order like the Data layer, with torch.optim.SGD.
Goals (issue 5): engine ≥ 90% of the plain loop on CPU; ≥ 2× Caffe's CPU speed on the BN
net; on an H200 ≥ 15k img/s faithful and ≥ 50k img/s fast mode.

    python bench/bench_train.py [--iters 12] [--threads 2] [--caffe PATH] [--nets bn,baseline]
                                [--gpu ID] [--json]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bnface_caffe.paper import NUM_CLASSES as CLASSES  # noqa: E402

BATCH, WARMUP = 64, 2


def make_data(folder):
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_lmdb.py"), "--synthetic",
                    "--identities", "32", "--images-per-identity", "22", "-q",
                    os.path.join(folder, "data")], check=True)
    return os.path.join(folder, "data")


def write_run(folder, data, bn, iters, device_mode="CPU"):
    from bnface_caffe.formats import prototxt
    from bnface_caffe.architectures import NetOptions, build_net
    name = "bn" if bn else "baseline"
    net = build_net(NetOptions(bn=bn, num_classes=CLASSES, batch_size=BATCH,
                               train_lmdb=f"{data}/train_lmdb", test_lmdb=f"{data}/test_lmdb",
                               mean_file=f"{data}/mean.binaryproto"))
    net_path = os.path.join(folder, f"{name}.prototxt")
    prototxt.write_text(net, net_path)
    solver = os.path.join(folder, f"{name}_solver.prototxt")
    with open(solver, "w") as f:
        f.write(f'net: "{net_path}"\nbase_lr: 0.01\nlr_policy: "fixed"\nmomentum: 0.9\n'
                f"weight_decay: 0.0005\ndisplay: 1\nmax_iter: {iters}\nsnapshot: 0\n"
                f'snapshot_after_train: false\nsolver_mode: {device_mode}\nrandom_seed: 1\n'
                f'snapshot_prefix: "{folder}/{name}"\n')
    return solver, net


def images_per_s_from_log(path):
    """Throughput between iteration WARMUP and the last displayed iteration, from the
    timestamps of the "Iteration N (...), loss = X" lines (the log parser reads them)."""
    from bnface_caffe.caffelog import parse_log
    stamps = {it: seconds for it, seconds, _ in parse_log(path).loss_points}
    last = max(stamps)
    return BATCH * (last - WARMUP) / (stamps[last] - stamps[WARMUP])


def run_engine(solver, folder, threads, gpu=None, fast=False):
    log = os.path.join(folder, f"engine{'_fast' if fast else ''}.log")
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train.py"), solver, "--backend", "engine",
           "--log", log] + (["--gpu", str(gpu)] if gpu is not None else []) + (["--fast"] if fast else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(cmd, check=True, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return images_per_s_from_log(log)


def run_caffe(caffe, solver, folder, threads):
    log = os.path.join(folder, "caffe.log")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               GLOG_logtostderr="1", GLOG_minloglevel="0")
    with open(log, "w") as f:
        subprocess.run([caffe, "train", f"--solver={solver}"], check=True, env=env, stderr=f)
    return images_per_s_from_log(log)


def run_plain(net_param, bn, iters, threads, device="cpu"):
    """The same net in torch.nn (bench_net.Plain), the same LMDB in key order, SGD."""
    import torch
    import torch.nn.functional as F
    from bench_net import Plain
    from bnface_caffe.engine.data_reader import DatumReader
    from bnface_caffe.formats.blobproto import read_mean_file
    torch.set_num_threads(threads)
    layer = net_param.layer[0]
    reader = DatumReader(layer.data_param.source)
    mean = torch.from_numpy(read_mean_file(layer.transform_param.mean_file)).to(device)
    scale = layer.transform_param.scale
    model = Plain(bn, net_param=net_param).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    times = []
    for i in range(iters):
        images, labels = reader.next_batch(BATCH)
        x = (torch.from_numpy(images.copy()).to(device).float() - mean) * scale
        y = torch.from_numpy(labels).to(device).long()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        float(loss.detach())   # the loop reads the loss every iteration, as a display would
        times.append(time.perf_counter())
    return BATCH * (iters - 1 - WARMUP) / (times[-1] - times[WARMUP])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=12)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--caffe", default=shutil.which("caffe"), help="caffe binary (default: PATH)")
    p.add_argument("--nets", default="bn,baseline")
    p.add_argument("--gpu", type=int, help="also (only) run on this CUDA device")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        data = make_data(folder)
        for name in args.nets.split(","):
            bn = name == "bn"
            mode = "GPU" if args.gpu is not None else "CPU"
            solver, net = write_run(folder, data, bn, args.iters, mode)
            row = {"net": name, "batch": BATCH, "classes": CLASSES, "device": mode,
                   "threads": args.threads}
            row["engine"] = run_engine(solver, folder, args.threads, args.gpu)
            if args.gpu is not None:
                row["engine_fast"] = run_engine(solver, folder, args.threads, args.gpu, fast=True)
            row["plain_pytorch"] = run_plain(net, bn, args.iters, args.threads,
                                             "cpu" if args.gpu is None else f"cuda:{args.gpu}")
            if args.caffe and args.gpu is None:
                row["caffe"] = run_caffe(args.caffe, solver, folder, args.threads)
            results.append(row)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        line = (f"{r['net']:9s} {r['device']} batch {r['batch']} ({r['threads']} threads): "
                f"engine {r['engine']:.1f} img/s, plain PyTorch {r['plain_pytorch']:.1f} img/s "
                f"({100 * r['engine'] / r['plain_pytorch']:.0f}%)")
        if "engine_fast" in r:
            line += f", engine --fast {r['engine_fast']:.1f} img/s"
        if "caffe" in r:
            line += f", Caffe {r['caffe']:.1f} img/s (engine {r['engine'] / r['caffe']:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
