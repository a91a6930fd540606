"""Engine vs plain PyTorch, one training step (forward + backward + SGD update) per batch, both
paper nets, faithful and fast mode, against the machine's peak measured in the same rounds.

The engine runs the generated train net (its Data layers swapped for an Input layer of the same
shapes) with its own Solver (Caffe's SGD); the plain side is a hand-written torch.nn model of the
same net (Plain, read off the generated NetParameter) with torch.optim.SGD, channels-last like
the engine, and bf16 autocast in fast mode wherever the engine uses it. Rounds alternate between
engine, plain and the peak kernels (bench/peak.py), so load slows them alike; the best round of
each is kept. FLOPs are counted from the prototxt (bench/flops.py). Goal (issue 15): the engine
≥ 100% of plain PyTorch in the same mode.

    python bench/bench_net.py [--batch 64] [--rounds 6] [--iters 1] [--threads N] [--clock wall|cpu]
                              [--modes faithful,fast] [--net bn|baseline|both] [--gpu ID]
                              [--compile] [--json]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import flops  # noqa: E402
import peak  # noqa: E402


def repeat(step, n):
    def steps():
        for _ in range(n):
            step()
    return steps


def per_step(timed, n):
    return {k: v / n for k, v in timed.items() if k != "samples"}


def bench(bn, fast, args, device):
    """One row: engine and plain steps and the peak kernels, in alternating rounds."""
    param = common.input_net_param(bn, args.batch, args.classes)
    net, _, engine = common.engine_step(param, device, fast, args.batch, args.classes)
    work = flops.training_flops(net)
    _, plain = common.plain_step(param, device, fast, args.batch, args.classes)
    candidates = {"engine": repeat(engine, args.iters), "plain": repeat(plain, args.iters)}
    kernels = peak.kernels(device)
    candidates.update({name: fn for name, (fn, _) in kernels.items()})
    timed = common.alternate(candidates, args.rounds, common.clock(args.clock))
    peaks = peak.summarise({name: kernels[name][1] / timed[name]["best"] / 1e9
                            for name in kernels})
    from bnface_caffe.engine import precision
    mode_peak = peaks["best_peak"] if precision.uses_bf16(fast, device) else peaks["fp32_peak"]
    e, p = per_step(timed["engine"], args.iters), per_step(timed["plain"], args.iters)
    row = {"net": "bn" if bn else "baseline", "mode": "fast" if fast else "faithful",
           "bf16": precision.uses_bf16(fast, device), "device": str(device),
           "threads": torch.get_num_threads(), "batch": args.batch, "classes": args.classes,
           "clock": args.clock, "rounds": args.rounds, "iters": args.iters,
           "gflop_per_iteration": work / 1e9,
           "engine_ms": e["best"] * 1e3, "plain_ms": p["best"] * 1e3,
           "median_engine_ms": e["median"] * 1e3, "median_plain_ms": p["median"] * 1e3,
           "engine_img_s": args.batch / e["best"], "plain_img_s": args.batch / p["best"],
           "engine_vs_plain": p["best"] / e["best"],
           "engine_gflop_s": work / e["best"] / 1e9, "plain_gflop_s": work / p["best"] / 1e9,
           "peak": peaks, "mode_peak_gflop_s": mode_peak}
    row["engine_pct_of_mode_peak"] = row["engine_gflop_s"] / mode_peak
    row["engine_pct_of_fp32_gemm"] = row["engine_gflop_s"] / peaks["fp32_gemm"]
    row["engine_pct_of_fp32_peak"] = row["engine_gflop_s"] / peaks["fp32_peak"]
    net.close()
    return row


def bench_compile(bn, fast, args, device):
    """The engine eager against the engine with torch.compile (Net(compile=True)), alternating;
    the compiled net's first step (the compilation) is timed on its own."""
    import time
    param = common.input_net_param(bn, args.batch, args.classes)
    net, _, eager = common.engine_step(param, device, fast, args.batch, args.classes)
    work = flops.training_flops(net)
    cnet, _, compiled_step = common.engine_step(param, device, fast, args.batch, args.classes,
                                                compile=True)
    start = time.perf_counter()
    compiled_step()
    first = time.perf_counter() - start
    timed = common.alternate({"eager": repeat(eager, args.iters),
                              "compiled": repeat(compiled_step, args.iters)}, args.rounds,
                             common.clock(args.clock))
    timed = {k: per_step(v, args.iters) for k, v in timed.items()}
    row = {"net": "bn" if bn else "baseline", "mode": "fast" if fast else "faithful",
           "device": str(device), "threads": torch.get_num_threads(), "batch": args.batch,
           "clock": args.clock, "compiled": bool(cnet.compiled_runs),
           "first_step_s": first, "eager_ms": timed["eager"]["best"] * 1e3,
           "compiled_ms": timed["compiled"]["best"] * 1e3,
           "compiled_vs_eager": timed["eager"]["best"] / timed["compiled"]["best"],
           "gflop_per_iteration": work / 1e9}
    net.close()
    cnet.close()
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=common.CLASSES)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iters", type=int, default=1, help="steps per timed round")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--modes", default="faithful,fast")
    ap.add_argument("--gpu", type=int, default=None)
    ap.add_argument("--net", choices=["baseline", "bn", "both"], default="both")
    ap.add_argument("--compile", action="store_true",
                    help="instead: the engine eager against the engine with torch.compile")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device("cpu") if args.gpu is None else torch.device("cuda", args.gpu)
    if args.threads:
        torch.set_num_threads(args.threads)
    nets = [True, False] if args.net == "both" else [args.net == "bn"]
    modes = [m == "fast" for m in args.modes.split(",")]
    if args.compile:   # a cold compile: inductor's on-disk cache would hide its cost
        import atexit
        import shutil
        import tempfile
        cache = tempfile.mkdtemp(prefix="bench_inductor_")
        atexit.register(shutil.rmtree, cache, True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    run = bench_compile if args.compile else bench
    results = [run(bn, fast, args, device) for fast in modes for bn in nets]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"one training step per batch of {args.batch}, {device}, {torch.get_num_threads()} "
          f"threads, {args.clock} clock, best of {args.rounds} alternating rounds")
    for r in results:
        if args.compile:
            print(f"  {r['net']:>8} {r['mode']:8}: eager {r['eager_ms']:7.1f} ms  compiled "
                  f"{r['compiled_ms']:7.1f} ms (first step {r['first_step_s']:.0f} s)")
            continue
        print(f"  {r['net']:>8} {r['mode']:8}: engine {r['engine_ms']:7.1f} ms "
              f"({r['engine_img_s']:6.1f} img/s, {r['engine_gflop_s']:5.1f} GFLOP/s = "
              f"{100 * r['engine_pct_of_mode_peak']:3.0f}% of peak)  plain {r['plain_ms']:7.1f} ms  "
              f"engine = {100 * r['engine_vs_plain']:.0f}% of plain")


if __name__ == "__main__":
    main()
