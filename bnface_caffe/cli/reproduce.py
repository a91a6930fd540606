"""reproduce: the paper's runs end to end (what `make demo` / `make reproduce` run).

Builds the data (built-in synthetic identities, or a real face folder), generates both nets
and the five scaled solvers, trains each run, evaluates each final snapshot on held-out
people (face verification), then draws the accuracy curves and the LR schedules and writes
the paper's table. Every step is one of the project's tools, run
in this process and printed as its command line (`bnface-<tool> ...`, the same as
`python tools/<tool>.py ...`), so any step can be repeated by hand. Paths are relative
to the directory you run in.
"""
import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import shlex
import time

from ..architectures import parse_widths
from ..errors import UserError
from ..formats.glog import Glog
from ..reproduce_plan import PLANS
from . import build_lmdb, gen_net, gen_solver, options, plot_curves, plot_lr, report, verify

TOOLS = {"build_lmdb": build_lmdb, "gen_net": gen_net, "gen_solver": gen_solver,
         "plot_curves": plot_curves, "plot_lr": plot_lr, "report": report, "verify": verify}


def parser():
    p = argparse.ArgumentParser(description=__doc__.split(": ", 1)[1].split("\n\n")[0])
    p.add_argument("plan", choices=sorted(PLANS) + ["study"],
                   help="demo, fast (CI), reproduce or candidates; or study: seeds, scale and "
                        "ablations (`study --help` for its options)")
    p.add_argument("--data", help="a real face folder (one sub-folder per person) instead of "
                                  "the built-in synthetic identities")
    p.add_argument("--gpu", help="train on this GPU id (default: CPU)")
    p.add_argument("--fast", action="store_true",
                   help="train in the engine's fast mode (bf16 where the device has it; not "
                        "bit-faithful to Caffe: see BENCHMARKS.md for its accuracy cost)")
    p.add_argument("--out", help="results folder (default results/<plan>)")
    p.add_argument("--runs", help="comma-separated subset of the runs to train")
    p.add_argument("--data-root", default="data", help="where the LMDB folders go (default data/)")
    p.add_argument("--rebuild-data", action="store_true", help="rebuild the LMDBs even if present")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a plan setting, e.g. --set original_epochs=40 "
                        "--set widths=16,32,32,64,48,96,80,160 (see reproduce_plan.Plan)")
    options.add_version(p)
    return p


def apply_overrides(plan, settings):
    """A copy of `plan` with KEY=VALUE settings, each converted to the field's type."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(plan) if f.name not in ("runs", "extra_net_args")}
    changes = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or key not in fields:
            raise UserError(f"--set {setting!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
        kind = fields[key].type  # the annotation (float for original_epochs, even if given as 30)
        try:
            changes[key] = kind(value)
        except ValueError:
            raise UserError(f"--set {setting!r}: {value!r} is not a valid {kind.__name__}") from None
    plan = dataclasses.replace(plan, **changes)
    parse_widths(plan.widths)   # a bad --set widths fails now, not after the data is built
    return plan


def command_line(tool, args):
    return " ".join(shlex.quote(str(a)) for a in [f"bnface-{tool.replace('_', '-')}", *args])


class Steps:
    """Runs the tools one after another, saying what it does."""

    def __init__(self, total):
        self.total, self.done, self.started = total, 0, time.time()

    def say(self, text):
        elapsed = time.time() - self.started
        print(f"[{elapsed / 60:5.1f} min] {text}", flush=True)

    def run(self, title, tool, *args, quiet=False):
        self.done += 1
        self.say(f"({self.done}/{self.total}) {title}")
        argv = [str(a) for a in args]
        print("    $ " + command_line(tool, argv), flush=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
            status = TOOLS[tool].main(argv)
        if status:
            raise UserError(f"step failed (bnface-{tool} returned {status})")

    def train(self, title, solver, log_path, gpu, fast=False):
        """Train `solver` with the engine, its log going to `log_path` only; a one-line
        progress report here at each test."""
        from ..engine.train import TrainOptions, train
        self.done += 1
        self.say(f"({self.done}/{self.total}) {title}")
        args = [solver, "--backend", "engine", "--log", log_path] + (["--gpu", gpu] if gpu else [])
        args += ["--fast"] if fast else []
        print("    $ " + command_line("train", args) + " 2>/dev/null", flush=True)
        log = Glog(stderr=False)
        log.add_file(log_path)
        progress = Progress()
        device = f"cuda:{gpu}" if gpu is not None else "cpu"
        try:
            train(TrainOptions(solver, device=device, stages=("",), fast=fast), observer=progress,
                  log=log)
        finally:
            log.close()
        return {"seconds": round(time.time() - progress.started, 1), "best_accuracy": progress.best,
                "final_accuracy": progress.last}


class Progress:
    """The training observer: one line per test (accuracy, best so far, seconds)."""

    def __init__(self):
        self.started, self.best, self.last, self.iterations_done = time.time(), 0.0, None, 0

    def iteration(self, it, loss):
        self.iterations_done = it

    def tested(self, i, outputs):
        if i != 0 or "accuracy" not in outputs:
            return
        self.last = outputs["accuracy"]
        self.best = max(self.best, self.last)
        print(f"      iteration {self.iterations_done:6d}: test accuracy {self.last:.4f} (best {self.best:.4f}, "
              f"{time.time() - self.started:5.0f} s)", flush=True)


def data_folder_name(plan, real_folder):
    """One LMDB folder per data set, so plans and --set overrides never reuse stale data."""
    held = f"-h{plan.holdout_identities}" if plan.holdout_identities else ""
    if real_folder:
        return "faces-" + os.path.basename(os.path.normpath(real_folder)) + held
    return (f"synthetic-{plan.identities}x{plan.images_per_identity}"
            f"-d{plan.difficulty:g}-s{plan.data_seed}{held}")


def final_snapshot(solver):
    """The .caffemodel training writes at max_iter (the solver's snapshot_prefix)."""
    from ..formats import prototxt
    from ..proto import caffe_pb2
    param = prototxt.read_text(solver, caffe_pb2.SolverParameter)
    return f"{param.snapshot_prefix}_iter_{param.max_iter}.caffemodel"


def read_metrics(folder):
    """The figures tools/verify.py wrote to folder/metrics.csv (numbers as floats)."""
    import csv
    with open(os.path.join(folder, "metrics.csv"), newline="") as f:
        row = next(csv.DictReader(f))
    return {k: v if k == "name" else (float(v) if v else None) for k, v in row.items()}


def count_lines(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def main(argv):
    if argv and argv[0] == "study":   # its own options and runner (reproduce_study.py)
        from . import reproduce_study
        return reproduce_study.main(argv[1:])
    args = parser().parse_args(argv)
    plan = apply_overrides(PLANS[args.plan], args.set)
    if args.gpu is not None:
        options.parse_gpus(args.gpu)     # no CUDA here: say so before building anything
    out = args.out or os.path.join("results", plan.name)
    runs = plan.runs
    if args.runs:
        wanted = args.runs.split(",")
        unknown = sorted(set(wanted) - {r[0] for r in runs})
        if unknown:
            raise UserError(f"--runs: unknown run(s) {', '.join(unknown)}; "
                            f"the runs are {', '.join(r[0] for r in runs)}")
        runs = tuple(r for r in runs if r[0] in wanted)
    verifying = plan.holdout_identities > 0
    steps = Steps(total=1 + 4 + len(runs) * (3 if verifying else 2) + 3)
    data = os.path.join(args.data_root, data_folder_name(plan, args.data))
    steps.say(f"plan '{plan.name}': {len(runs)} runs, widths {plan.widths}, results in {out}/")

    # 1. data
    if args.rebuild_data or not os.path.exists(os.path.join(data, "mean.binaryproto")):
        source = [args.data] if args.data else ["--synthetic", "--identities", plan.identities,
                                                "--images-per-identity", plan.images_per_identity,
                                                "--difficulty", plan.difficulty,
                                                "--seed", plan.data_seed]
        steps.run("building the LMDBs", "build_lmdb", *source, data, "--overwrite",
                  "--holdout-identities", plan.holdout_identities)
    else:
        steps.done += 1
        steps.say(f"(1/{steps.total}) LMDBs already in {data}/ (--rebuild-data to rebuild)")
    train_images = count_lines(os.path.join(data, "train.txt"))
    test_images = count_lines(os.path.join(data, "test.txt"))
    classes = count_lines(os.path.join(data, "labels.txt"))
    scale = plan.scale(train_images)
    steps.say(f"data: {classes} classes, {train_images} train / {test_images} test images; "
              f"schedule scale {scale:.6g} (the original run = {plan.original_epochs:g} epochs)")

    # 2. nets
    nets = {}
    for net in ("baseline", "bn"):
        path = os.path.join(out, "nets", f"{net}_train_val.prototxt")
        steps.run(f"generating the {net} net", "gen_net", *(["--bn"] if net == "bn" else []),
                  "--num-classes", classes, "--widths", plan.widths, "--filler", plan.filler,
                  "--batch-size", plan.batch_size, "--test-batch-size", plan.test_batch_size,
                  "--train-lmdb", os.path.join(data, "train_lmdb"),
                  "--test-lmdb", os.path.join(data, "test_lmdb"),
                  "--mean-file", os.path.join(data, "mean.binaryproto"),
                  *plan.extra_net_args, "-o", path)
        nets[net] = path
    deploy = {}
    for net in ("baseline", "bn"):
        deploy[net] = os.path.join(out, "nets", f"{net}_deploy.prototxt")
        steps.run(f"generating the {net} deploy net", "gen_net", "--deploy",
                  *(["--bn"] if net == "bn" else []), "--num-classes", classes,
                  "--widths", plan.widths, "--filler", plan.filler, *plan.extra_net_args,
                  "-o", deploy[net])

    # 3. solvers, then training
    summary, logs, solvers = {}, [], []
    for run, schedule, net in runs:
        solver = os.path.join(out, "solvers", f"{run}.prototxt")
        steps.run(f"solver for {run}", "gen_solver", schedule, "--net", nets[net],
                  "--scale", f"{scale:.8g}", "--test-iter", plan.test_iter(test_images),
                  "--test-interval", plan.test_interval_paper(),
                  "--display", plan.display_paper(), "--snapshot", 10 ** 9,
                  "--snapshot-prefix", os.path.join(out, "snapshots", run),
                  "--solver-mode", "GPU" if args.gpu is not None else "CPU",
                  "--random-seed", plan.random_seed, "-o", solver)
        solvers.append(solver)
    for (run, schedule, net), solver in zip(runs, solvers):
        log = os.path.join(out, "logs", f"{run}.log")
        if os.path.exists(log):
            os.remove(log)  # a fresh log per run: the log tools read one run per file
        summary[run] = steps.train(f"training {run} ({net} net, schedule {schedule})",
                                   solver, log, args.gpu, args.fast)
        logs.append(log)
    verification = []
    for (run, schedule, net), solver in zip(runs, solvers) if verifying else ():
        folder = os.path.join(out, "verification", run)
        steps.run(f"verification of {run} on {plan.holdout_identities} held-out people",
                  "verify", deploy[net], final_snapshot(solver), os.path.join(data, "holdout.txt"),
                  "-o", folder, "--transform-from", nets[net], "--name", run, "-q",
                  *(["--gpu", args.gpu] if args.gpu is not None else []))
        summary[run]["verification"] = read_metrics(folder)
        verification += ["--verification", os.path.join(folder, "metrics.csv")]

    # 4. figures and the table
    labels = [a for r in runs for a in ("--label", r[0])]
    steps.run("accuracy curves", "plot_curves", *logs, *labels, "--scale", f"{scale:.8g}",
              "--target", "0.80", "--loss", "--lr", "-o", os.path.join(out, "curves.png"), "-q")
    steps.run("learning-rate schedules", "plot_lr", *solvers, *labels, "--scale", f"{scale:.8g}",
              "-o", os.path.join(out, "lr.png"), quiet=True)
    steps.run("the paper's table", "report", *logs, *labels, "--scale", f"{scale:.8g}",
              "--target", "0.80", *verification, "-o", os.path.join(out, "table.md"), quiet=True)
    if verifying:
        from ..verification import results
        figure = results.plot_roc_folders([(r[0], os.path.join(out, "verification", r[0]))
                                           for r in runs], "held-out people, final snapshots")
        figure.savefig(os.path.join(out, "roc.png"), dpi=120)
    write_run_info(out, argv, args, plan, scale, classes, train_images, test_images, summary,
                   minutes=(time.time() - steps.started) / 60)
    steps.say(f"done: {out}/curves.png, {out}/lr.png, {out}/table.md"
              + (f", {out}/roc.png, {out}/verification/" if verifying else ""))
    with open(os.path.join(out, "table.md")) as f:
        print(f.read())
    reference = os.path.join(REFERENCE, plan.name)
    if os.path.abspath(reference) != os.path.abspath(out) and os.path.exists(
            os.path.join(reference, "table.csv")) and not args.set and not args.data:
        print(compare_with_reference(out, reference))
    return 0


REFERENCE = os.path.join("results", "reference")
COMPARED = (("iterations_to_target", "to 80%"), ("iterations_to_stay_at_target", "stays ≥ 80% from"),
            ("best_accuracy", "best"))


def compare_with_reference(out, reference):
    """Your table's main columns next to the committed reference run's, as markdown."""
    import csv

    def rows(folder):
        with open(os.path.join(folder, "table.csv")) as f:
            return {row["run"]: row for row in csv.DictReader(f)}

    def cell(row, key):
        value = (row or {}).get(key, "")
        if not value:
            return "—" if row else "(not run)"
        number = float(value)
        return f"{100 * number:.2f}%" if key == "best_accuracy" else f"{number / float(row['scale']):,.0f}"

    yours, theirs = rows(out), rows(reference)
    with open(os.path.join(reference, "run.json")) as f:
        info = json.load(f)
    head = " | ".join(f"{label} (yours / reference)" for _, label in COMPARED)
    lines = [f"Your run next to the reference run in {reference}/ ({info['machine']['cpu']}, "
             f"{info['date'][:10]}, {info['minutes']} minutes):", "",
             f"| run | {head} |", "|---" * (1 + len(COMPARED)) + "|"]
    for run in dict.fromkeys(list(theirs) + list(yours)):
        cells = [f"{cell(yours.get(run), k)} / {cell(theirs.get(run), k)}" for k, _ in COMPARED]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    lines += ["", "Expect the same numbers on a CPU of the same kind and thread count; other CPUs "
              "(AVX-512 or not, AMD or Intel) sum floats in another order, and training "
              "amplifies those last-bit differences, so iterations can move by a test interval "
              "and accuracies by a few tenths of a percent."]
    return "\n".join(lines)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_run_info(out, argv, args, plan, scale, classes, train_images, test_images, summary,
                   minutes):
    import torch
    info = {
        "command": command_line("reproduce", argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "minutes": round(minutes, 1),
        "machine": {"platform": platform.platform(), "cpu": cpu_model(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(),
                    "device": f"cuda:{args.gpu}" if args.gpu is not None else "cpu",
                    "fast_mode": bool(args.fast)},
        "plan": {k: v for k, v in vars(plan).items() if k != "runs"},
        "data": {"classes": classes, "train_images": train_images, "test_images": test_images,
                 "source": args.data or "built-in synthetic identities"},
        "scale": scale,
        "runs": summary,
    }
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(info, f, indent=2, default=str)
        f.write("\n")


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
