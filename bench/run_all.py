"""Run every benchmark and write BENCHMARKS.md (what `make bench` does).

    python bench/run_all.py [-o BENCHMARKS.md] [--caffe PATH] [--clock wall|cpu]
    python bench/run_all.py --gpu 0            # the GPU rows only (bench/gpu.sh runs this)
    python bench/run_all.py --write-only       # re-render BENCHMARKS.md from the recorded JSON

Each bench script runs in its own process with --json; this file only collects the figures
into bench/results/cpu.json (or gpu.json) and renders BENCHMARKS.md from the recorded files
(bench/report_md.py), so a GPU run adds its rows to the last CPU figures without re-measuring
them. Real Caffe is timed when a `caffe` binary is given (--caffe) or on PATH. Speed goals are
read here, never asserted in tests.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import report_md  # noqa: E402

ROOT = common.ROOT
LONG_RUN_RECORD = os.path.join(ROOT, "results", "bench", "long_run.json")
RESULTS = os.path.join(HERE, "results")
FIGURES = os.path.join(HERE, "figures")


def bench(script, *args):
    cmd = [sys.executable, os.path.join(HERE, script), *map(str, args), "--json"]
    print("running", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    start = time.time()
    lines = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                           check=True).stdout.splitlines()
    print(f"  ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    # the JSON document starts at the first line that opens an object or a list
    start_line = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    return json.loads("\n".join(lines[start_line:]))


def relative_figures(scaling):
    """Figure paths relative to the repository (BENCHMARKS.md links them)."""
    if scaling and "figures" in scaling:
        scaling["figures"] = {k: os.path.relpath(v, ROOT) for k, v in scaling["figures"].items()}
    return scaling


def long_run(skip):
    """bench_long_run.py's figures (run now, or the last recorded ones with `skip`)."""
    if skip:
        return json.load(open(LONG_RUN_RECORD)) if os.path.exists(LONG_RUN_RECORD) else None
    cmd_prefix = ["nice"] if os.name == "posix" else []
    print("running nice bench_long_run.py (several minutes)", file=sys.stderr, flush=True)
    out = subprocess.run(cmd_prefix + [sys.executable, os.path.join(HERE, "bench_long_run.py"),
                                       "--json"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    result = json.loads(out[out.index("{"):])
    result["date"] = datetime.date.today().isoformat()
    result["machine"] = report_md.machine_line(common.machine())
    os.makedirs(os.path.dirname(LONG_RUN_RECORD), exist_ok=True)
    with open(LONG_RUN_RECORD, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return result


def run_cpu(args):
    """Every CPU benchmark, most telling first; the record is saved after each one, so an
    interrupted run keeps what it measured (marked incomplete in BENCHMARKS.md)."""
    started = time.time()
    caffe = common.find_caffe(args.caffe)
    caffe_args = ["--caffe", caffe] if caffe else []
    clock = ["--clock", args.clock]
    out = {"date": datetime.datetime.now().isoformat(timespec="minutes"),
           "machine": common.machine(), "load_start": common.load_average(),
           "clock": args.clock, "threads": os.cpu_count(), "caffe": caffe}
    kept = {}
    if args.parts:     # measure these again, keep the recorded rest
        kept = load("cpu") or {}
        out["parts_dates"] = kept.get("parts_dates", {})
    parts = [
        ("peak", lambda: bench("peak.py", *clock)),
        ("net", lambda: bench("bench_net.py", *clock)),
        ("train", lambda: bench("bench_train.py", *caffe_args)),
        ("fidelity", lambda: bench("bench_fidelity.py", *caffe_args)),
        ("scaling", lambda: relative_figures(bench("bench_scaling.py", "--figures", FIGURES,
                                                   *clock))),
        ("profile", lambda: bench("profile_net.py", *clock)
         + bench("profile_net.py", "--nets", "bn", "--mode", "fast", *clock)),
        # one core, CPU time: figures that load on the other core barely moves
        ("peak_1thread", lambda: bench("peak.py", "--threads", "1", *clock)),
        ("net_1thread", lambda: bench("bench_net.py", "--threads", "1", "--clock", "cpu",
                                      "--rounds", "4")),
        ("lmdb", lambda: bench("bench_lmdb.py")),
        ("compile", lambda: bench("bench_net.py", "--compile", "--net", "bn", "--rounds", "3",
                                  *clock)),
        ("long_run", lambda: long_run(args.skip_long_run)),
    ]
    names = [name for name, _ in parts]
    chosen = args.parts.split(",") if args.parts else names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(unknown)}; the parts are {', '.join(names)}")
    for name in names:
        if name not in chosen and name in kept:
            out[name] = kept[name]
    for name, measure in parts:
        if name not in chosen:
            continue
        out[name] = measure()
        out.setdefault("parts_dates", {})[name] = datetime.datetime.now().isoformat(
            timespec="minutes")
        out["load_end"] = common.load_average()
        out["minutes"] = (time.time() - started) / 60
        out["missing"] = [later for later, _ in parts if later not in out]
        save("cpu", out)
    return out


def run_gpu(args):
    started = time.time()
    gpu = ["--gpu", str(args.gpu)]
    out = {"date": datetime.datetime.now().isoformat(timespec="minutes"),
           "machine": common.machine(), "tests": load_tests_summary(args.tests_summary)}
    out["peak"] = bench("peak.py", *gpu, "--rounds", "20")
    out["net"] = bench("bench_net.py", *gpu, "--batch", "128", "--rounds", "5", "--iters", "20")
    out["train"] = bench("bench_train.py", *gpu, "--batch", "128", "--iters", "300",
                         "--rounds", "1")
    out["compile"] = bench("bench_net.py", "--compile", *gpu, "--net", "bn", "--modes", "fast",
                           "--batch", "128", "--rounds", "3", "--iters", "20")
    out["scaling"] = relative_figures(bench("bench_scaling.py", *gpu, "--in-process",
                                            "--rounds", "20", "--sweeps", "1",
                                            "--figures", FIGURES))
    out["minutes"] = (time.time() - started) / 60
    return out


def load_tests_summary(path):
    """{"summary": the last non-empty line of pytest's output} (or "not run")."""
    if path and os.path.exists(path):
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
        if lines:
            return {"summary": lines[-1]}
    return {"summary": "not run"}


def load(name):
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save(name, result):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


def write(path):
    cpu, gpu = load("cpu"), load("gpu")
    if cpu is None:
        raise SystemExit("no recorded CPU figures (bench/results/cpu.json): run `make bench` first")
    demo_info = os.path.join(ROOT, "results", "reference", "demo", "run.json")
    demo = json.load(open(demo_info)) if os.path.exists(demo_info) else None
    with open(path, "w") as f:
        f.write(report_md.markdown(cpu, gpu, ROOT, demo))
    print(f"wrote {path}", file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    p.add_argument("--caffe", help="real Caffe's binary (default: `caffe` on PATH, if any)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--gpu", help="measure the GPU rows on this CUDA device (not the CPU ones)")
    p.add_argument("--tests-summary", help="a file whose last line is the CUDA tests' summary")
    p.add_argument("--skip-long-run", action="store_true",
                   help="skip the 20,000-iteration memory benchmark (several minutes); "
                        "BENCHMARKS.md then shows its last recorded figures")
    p.add_argument("--parts", help="comma-separated benchmarks to measure again (peak, net, train, "
                   "fidelity, scaling, profile, peak_1thread, net_1thread, lmdb, compile, "
                   "long_run); the others keep their recorded figures")
    p.add_argument("--write-only", action="store_true",
                   help="render BENCHMARKS.md from bench/results/*.json without measuring")
    args = p.parse_args(argv)
    if not args.write_only:
        if args.gpu is not None:
            save("gpu", run_gpu(args))
        else:
            save("cpu", run_cpu(args))
    write(args.output)


if __name__ == "__main__":
    main()
