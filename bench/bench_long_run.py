"""Memory over a long training run: does anything grow (logs, curves, prefetch queues, autograd
graphs, resume captures, snapshots)? Trains a small paper net (the generator's BN or baseline
net at 4-wide convolutions, batch 4, mirror on) for 20,000+ iterations in-process, with
everything a real run does: display, tests, snapshots with their resume sidecar, pruning
(--keep-snapshots 2), a --log file. Samples the resident set (RSS), the peak RSS
(ru_maxrss), Python's object count and the thread count every --sample iterations.

    nice python bench/bench_long_run.py [--iters 20000] [--net bn|baseline] [--sample 1000]
                                        [--threads 1] [--json]

Figures: RSS and peak at the start (after set-up and the first iterations) and at the end,
the growth over the second half of the run, and every sample in between.
"""
import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

CLASSES, IMAGES_PER_CLASS, BATCH = 16, 12, 4


def rss_mib():
    """The current resident set size, from /proc (Linux), in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


class Sampler:
    """The training loop's observer: a sample every `every` iterations."""

    def __init__(self, every):
        self.every, self.samples, self.start = every, [], time.perf_counter()

    def take(self, it):
        gc.collect()
        self.samples.append({"iter": it, "rss_mib": round(rss_mib(), 1),
                             "peak_rss_mib": round(peak_rss_mib(), 1),
                             "python_objects": len(gc.get_objects()),
                             "threads": threading.active_count(),
                             "seconds": round(time.perf_counter() - self.start, 1)})

    def iteration(self, it, loss):
        if it % self.every == 0:
            self.take(it)

    def tested(self, i, outputs):
        pass


def make_run(folder, bn, iters):
    from bnface_caffe.architectures import NetOptions, build_net
    from bnface_caffe.formats import prototxt
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_lmdb.py"), "--synthetic",
                    "--identities", str(CLASSES), "--images-per-identity",
                    str(IMAGES_PER_CLASS), "-q", os.path.join(folder, "data")], check=True)
    data = os.path.join(folder, "data")
    net = build_net(NetOptions(bn=bn, num_classes=CLASSES, widths=(4,) * 7 + (8,),
                               batch_size=BATCH, test_batch_size=10, mirror=True,
                               train_lmdb=f"{data}/train_lmdb", test_lmdb=f"{data}/test_lmdb",
                               mean_file=f"{data}/mean.binaryproto"))
    net_path = os.path.join(folder, "net.prototxt")
    prototxt.write_text(net, net_path)
    solver = os.path.join(folder, "solver.prototxt")
    with open(solver, "w") as f:
        f.write(f'net: "{net_path}"\nbase_lr: 0.01\nlr_policy: "multistep"\ngamma: 0.1\n'
                f"stepvalue: {iters // 2}\nmomentum: 0.9\nweight_decay: 0.0005\ndisplay: 100\n"
                f"average_loss: 20\ntest_iter: 2\ntest_interval: 1000\nmax_iter: {iters}\n"
                f'snapshot: 2000\nsnapshot_prefix: "{folder}/snap/long"\nsolver_mode: CPU\n'
                "random_seed: 1\n")
    return solver


def run(iters, bn, every, threads):
    import torch
    from bnface_caffe.engine.train import TrainOptions, train
    from bnface_caffe.formats.glog import Glog
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        solver = make_run(folder, bn, iters)
        log = Glog(stderr=False)
        log.add_file(os.path.join(folder, "train.log"))
        sampler = Sampler(every)
        sampler.take(0)
        try:
            train(TrainOptions(solver, keep_snapshots=2), observer=sampler, log=log)
        finally:
            log.close()
        sampler.take(iters)
        log_mib = os.path.getsize(os.path.join(folder, "train.log")) / 2**20
    return sampler.samples, log_mib


def summary(samples, iters, net, log_mib, threads):
    """Figures from the samples: the last one is taken after train() returned (its nets
    closed), the one before it at the last iteration."""
    first = next(s for s in samples if s["iter"] >= min(1000, iters))
    half = min(samples, key=lambda s: abs(s["iter"] - iters // 2))
    end, after = samples[-2], samples[-1]
    return {"net": net, "iterations": iters, "batch": BATCH, "threads": threads,
            "seconds": end["seconds"], "log_mib": round(log_mib, 1),
            "rss_start_mib": first["rss_mib"], "rss_half_mib": half["rss_mib"],
            "rss_end_mib": end["rss_mib"], "rss_after_mib": after["rss_mib"],
            "peak_start_mib": first["peak_rss_mib"], "peak_end_mib": end["peak_rss_mib"],
            "rss_growth_second_half_mib": round(end["rss_mib"] - half["rss_mib"], 1),
            "objects_start": first["python_objects"], "objects_end": end["python_objects"],
            "threads_start": first["threads"], "threads_end": end["threads"],
            "threads_after": after["threads"], "start_iter": first["iter"], "samples": samples}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=20000)
    p.add_argument("--net", choices=["bn", "baseline"], default="bn")
    p.add_argument("--sample", type=int, default=1000, help="iterations between samples")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    samples, log_mib = run(args.iters, args.net == "bn", args.sample, args.threads)
    result = summary(samples, args.iters, args.net, log_mib, args.threads)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.net} net, {args.iters} iterations, batch {BATCH}, {args.threads} thread(s), "
          f"{result['seconds']:.0f} s; log {result['log_mib']:.1f} MiB")
    print(f"{'iter':>7} {'RSS MiB':>8} {'peak MiB':>9} {'objects':>9} {'threads':>7}")
    for s in samples:
        print(f"{s['iter']:>7} {s['rss_mib']:>8.1f} {s['peak_rss_mib']:>9.1f} "
              f"{s['python_objects']:>9} {s['threads']:>7}")
    print(f"RSS {result['rss_start_mib']:.1f} MiB at iteration {result['start_iter']} → "
          f"{result['rss_end_mib']:.1f} MiB at the last (second half: "
          f"{result['rss_growth_second_half_mib']:+.1f} MiB); peak {result['peak_start_mib']:.1f} → "
          f"{result['peak_end_mib']:.1f} MiB; after train() returned: "
          f"{result['rss_after_mib']:.1f} MiB, {result['threads_after']} thread(s)")


if __name__ == "__main__":
    main()
