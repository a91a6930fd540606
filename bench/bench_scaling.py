"""How cost grows: images/s and peak memory of one engine training step (forward + backward +
Caffe's SGD update, the BN net) against batch size, number of classes, conv widths and threads,
in faithful and fast mode, with a PNG per axis.

Each point runs in a fresh process (so its peak RSS, the resident-set high-water mark, is its
own; on a GPU torch.cuda.max_memory_allocated is reported too), around the centre point: batch
64, the paper's 14,700 classes and widths, all threads. Points are swept `--sweeps` times and the
best of each kept. `--quick` runs a tiny version in this process (memory then is this process's
high-water mark): the test suite runs it. `--in-process` (what the GPU rows use) keeps every point
in one process: CUDA max allocated is reset per point, so it stays exact.

    python bench/bench_scaling.py [--rounds 3] [--sweeps 2] [--clock wall|cpu] [--gpu ID]
                                  [--figures DIR] [--quick] [--in-process] [--json]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DEMO_WIDTHS = (8, 16, 16, 32, 32, 64, 64, 160)     # reproduce_plan.Plan's (make demo)
AXES = {
    "batch": [16, 32, 64, 128, 256],
    "classes": [100, 1000, 3000, 7000, common.CLASSES],
    "widths": ["demo", 0.5, 0.75, 1.0],
    "threads": None,     # 1 .. cores (set in main)
}
QUICK_AXES = {"batch": [4, 8], "classes": [10, 40], "widths": [0.0625, 0.125], "threads": [1]}
LABELS = {"batch": "batch size", "classes": "classes (InnerProduct outputs)",
          "widths": "conv widths (fraction of the paper's)", "threads": "CPU threads"}


def widths_of(value):
    return DEMO_WIDTHS if value == "demo" else common.paper_widths(float(value))


def width_fraction(value):
    """Where a widths value sits on the plot's x axis: total conv width over the paper's."""
    return sum(widths_of(value)) / sum(common.PAPER_WIDTHS)


def measure_point(point, rounds, clock, device, warmup=1):
    """{img_s, s_per_iter, peak_rss_mb[, cuda_max_mb]} for one point, in this process."""
    import torch
    if point.get("threads"):
        torch.set_num_threads(point["threads"])
    param = common.input_net_param(True, point["batch"], point["classes"],
                                   widths_of(point["widths"]))
    net, _, step = common.engine_step(param, device, point["mode"] == "fast", point["batch"],
                                      point["classes"])
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    timed = common.alternate({"step": step}, rounds, common.clock(clock), warmup)["step"]
    out = {"s_per_iter": timed["best"], "img_s": point["batch"] / timed["best"],
           "peak_rss_mb": common.peak_rss_mb(), "threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        out["cuda_max_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    net.close()
    return out


def points(axes, centre, modes):
    """Every (axis, point) to run: each axis varied around the centre, for each mode."""
    out = []
    for mode in modes:
        for axis, values in axes.items():
            for value in values:
                out.append((axis, dict(centre, **{axis: value}, mode=mode)))
    return out


def run_point_in_subprocess(point, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--point", json.dumps(point),
           "--rounds", str(args.rounds), "--clock", args.clock,
           *(["--gpu", str(args.gpu)] if args.gpu is not None else [])]
    env = dict(os.environ, OMP_NUM_THREADS=str(point["threads"]))
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def sweep(args, device):
    import torch
    cores = os.cpu_count() or 1
    axes = dict(QUICK_AXES if args.quick else AXES)
    if axes["threads"] is None:
        axes["threads"] = sorted({1, 2, cores} - {0}) if cores >= 2 else [1]
        axes["threads"] = [t for t in axes["threads"] if t <= cores]
    if device.startswith("cuda"):
        axes.pop("threads")
    centre = ({"batch": 8, "classes": 40, "widths": 0.0625, "threads": 1} if args.quick else
              {"batch": 64, "classes": common.CLASSES, "widths": 1.0, "threads": cores})
    todo = points(axes, centre, args.modes.split(","))
    best = {}
    for _ in range(1 if args.quick else args.sweeps):
        for axis, point in todo:
            key = json.dumps(point, sort_keys=True)
            if key in best and best[key].get("_this_sweep"):
                continue      # the centre appears on every axis: once per sweep is enough
            if args.in_process:
                result = measure_point(point, args.rounds, args.clock, device,
                                       warmup=0 if args.quick else 1)
                torch.set_num_threads(args.threads or cores)
            else:
                result = run_point_in_subprocess(point, args)
            old = best.get(key)
            if old is None or result["s_per_iter"] < old["s_per_iter"]:
                best[key] = dict(result, point=point)
            best[key]["_this_sweep"] = True
            if not args.json:
                print(f"  {point} -> {result['img_s']:.1f} img/s, {result['peak_rss_mb']:.0f} MiB",
                      file=sys.stderr, flush=True)
        for value in best.values():
            value["_this_sweep"] = False
    rows = []
    for axis, point in todo:
        key = json.dumps(point, sort_keys=True)
        row = {k: v for k, v in best[key].items() if not k.startswith("_")}
        rows.append(dict(row, axis=axis, value=point[axis]))
    return {"device": device, "clock": args.clock, "rounds": args.rounds, "centre": centre,
            "quick": args.quick, "rows": rows}


def plot(result, folder):
    """One PNG per axis: images/s (left) and peak memory (right), a line per mode.
    Returns {axis: path}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(folder, exist_ok=True)
    paths = {}
    memory_key = "cuda_max_mb" if result["device"].startswith("cuda") else "peak_rss_mb"
    memory_label = ("CUDA max allocated (MiB)" if memory_key == "cuda_max_mb"
                    else "peak RSS (MiB)")
    axes = dict.fromkeys(row["axis"] for row in result["rows"])
    for axis in axes:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for mode in dict.fromkeys(row["point"]["mode"] for row in result["rows"]):
            rows = [r for r in result["rows"] if r["axis"] == axis and r["point"]["mode"] == mode]
            xs = [width_fraction(r["value"]) if axis == "widths" else r["value"] for r in rows]
            left.plot(xs, [r["img_s"] for r in rows], "o-", label=mode)
            right.plot(xs, [r[memory_key] for r in rows], "o-", label=mode)
        for ax, label in ((left, "images/s"), (right, memory_label)):
            ax.set_xlabel(LABELS[axis])
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            if axis in ("batch", "classes"):
                ax.set_xscale("log")
            ax.legend()
        centre = {k: v for k, v in result["centre"].items() if k != axis}
        fig.suptitle(f"BN net, one training step vs {LABELS[axis]} ({result['device']}; "
                     f"others at {centre})", fontsize=9)
        fig.tight_layout()
        path = os.path.join(folder, f"scaling_{axis}{'_' + result['device'].replace(':', '') if result['device'] != 'cpu' else ''}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths[axis] = path
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="timed steps per point (best kept)")
    p.add_argument("--sweeps", type=int, default=2)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--modes", default="faithful,fast")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--figures", default=os.path.join(common.HERE, "figures"))
    p.add_argument("--quick", action="store_true", help="tiny sizes, in this process (tests)")
    p.add_argument("--in-process", action="store_true",
                   help="every point in this process (memory: CUDA max allocated per point is "
                        "exact; RSS is the process's high-water mark); implied by --quick")
    p.add_argument("--point", help=argparse.SUPPRESS)   # internal: one point, JSON
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    device = "cpu" if args.gpu is None else f"cuda:{args.gpu}"
    args.in_process = args.in_process or args.quick
    if args.point:
        print(json.dumps(measure_point(json.loads(args.point), args.rounds, args.clock, device)))
        return
    result = sweep(args, device)
    result["figures"] = plot(result, args.figures)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for row in result["rows"]:
        print(f"{row['point']['mode']:8s} {row['axis']:8s} {str(row['value']):>6s}: "
              f"{row['img_s']:8.1f} img/s  {row['peak_rss_mb']:7.0f} MiB")
    print("figures:", ", ".join(result["figures"].values()))


if __name__ == "__main__":
    main()
