"""Training throughput, full iterations (data, forward/backward, update, logging), both paper
nets with 14,700 classes: the engine (tools/train.py) in faithful and fast mode, real Caffe's
`caffe train` when one is given (--caffe PATH, or `caffe` on PATH), and a plain PyTorch loop of
the same net over the same LMDB, in both modes — each against the machine's peak (bench/peak.py)
measured in the same rounds and the FLOPs counted from the prototxt (bench/flops.py).

The engine and Caffe are timed the same way: from their logs' timestamps ("Iteration N" lines,
display 1), skipping the warm-up iterations. The plain loop is timed in-process over the same
LMDB, reading it in key order like the Data layer. Rounds alternate between the candidates and
the best round of each is kept (a busy machine slows them alike). Goals (issue 15): faithful ≥
85% of the fp32 GEMM peak; fast never slower and ≥ 85% of the best peak; engine ≥ 100% of the
plain loop in the same mode; ≥ 2× Caffe on the CPU. On an H200: ≥ 15,000 img/s faithful and
≥ 50,000 img/s fast for the BN net at batch 128.

    python bench/bench_train.py [--iters 12] [--rounds 2] [--threads 2] [--batch 64]
        [--caffe PATH] [--nets bn,baseline] [--modes faithful,fast] [--gpu ID] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import flops  # noqa: E402
import peak  # noqa: E402

ROOT = common.ROOT
WARMUP = 2


def make_data(folder, identities=32, per_identity=22):
    out = os.path.join(folder, "data")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_lmdb.py"), "--synthetic",
                    "--identities", str(identities), "--images-per-identity", str(per_identity),
                    "-q", out], check=True)
    return out


def write_run(folder, data, bn, iters, batch, classes=common.CLASSES, device_mode="CPU",
              widths=common.PAPER_WIDTHS):
    """(solver path, train NetParameter): the generated net on `data`, a fixed-lr SGD solver
    showing every iteration, no tests or snapshots."""
    from bnface_caffe.architectures import NetOptions, build_net
    from bnface_caffe.formats import prototxt
    name = "bn" if bn else "baseline"
    net = build_net(NetOptions(bn=bn, num_classes=classes, batch_size=batch, widths=tuple(widths),
                               train_lmdb=f"{data}/train_lmdb", test_lmdb=f"{data}/test_lmdb",
                               mean_file=f"{data}/mean.binaryproto"))
    net_path = os.path.join(folder, f"{name}.prototxt")
    prototxt.write_text(net, net_path)
    solver = os.path.join(folder, f"{name}_solver.prototxt")
    with open(solver, "w") as f:
        f.write(f'net: "{net_path}"\nbase_lr: {common.LR}\nlr_policy: "fixed"\n'
                f"momentum: {common.MOMENTUM}\nweight_decay: {common.DECAY}\ndisplay: 1\n"
                f"max_iter: {iters}\nsnapshot: 0\nsnapshot_after_train: false\n"
                f'solver_mode: {device_mode}\nrandom_seed: 1\nsnapshot_prefix: "{folder}/{name}"\n')
    return solver, net


def seconds_per_iteration(path, warmup=WARMUP):
    """Seconds per iteration between iteration `warmup` and the last displayed one, from the
    timestamps of the "Iteration N (...), loss = X" lines (the log parser reads them)."""
    from bnface_caffe.caffelog import parse_log
    stamps = {it: seconds for it, seconds, _ in parse_log(path).loss_points}
    last = max(stamps)
    return (stamps[last] - stamps[warmup]) / (last - warmup)


def run_engine(solver, folder, threads, gpu=None, fast=False, extra=()):
    log = os.path.join(folder, f"engine{'_fast' if fast else ''}.log")
    if os.path.exists(log):
        os.remove(log)
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train.py"), solver, "--backend", "engine",
           "--log", log, *(["--gpu", str(gpu)] if gpu is not None else []),
           *(["--fast"] if fast else []), *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(cmd, check=True, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return seconds_per_iteration(log)


def run_caffe(caffe, solver, folder, threads):
    log = os.path.join(folder, "caffe.log")
    with open(log, "w") as f:
        subprocess.run([caffe, "train", f"--solver={solver}"], check=True,
                       env=common.caffe_env(caffe, threads), stderr=f,
                       stdout=subprocess.DEVNULL)
    return seconds_per_iteration(log)


def run_plain(net_param, iters, device="cpu", fast=False):
    """Seconds per iteration of the same net in torch.nn (plain.Plain) over the same LMDB in
    key order, torch.optim.SGD, reading the loss every iteration as a display would."""
    import torch
    import torch.nn.functional as F
    from plain import Plain
    from bnface_caffe.engine import precision
    from bnface_caffe.engine.data_reader import DatumReader
    from bnface_caffe.formats.blobproto import read_mean_file
    layer = net_param.layer[0]
    batch = layer.data_param.batch_size
    reader = DatumReader(layer.data_param.source)
    mean = torch.from_numpy(read_mean_file(layer.transform_param.mean_file)).to(device)
    scale = layer.transform_param.scale
    torch.manual_seed(1)
    model = Plain(net_param=net_param).to(device)
    if precision.channels_last(fast, device):
        model = model.to(memory_format=torch.channels_last)
    try:
        opt = torch.optim.SGD(model.parameters(), lr=common.LR, momentum=common.MOMENTUM,
                              weight_decay=common.DECAY, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.SGD(model.parameters(), lr=common.LR, momentum=common.MOMENTUM,
                              weight_decay=common.DECAY)
    bf16 = precision.uses_bf16(fast, device)
    times = []
    for _ in range(iters):
        images, labels = reader.next_batch(batch)
        x = (torch.from_numpy(images.copy()).to(device).float() - mean) * scale
        y = torch.from_numpy(labels).to(device).long()
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        float(loss.detach())
        times.append(time.perf_counter())
    reader.close()
    return (times[-1] - times[WARMUP]) / (iters - 1 - WARMUP)


def measure_peak(device, rounds=3):
    return peak.measure(device, rounds=rounds)


def bench_net(name, args, folder, data, device, caffe):
    """One net: every candidate in alternating rounds; returns the row."""
    import torch
    from bnface_caffe.engine import precision
    bn = name == "bn"
    mode = "GPU" if args.gpu is not None else "CPU"
    solver, net = write_run(folder, data, bn, args.iters, args.batch, device_mode=mode)
    modes = args.modes.split(",")
    candidates = {}
    for m in modes:
        fast = m == "fast"
        candidates[f"engine_{m}"] = (lambda fast=fast: run_engine(solver, folder, args.threads,
                                                                  args.gpu, fast))
        candidates[f"plain_{m}"] = (lambda fast=fast: run_plain(net, args.iters, device, fast))
    if caffe and args.gpu is None:
        candidates["caffe"] = lambda: run_caffe(caffe, solver, folder, args.threads)
    best, peaks = {}, []
    for _ in range(args.rounds):
        peaks.append(measure_peak(device))
        for key, fn in candidates.items():
            seconds = fn()
            best[key] = min(best.get(key, seconds), seconds)
    peaks = peak.summarise({k: max(p[k] for p in peaks) for k in peaks[0]
                            if k.endswith(("_gemm", "_conv"))})
    work = sum(r.total for r in flops.net_flops(bn, args.batch))
    row = {"net": name, "batch": args.batch, "classes": common.CLASSES, "device": mode,
           "threads": args.threads if args.gpu is None else torch.get_num_threads(),
           "iters": args.iters, "rounds": args.rounds, "gflop_per_iteration": work / 1e9,
           "peak": peaks, "bf16": precision.uses_bf16(True, device)}
    for key, seconds in best.items():
        row[key] = {"s_per_iter": seconds, "img_s": args.batch / seconds,
                    "gflop_s": work / seconds / 1e9,
                    "hours_420k": common.PAPER_ITERATIONS * seconds / 3600}
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--caffe", help="real Caffe's binary (default: `caffe` on PATH, if any)")
    p.add_argument("--nets", default="bn,baseline")
    p.add_argument("--modes", default="faithful,fast")
    p.add_argument("--gpu", type=int, help="run on this CUDA device instead of the CPU")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    args.caffe = common.find_caffe(args.caffe)
    import torch
    torch.set_num_threads(args.threads)
    device = "cpu" if args.gpu is None else f"cuda:{args.gpu}"
    with tempfile.TemporaryDirectory() as folder:
        data = make_data(folder)
        results = [bench_net(name, args, folder, data, device, args.caffe)
                   for name in args.nets.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(f"{r['net']} ({r['device']}, batch {r['batch']}, {r['threads']} threads, "
              f"{r['gflop_per_iteration']:.1f} GFLOP per iteration; fp32 peak "
              f"{r['peak']['fp32_peak']:.0f}, best {r['peak']['best_peak']:.0f} GFLOP/s)")
        for key, v in r.items():
            if isinstance(v, dict) and "img_s" in v:
                print(f"  {key:15s} {v['img_s']:8.1f} img/s  {1e3 * v['s_per_iter']:7.1f} ms/iter  "
                      f"{v['gflop_s']:6.1f} GFLOP/s  420k iterations: {v['hours_420k']:.1f} h")


if __name__ == "__main__":
    main()
