"""Run every benchmark and write BENCHMARKS.md (what `make bench` does).

    python bench/run_all.py [-o BENCHMARKS.md] [--gpu ID] [--skip-long-run]

Each bench script runs in its own process with --json; this file only collects the
figures and writes them down with the machine and the date. The long-run memory benchmark
(20,000 iterations, several minutes) records its figures in results/bench/long_run.json;
--skip-long-run reuses the last recorded ones. Real Caffe is timed too when
a `caffe` binary is on PATH (bench_train.py finds it). Speed goals are read here, never
asserted in tests.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PAPER_ITERATIONS = 420000
LONG_RUN_RECORD = os.path.join(ROOT, "results", "bench", "long_run.json")


def bench(script, *args):
    cmd = [sys.executable, os.path.join(HERE, script), *args, "--json"]
    print("running", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    lines = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                           check=True).stdout.splitlines()
    # the JSON document starts at the first line that opens an object or a list
    start = next(i for i, line in enumerate(lines) if line[:1] in "{[")
    return json.loads("\n".join(lines[start:]))


def machine():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{cpu}, {os.cpu_count()} cores, GPU: {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, {platform.platform()}")


def hours(images_per_s, batch=64):
    return PAPER_ITERATIONS * batch / images_per_s / 3600


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
    result["machine"] = machine()
    os.makedirs(os.path.dirname(LONG_RUN_RECORD), exist_ok=True)
    with open(LONG_RUN_RECORD, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return result


def long_run_lines(r):
    if r is None:
        return ["", "## Memory over a long run (bench/bench_long_run.py)", "",
                "Not measured yet: run `python bench/run_all.py` without --skip-long-run."]
    return [
        "",
        "## Memory over a long run (bench/bench_long_run.py)",
        "",
        f"Measured on {r['date']} ({r['machine']}). The {r['net']} net at 4-wide convolutions, "
        f"batch {r['batch']}, mirror on, {r['iterations']:,} iterations in one process: display "
        "every 100, a test every 1,000, a snapshot with its resume sidecar every 2,000 "
        "(--keep-snapshots 2), a --log file; RSS sampled every 1,000 iterations "
        f"({r['seconds']:.0f} s, {r['threads']} torch thread(s), log {r['log_mib']} MiB).",
        "",
        "| | at iteration " + f"{r['start_iter']:,} | at iteration {r['iterations'] // 2:,} "
        f"| at iteration {r['iterations']:,} | after train() returned |",
        "|---|---:|---:|---:|---:|",
        f"| RSS | {r['rss_start_mib']:.1f} MiB | {r['rss_half_mib']:.1f} MiB "
        f"| {r['rss_end_mib']:.1f} MiB | {r['rss_after_mib']:.1f} MiB |",
        f"| peak RSS | {r['peak_start_mib']:.1f} MiB | | {r['peak_end_mib']:.1f} MiB | |",
        f"| Python objects | {r['objects_start']:,} | | {r['objects_end']:,} | |",
        f"| threads | {r['threads_start']} | | {r['threads_end']} | {r['threads_after']} |",
        "",
        f"Growth over the second half: {r['rss_growth_second_half_mib']:+.1f} MiB of RSS. "
        "Every sample (iteration: MiB): " + ", ".join(f"{s['iter']:,}: {s['rss_mib']:.1f}"
                                                     for s in r["samples"][:-1]) + ".",
    ]


def write(path, lmdb, net, train, gpu_train, demo, long=None):
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/run_all.py) on {datetime.date.today().isoformat()}.",
        f"Machine: {machine()}.",
        "Figures vary with load: on a shared machine rerun `make bench` when it is quiet.",
        "",
        "## Training throughput (full iterations: data, forward/backward, update, log)",
        "",
        "Both paper nets at batch 64 with 14,700 classes, fp32, timed from the logs' timestamps "
        "(bench/bench_train.py). Goals: engine ≥ 90% of a plain PyTorch loop; ≥ 2× real Caffe "
        "on the CPU.",
        "",
        "| net | device | engine img/s | plain PyTorch img/s | engine / plain | real Caffe img/s "
        "| engine / Caffe | time per iteration | projected 420,000 iterations |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in train + gpu_train:
        caffe = row.get("caffe")
        ratio = f"{row['engine'] / caffe:.2f}×" if caffe else "—"
        lines.append(
            f"| {row['net']} | {row['device']} ({row['threads']} threads) | {row['engine']:.1f} "
            f"| {row['plain_pytorch']:.1f} | {row['engine'] / row['plain_pytorch']:.0%} "
            f"| {f'{caffe:.1f}' if caffe else 'not on PATH'} "
            f"| {ratio} "
            f"| {1000 * 64 / row['engine']:.0f} ms | {hours(row['engine']):.0f} h |")
        if "engine_fast" in row:
            lines.append(f"| {row['net']} | {row['device']} --fast | {row['engine_fast']:.1f} | | | | "
                         f"| {1000 * 64 / row['engine_fast']:.1f} ms "
                         f"| {hours(row['engine_fast']):.1f} h |")
    if not gpu_train:
        lines.append("| — | GPU | not measured: no GPU on this machine (`make bench` with "
                     "`python bench/run_all.py --gpu 0` adds the GPU rows) | | | | | | |")
    lines += [
        "",
        "The paper's 420,000-iteration baseline took 95 hours on a Titan X.",
        "",
        "## Forward + backward per batch of 64 (bench/bench_net.py)",
        "",
        "The engine against a hand-written PyTorch model of the same net (goal: within 10%); "
        "best of alternating rounds, 14,700 classes, without and with the SGD step.",
        "",
        "| net | device | pass | engine ms | plain ms | engine / plain speed |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in net:
        step = "forward+backward+SGD" if row.get("sgd") else "forward+backward"
        lines.append(f"| {row['net']} | {row['device']} ({row['threads']} threads) | {step} "
                     f"| {row['engine_ms']:.0f} | {row['plain_ms']:.0f} | {row['engine_vs_plain']:.0%} |")
    lines += [
        "",
        "## LMDB (bench/bench_lmdb.py)",
        "",
        "| what | figure | goal |",
        "|---|---:|---:|",
        f"| build from {lmdb['jpeg_images']} JPEG files, detection off | "
        f"{lmdb['build_jpeg_detect_off_img_s']:,.0f} img/s | ≥ 2,000 img/s |",
        f"| build from JPEG files, Haar face detection on (found in "
        f"{lmdb['detect_found_fraction']:.0%}) | {lmdb['build_jpeg_detect_on_img_s']:,.0f} img/s | — |",
        f"| read raw 50×50 records into a float32 batch, one core | "
        f"{lmdb['read_raw_img_s']:,.0f} img/s | ≥ 50,000 img/s |",
        f"| read PNG-encoded records, one core | {lmdb['read_png_encoded_img_s']:,.0f} img/s | — |",
        f"| render + pack the default synthetic set ({lmdb['build_synthetic_default_images']:,} "
        f"images) | {lmdb['build_synthetic_default_s']:.1f} s | — |",
    ]
    lines += long_run_lines(long)
    if demo:
        lines += ["", "## `make demo`", "",
                  f"The last recorded demo (results/demo/run.json, {demo['date']}): "
                  f"{demo.get('minutes', '?')} minutes for the five runs on "
                  f"{demo['machine'].get('cpu', 'this machine')} ({demo['machine']['cpus']} cores)."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    p.add_argument("--gpu", help="also benchmark training on this CUDA device")
    p.add_argument("--skip-long-run", action="store_true",
                   help="skip the 20,000-iteration memory benchmark (several minutes); "
                        "BENCHMARKS.md then shows its last recorded figures")
    args = p.parse_args(argv)
    lmdb = bench("bench_lmdb.py")
    net = bench("bench_net.py") + bench("bench_net.py", "--sgd")
    train = bench("bench_train.py")
    gpu_train = bench("bench_train.py", "--gpu", args.gpu) if args.gpu is not None else []
    demo_info = os.path.join(ROOT, "results", "demo", "run.json")
    demo = json.load(open(demo_info)) if os.path.exists(demo_info) else None
    write(args.output, lmdb, net, train, gpu_train, demo, long_run(args.skip_long_run))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
