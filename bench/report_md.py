"""BENCHMARKS.md from the recorded results (bench/results/cpu.json, gpu.json) and the committed
fast-mode accuracy runs (results/reference/fast_mode/): every figure in the file is one of them.
run_all.py calls `markdown`; nothing here measures anything."""
import csv
import json
import os

PAPER_ITERATIONS = 420_000
FAST_RUNS = os.path.join("results", "reference", "fast_mode")
FAST_MODE_RUNS = "multistep,early_drop"   # the paper's BN run and ours: BN is where bf16 bites


def pct(x):
    return f"{100 * x:.0f}%"


def yes(ok):
    return "**yes**" if ok else "**no**"


def machine_line(m):
    flags = ", ".join(m.get("flags") or []) or "none listed"
    return (f"{m['cpu']}, {m['cores']} cores (SIMD: {flags}), GPU: {m['gpu']}; Python "
            f"{m['python']}, torch {m['torch']}, {m['platform']}")


def _train_row(r, key):
    return r.get(key)


def goals(cpu, gpu, fidelity):
    rows = []
    train = {r["net"]: r for r in cpu.get("train", [])}
    bn = train.get("bn")
    if bn and "engine_faithful" in bn:
        f = bn["engine_faithful"]
        peak = bn["peak"]
        rows.append(("faithful BN net, full iterations ≥ 85% of the fp32 GEMM peak",
                     f"{f['gflop_s']:.1f} of {peak['fp32_gemm']:.1f} GFLOP/s = "
                     f"{pct(f['gflop_s'] / peak['fp32_gemm'])}",
                     yes(f["gflop_s"] >= 0.85 * peak["fp32_gemm"])))
        rows.append(("… and of the best fp32 kernel (the 3×3 conv; stricter, not a goal)",
                     f"{pct(f['gflop_s'] / peak['fp32_peak'])} of {peak['fp32_peak']:.1f} GFLOP/s",
                     "—"))
    for r in cpu.get("net_1thread", []):
        if r["net"] == "bn":
            rows.append((f"… {r['mode']} BN net, one step on one core (CPU time, robust to load): "
                         "% of that core's fp32 GEMM / of the mode's peak",
                         f"{r['engine_gflop_s']:.1f} GFLOP/s: {pct(r['engine_pct_of_fp32_gemm'])} / "
                         f"{pct(r['engine_pct_of_mode_peak'])}", "—"))
    if bn and "engine_fast" in bn:
        fast = bn["engine_fast"]
        peak = bn["peak"]
        which = "bf16" if bn.get("bf16") else "fp32"
        rows.append((f"fast BN net ≥ 85% of the best peak the hardware offers ({which})",
                     f"{fast['gflop_s']:.1f} of {peak['best_peak']:.1f} GFLOP/s = "
                     f"{pct(fast['gflop_s'] / peak['best_peak'])}",
                     yes(fast["gflop_s"] >= 0.85 * peak["best_peak"])))
    nets = [r for r in cpu.get("train", []) if "engine_fast" in r and "engine_faithful" in r]
    if nets:
        ratios = {r["net"]: r["engine_fast"]["img_s"] / r["engine_faithful"]["img_s"] for r in nets}
        rows.append(("fast never slower than faithful (full iterations)",
                     ", ".join(f"{k} {v:.2f}×" for k, v in ratios.items()),
                     yes(min(ratios.values()) >= 1)))
    vs_plain = []
    for r in cpu.get("train", []):
        for mode in ("faithful", "fast"):
            if f"engine_{mode}" in r and f"plain_{mode}" in r:
                vs_plain.append((f"{r['net']} {mode} (iterations)",
                                 r[f"engine_{mode}"]["img_s"] / r[f"plain_{mode}"]["img_s"]))
    for r in cpu.get("net", []):
        vs_plain.append((f"{r['net']} {r['mode']} (steps)", r["engine_vs_plain"]))
    for r in cpu.get("net_1thread", []):
        vs_plain.append((f"{r['net']} {r['mode']} (steps, 1 thread)", r["engine_vs_plain"]))
    if vs_plain:
        low = min(v for _, v in vs_plain)
        rows.append(("engine ≥ 100% of a plain PyTorch loop, same net and mode",
                     ", ".join(f"{k} {pct(v)}" for k, v in vs_plain), yes(low >= 1.0)))
    for r in cpu.get("train", []):
        if "caffe" in r:
            caffe = r["caffe"]["img_s"]
            text = f"faithful {r['engine_faithful']['img_s'] / caffe:.2f}×"
            if "engine_fast" in r:
                text += f", fast {r['engine_fast']['img_s'] / caffe:.2f}×"
            rows.append((f"{r['net']} net: ratio to real Caffe (same prototxt, LMDB, threads); "
                         "goal ≥ 2× faithful" + (", ≥ 3.5× fast with bf16" if r.get("bf16") else ""),
                         text, yes(r["engine_faithful"]["img_s"] >= 2 * caffe
                                   and (not r.get("bf16") or "engine_fast" not in r
                                        or r["engine_fast"]["img_s"] >= 3.5 * caffe))))
    if fidelity and "faithful_max_relative" in fidelity:
        rows.append((f"faithful loss within {fidelity['tolerance']:g} relative of "
                     f"{'real Caffe' if fidelity['reference'] == 'caffe' else 'faithful'} over "
                     f"{fidelity['iters']} iterations from the same weights",
                     f"max {fidelity['faithful_max_relative']:.1e}",
                     yes(fidelity["faithful_within_tolerance"])))
    gpu_train = {r["net"]: r for r in (gpu or {}).get("train", [])}
    g = gpu_train.get("bn")
    if g:
        rows.append((f"GPU ({gpu['machine']['gpu']}), BN net batch {g['batch']}: ≥ 15,000 img/s "
                     "faithful, ≥ 50,000 fast",
                     f"{g['engine_faithful']['img_s']:,.0f} / {g['engine_fast']['img_s']:,.0f} img/s",
                     yes(g["engine_faithful"]["img_s"] >= 15000
                         and g["engine_fast"]["img_s"] >= 50000)))
    else:
        rows.append(("GPU: ≥ 15,000 img/s faithful and ≥ 50,000 img/s fast (BN net, batch 128, "
                     "H200-class)", "not measured: no GPU in the session that wrote this file",
                     "—"))
    lines = ["| goal (issue 15) | figure | met |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return lines


def peak_table(cpu, gpu):
    cols = [("2 threads" if cpu.get("threads", 2) != 1 else "1 thread", cpu.get("peak"))]
    if cpu.get("peak_1thread"):
        cols.append(("1 thread", cpu["peak_1thread"]))
    if gpu and gpu.get("peak"):
        cols.append((f"GPU ({gpu['machine']['gpu']})", gpu["peak"]))
    cols = [(name, p) for name, p in cols if p]
    names = ["fp32_gemm", "fp32_conv", "tf32_gemm", "bf16_gemm", "bf16_conv", "fp32_peak",
             "best_peak"]
    label = {"fp32_gemm": "fp32 GEMM 2048×2048", "fp32_conv": "fp32 3×3 conv (64→128, 25×25, "
             "batch 64)", "tf32_gemm": "TF32 GEMM", "bf16_gemm": "bf16 GEMM 2048×2048",
             "bf16_conv": "bf16 3×3 conv", "fp32_peak": "**fp32 peak** (best fp32 kernel)",
             "best_peak": "**best peak** (best kernel)"}
    lines = ["| kernel | " + " | ".join(f"GFLOP/s, {n}" for n, _ in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name in names:
        if any(name in p for _, p in cols):
            cells = [f"{p[name]:,.1f}" if name in p else "—" for _, p in cols]
            lines.append(f"| {label[name]} | " + " | ".join(cells) + " |")
    return lines


def train_table(rows, caption_gpu=False):
    lines = ["| net | who | mode | img/s | ms per iteration | GFLOP/s | % of peak | vs plain PyTorch "
             "(same mode) | vs real Caffe | 420,000 iterations |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        peak = r["peak"]
        caffe = r.get("caffe", {}).get("img_s")
        for key, who, mode in (("engine_faithful", "engine", "faithful"),
                               ("engine_fast", "engine", "fast"),
                               ("plain_faithful", "plain PyTorch", "faithful"),
                               ("plain_fast", "plain PyTorch", "fast"),
                               ("caffe", "real Caffe", "—")):
            v = r.get(key)
            if not v:
                continue
            mode_peak = peak["best_peak"] if mode == "fast" else peak["fp32_peak"]
            plain = r.get(f"plain_{mode}", {}).get("img_s")
            vs_plain = pct(v["img_s"] / plain) if who == "engine" and plain else ""
            vs_caffe = f"{v['img_s'] / caffe:.2f}×" if caffe and key != "caffe" else ""
            lines.append(f"| {r['net']} | {who} | {mode} | {v['img_s']:,.1f} | "
                         f"{1e3 * v['s_per_iter']:,.1f} | {v['gflop_s']:,.1f} | "
                         f"{pct(v['gflop_s'] / mode_peak)} | {vs_plain} | {vs_caffe} | "
                         f"{_duration(v['hours_420k'] * 3600)} |")
    return lines


def _duration(seconds):
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.0f} h"
    return f"{seconds / 60:,.0f} min"


def net_table(rows):
    lines = ["| net | mode | engine ms | plain ms | engine img/s | engine GFLOP/s | % of peak "
             "(the mode's) | % of fp32 GEMM | engine / plain speed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['mode']}{' (bf16)' if r['bf16'] else ''} | "
                     f"{r['engine_ms']:,.1f} | {r['plain_ms']:,.1f} | {r['engine_img_s']:,.1f} | "
                     f"{r['engine_gflop_s']:,.1f} | {pct(r['engine_pct_of_mode_peak'])} | "
                     f"{pct(r['engine_pct_of_fp32_gemm'])} | {pct(r['engine_vs_plain'])} |")
    return lines


def compile_table(rows):
    lines = ["| net | mode | eager ms | compiled ms | compiled speed / eager | compiling (first "
             "step) |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        state = "" if r["compiled"] else " (fell back to eager)"
        lines.append(f"| {r['net']} | {r['mode']} | {r['eager_ms']:,.1f} | {r['compiled_ms']:,.1f}"
                     f"{state} | {pct(r['compiled_vs_eager'])} | {r['first_step_s']:.0f} s |")
    return lines


def profile_tables(profiles):
    lines = []
    for p in profiles:
        total = sum(v["seconds"] for v in p["kinds"].values())
        lines += ["", f"**{p['net']} net**, {p['mode']} mode, batch {p['batch']}, {p['classes']:,} "
                  f"classes, {p['threads']} threads: a real training step takes "
                  f"{1e3 * p['step_s']:,.0f} ms.", "",
                  "| part | ms | share | GFLOP | GFLOP/s |", "|---|---:|---:|---:|---:|"]
        for kind, v in sorted(p["kinds"].items(), key=lambda kv: -kv[1]["seconds"]):
            if v["seconds"] * 1e3 < 0.05 and not v["flop"]:
                continue
            rate = f"{v['flop'] / v['seconds'] / 1e9:,.1f}" if v["flop"] and v["seconds"] else ""
            flop = f"{v['flop'] / 1e9:,.2f}" if v["flop"] else ""
            lines.append(f"| {kind} | {1e3 * v['seconds']:,.1f} | {pct(v['seconds'] / total)} | "
                         f"{flop} | {rate} |")
    bn = next((p for p in profiles if p["net"] == "bn"), None)
    if bn:
        lines += ["", "Per layer (BN net):", "",
                  "| layer | type | forward ms | backward ms | forward GFLOP | backward GFLOP | "
                  "GFLOP/s |", "|---|---|---:|---:|---:|---:|---:|"]
        for layer in bn["layers"]:
            s = layer["forward_s"] + layer["backward_s"]
            flop = layer["forward_flop"] + layer["backward_flop"]
            if s * 1e3 < 0.05 and not flop:
                continue
            rate = f"{flop / s / 1e9:,.1f}" if flop and s else ""
            lines.append(f"| {layer['name']} | {layer['type']} | {1e3 * layer['forward_s']:,.2f} | "
                         f"{1e3 * layer['backward_s']:,.2f} | "
                         f"{layer['forward_flop'] / 1e9:,.2f} | {layer['backward_flop'] / 1e9:,.2f} | "
                         f"{rate} |")
    return lines


def fidelity_lines(f):
    if not f:
        return ["Not measured."]
    ref = "real Caffe" if f["reference"] == "caffe" else "the engine's faithful mode (no `caffe`)"
    lines = [f"BN net, batch {f['batch']}, {f['classes']:,} classes, {f['iters']} iterations from "
             f"the same .caffemodel on the same LMDB, against {ref}.", "",
             "| run | max relative loss difference | iterations | tolerance |", "|---|---:|---:|---:|"]
    for mode in ("faithful", "fast"):
        if f"{mode}_max_relative" in f:
            tol = f"{f['tolerance']:g}" if mode == "faithful" else "— (bf16)"
            lines.append(f"| engine {mode} | {f[f'{mode}_max_relative']:.2e} | "
                         f"{f[f'{mode}_iterations_compared']} | {tol} |")
    losses = f.get("losses", {})
    if losses:
        names = list(losses)
        lines += ["", "| iteration | " + " | ".join(names) + " |",
                  "|---:|" + "---:|" * len(names)]
        n = min(len(v) for v in losses.values())
        for i in sorted({0, 1, 2, n // 2, n - 2, n - 1}):
            if 0 <= i < n:
                lines.append(f"| {i} | " + " | ".join(f"{losses[k][i]:.6f}" for k in names) + " |")
    return lines


def read_table(folder):
    path = os.path.join(folder, "table.csv")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    info = {}
    if os.path.exists(os.path.join(folder, "run.json")):
        with open(os.path.join(folder, "run.json")) as f:
            info = json.load(f)
    return rows, info


def accuracy_lines(root):
    faithful = read_table(os.path.join(root, FAST_RUNS, "faithful"))
    fast = read_table(os.path.join(root, FAST_RUNS, "fast"))
    if not faithful or not fast:
        return [f"Not recorded yet: run `python tools/reproduce.py demo --runs {FAST_MODE_RUNS} --out "
                f"{FAST_RUNS}/faithful` and the same with `--fast --out {FAST_RUNS}/fast`."]
    (a, ia), (b, _) = faithful, fast

    def its(row):
        v = row.get("iterations_to_target")
        return f"{float(v):,.0f}" if v else "not reached"

    def acc(row):
        return f"{100 * float(row['best_accuracy']):.2f}%"

    lines = [f"The demo's runs {', '.join(a)} (`make demo`'s plan: "
             f"{ia.get('plan', {}).get('identities', '?')} "
             f"synthetic identities, widths {ia.get('plan', {}).get('widths', '?')}), trained once "
             f"faithfully and once with `--fast`, same code, same machine "
             f"({ia.get('machine', {}).get('cpu', '?')}, {ia.get('date', '?')[:10]}): "
             f"{FAST_RUNS}/faithful and {FAST_RUNS}/fast (logs, tables, curves). Iterations are in the "
             "paper's units (the table's scale). Speed is compared in the full-iteration table above (these "
             "runs' wall times depend on what else the machine was doing).", "",
             "| run | best accuracy, faithful | best accuracy, fast | iterations to 80%, faithful | "
             "iterations to 80%, fast |",
             "|---|---:|---:|---:|---:|"]
    for run in a:
        if run in b:
            lines.append(f"| {run} | {acc(a[run])} | {acc(b[run])} | {its(a[run])} | {its(b[run])} |")
    return lines


def scaling_lines(scaling, title_device):
    if not scaling:
        return ["Not measured."]
    lines = [f"Engine, BN net, one training step (forward, backward, SGD update), {title_device}; "
             f"around batch {scaling['centre']['batch']}, {scaling['centre']['classes']:,} classes, "
             f"the paper's widths"
             + (f", {scaling['centre']['threads']} threads" if 'threads' in scaling['centre'] else "")
             + f"; best of {scaling['rounds']} steps per point, each point its own process."]
    memory_key = "cuda_max_mb" if scaling["device"].startswith("cuda") else "peak_rss_mb"
    memory_label = "CUDA max allocated MiB" if memory_key == "cuda_max_mb" else "peak RSS MiB"
    axes = list(dict.fromkeys(r["axis"] for r in scaling["rows"]))
    modes = list(dict.fromkeys(r["point"]["mode"] for r in scaling["rows"]))
    for axis in axes:
        figure = scaling.get("figures", {}).get(axis)
        lines += ["", f"### vs {axis}", ""]
        if figure:
            lines += [f"![images/s and memory vs {axis}]({figure})", ""]
        head = " | ".join(f"{m} img/s | {m} {memory_label}" for m in modes)
        lines += [f"| {axis} | {head} |", "|---:|" + "---:|" * (2 * len(modes))]
        values = list(dict.fromkeys(str(r["value"]) for r in scaling["rows"] if r["axis"] == axis))
        for value in values:
            cells = []
            for m in modes:
                row = next(r for r in scaling["rows"] if r["axis"] == axis
                           and str(r["value"]) == value and r["point"]["mode"] == m)
                cells += [f"{row['img_s']:,.1f}", f"{row[memory_key]:,.0f}"]
            label = f"{value} (the demo's)" if value == "demo" else value
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def projection_lines(cpu, gpu):
    lines = ["| net | device | who | mode | time per iteration | the paper's 420,000 iterations |",
             "|---|---|---|---|---:|---:|"]
    for source, rows in (("CPU", cpu.get("train", [])), ("GPU", (gpu or {}).get("train", []))):
        for r in rows:
            for key, who, mode in (("engine_faithful", "engine", "faithful"),
                                   ("engine_fast", "engine", "fast"),
                                   ("caffe", "real Caffe", "—")):
                if key in r:
                    v = r[key]
                    lines.append(f"| {r['net']} | {source} ({r['threads']} threads, batch "
                                 f"{r['batch']}) | {who} | {mode} | {1e3 * v['s_per_iter']:,.1f} ms | "
                                 f"{_duration(v['hours_420k'] * 3600)} |")
    return lines


def lmdb_lines(lmdb):
    if not lmdb:
        return ["Not measured."]
    return [
        "| what | figure | goal |", "|---|---:|---:|",
        f"| build from {lmdb['jpeg_images']} JPEG files, detection off | "
        f"{lmdb['build_jpeg_detect_off_img_s']:,.0f} img/s | ≥ 2,000 img/s |",
        f"| build from JPEG files, Haar face detection on (found in "
        f"{lmdb['detect_found_fraction']:.0%}) | {lmdb['build_jpeg_detect_on_img_s']:,.0f} img/s | — |",
        f"| read raw 50×50 records into a float32 batch, one core | "
        f"{lmdb['read_raw_img_s']:,.0f} img/s | ≥ 50,000 img/s |",
        f"| read PNG-encoded records, one core | {lmdb['read_png_encoded_img_s']:,.0f} img/s | — |",
        f"| render + pack the default synthetic set ({lmdb['build_synthetic_default_images']:,} "
        f"images) | {lmdb['build_synthetic_default_s']:.1f} s | — |"]


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


def parts_line(dates):
    """When `run_all.py --parts` measured the benchmarks in several runs: which, when."""
    if len(set(dates.values())) < 2:
        return []
    by_date = {}
    for name, date in dates.items():
        by_date.setdefault(date, []).append(name)
    return ["Measured in several runs (`run_all.py --parts`; the minutes above are the last run's): "
            + "; ".join(f"{', '.join(names)} at {date.replace('T', ' ')}"
                        for date, names in sorted(by_date.items())) + "."]


def markdown(cpu, gpu=None, root=".", demo=None):
    """The whole of BENCHMARKS.md."""
    m = cpu["machine"]
    fidelity = cpu.get("fidelity")
    out = ["# Benchmarks", "",
           f"Written by `make bench` (bench/run_all.py) on {cpu['date']} in {cpu['minutes']:.0f} "
           f"minutes; raw figures in bench/results/cpu.json"
           + (f", GPU rows by bench/gpu.sh on {gpu['date']} (bench/results/gpu.json)." if gpu
              else "."),
           f"Machine: {machine_line(m)}.",
           *([f"Incomplete: the run was stopped before it measured {', '.join(cpu['missing'])}."]
             if cpu.get("missing") else []),
           *parts_line(cpu.get("parts_dates", {})),
           f"Load average (1 min) {cpu.get('load_start', float('nan')):.2f} at the start and "
           f"{cpu.get('load_end', float('nan')):.2f} at the end, on {m['cores']} cores: figures "
           "taken under load are low; rerun `make bench` on a quiet machine.",
           f"Timing: best of alternating rounds, {cpu['clock']} clock (bench/common.py). "
           "FLOPs: multiply-adds ×2 of the convolutions and InnerProducts, forward and backward, "
           "counted from the prototxt (bench/flops.py); % of peak divides by the machine's own "
           "kernels measured in the same rounds (bench/peak.py): float32 for faithful mode, the "
           "best kernel (bf16 where the CPU has bf16 units) for fast mode.", "",
           "## Goals", ""]
    out += goals(cpu, gpu, fidelity)
    out += ["", "## The machine's own limit (bench/peak.py)", ""]
    out += peak_table(cpu, gpu)
    out += ["", "## Training throughput: full iterations (bench/bench_train.py)", "",
            "Both paper nets at batch 64 with 14,700 classes: data from an LMDB, forward, "
            "backward, update, a log line per iteration; timed from the logs' timestamps (engine, "
            "Caffe) or in-process (plain PyTorch: torch.nn + torch.optim.SGD, the same LMDB)."
            " % of peak: of the fp32 peak for faithful and Caffe, of the best peak for fast.", ""]
    out += train_table(cpu.get("train", []))
    if gpu and gpu.get("train"):
        out += ["", f"On the GPU ({gpu['machine']['gpu']}):", ""] + train_table(gpu["train"])
    out += ["", "## One training step, engine vs plain PyTorch (bench/bench_net.py)", "",
            "Forward + backward + SGD on a fixed batch of 64 (no data, no logging): the engine with "
            "its own Solver against a hand-written torch.nn model of the same generated net with "
            "torch.optim.SGD (fused), both channels-last, bf16 autocast in fast mode where the CPU "
            "has bf16 units.", ""]
    out += net_table(cpu.get("net", []))
    if cpu.get("net_1thread"):
        out += ["", "The same on one thread, timed by CPU time (what load on the other core barely "
                "moves; the peak kernels measured the same way, in the same rounds):", ""]
        out += net_table(cpu["net_1thread"])
    if gpu and gpu.get("net"):
        out += ["", f"On the GPU ({gpu['machine']['gpu']}):", ""] + net_table(gpu["net"])
    if cpu.get("compile"):
        out += ["", "### torch.compile (`train --compile`, engine/compiled.py)", "",
                "The engine eager against the same engine with its runs of plain layers compiled "
                "(inductor, a cold cache). Off by default: on the CPUs measured the compiled "
                "kernels were slower than oneDNN's and torch's own.", ""]
        out += compile_table(cpu["compile"])
    if gpu and gpu.get("compile"):
        out += ["", f"On the GPU ({gpu['machine']['gpu']}):", ""] + compile_table(gpu["compile"])
    out += ["", "## Where the time goes (bench/profile_net.py)", "",
            "One iteration layer by layer (as `caffe time` times it: each layer's backward its own "
            "autograd call, so the parts add up to a little more than a real step), plus the update, "
            "the Data layer's work per batch (on its prefetch thread) and one iteration's log lines."]
    out += profile_tables(cpu.get("profile", []))
    out += ["", "## Fidelity against real Caffe (bench/bench_fidelity.py)", ""]
    out += fidelity_lines(fidelity)
    out += ["", "## Fast mode's accuracy cost", ""]
    out += accuracy_lines(root)
    out += ["", "## How cost grows (bench/bench_scaling.py)", ""]
    out += scaling_lines(cpu.get("scaling"), f"CPU, {cpu['clock']} clock")
    if gpu and gpu.get("scaling"):
        out += ["", f"On the GPU ({gpu['machine']['gpu']}):", ""]
        out += scaling_lines(gpu["scaling"], gpu["machine"]["gpu"])
    out += ["", "### The paper's full schedule, projected", "",
            "420,000 iterations at the measured full-iteration speed (tests excluded). The paper's "
            "baseline took 95 hours on a Titan X.", ""]
    out += projection_lines(cpu, gpu)
    out += ["", "## GPU", ""]
    if gpu:
        tests = gpu.get("tests", {})
        out += [f"bench/gpu.sh on {gpu['date']}: {gpu['machine']['gpu']}; CUDA tests: "
                f"{tests.get('summary', 'not run')}. Rows are in the sections above."]
    else:
        out += ["Not measured: no GPU in the session that wrote this file (rows are never made "
                "up). `bench/gpu.sh` runs the CUDA tests and the GPU rows (both nets, faithful "
                "and fast, batch 128) in under 8 minutes and rewrites this file with them."]
    out += ["", "## LMDB (bench/bench_lmdb.py)", ""] + lmdb_lines(cpu.get("lmdb"))
    out += long_run_lines(cpu.get("long_run"))
    if demo:
        out += ["", "## `make demo`", "",
                f"The recorded demo (results/reference/demo/run.json, {demo['date']}): "
                f"{demo.get('minutes', '?')} minutes for the five runs on "
                f"{demo['machine'].get('cpu', 'this machine')} ({demo['machine']['cpus']} cores)."]
    return "\n".join(out) + "\n"
