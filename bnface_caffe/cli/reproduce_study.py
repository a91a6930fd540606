"""reproduce study: the paper's two claims under seeds, scale and ablations.

Runs every cell of the study (bnface_caffe/study/plan.py) with each seed: builds the data
(the same faces and split for every seed, the training records in the seed's order),
generates the cell's net and scaled solver, trains with the engine (solver random_seed =
the seed) and keeps the run's figures in runs/<cell>/seed<s>/result.json beside its log.
Then the tables (mean ± std over seeds) and the figures are made from every result in the
folder, so a re-run of one cell (the command each run prints) replaces only that run's
result, and an interrupted study goes on with --skip-done. Every step is printed as the
tool command it runs.
"""
import argparse
import datetime
import glob
import json
import os
import shutil
import time

from ..formats.glog import Glog
from ..study import figures, plan, tables
from . import options
from .reproduce import Steps, command_line, cpu_model, final_snapshot, read_metrics


def parser():
    p = argparse.ArgumentParser(prog=f"{argparse.ArgumentParser().prog} study",
                                description=__doc__.split(": ", 1)[1].split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--quick", action="store_true",
                   help="the test size: the same cells on toy data and 4-wide nets (seconds)")
    p.add_argument("--cells", help="comma-separated cell names or patterns, e.g. "
                                   "'scale-1000-*,ablation-bn' (default: every cell)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1,2); a seed sets the "
                                   "solver's random_seed and the order of the training records")
    p.add_argument("--out", help="results folder (default results/study, or results/study-quick)")
    p.add_argument("--data-root", default="data", help="where the LMDB folders go (default data/)")
    p.add_argument("--gpu", help="train on this GPU id (default: CPU)")
    p.add_argument("--skip-done", action="store_true",
                   help="keep the runs that already have a result made by this plan")
    p.add_argument("--list", action="store_true",
                   help="print the cells, their sizes and the estimated time, then stop")
    options.add_version(p)
    return p


def data_folder(data_root, cell_plan, seed):
    """The LMDBs of one data size in one seed's order; shared by every cell of that size."""
    held = f"-h{cell_plan.holdout_identities}" if cell_plan.holdout_identities else ""
    return os.path.join(data_root, f"synthetic-{cell_plan.identities}x"
                                   f"{cell_plan.images_per_identity}-d{cell_plan.difficulty:g}"
                                   f"-s{cell_plan.data_seed}{held}-o{seed}")


def rerun_command(args, cell, seed):
    """The command that makes this one run again (same numbers on the same machine)."""
    argv = ["study"] + (["--quick"] if args.quick else []) + ["--cells", cell.name,
                                                              "--seeds", str(seed)]
    if args.out:
        argv += ["--out", args.out]
    if args.data_root != "data":
        argv += ["--data-root", args.data_root]
    if args.gpu is not None:
        argv += ["--gpu", args.gpu]
    return command_line("reproduce", argv)


def describe(study, cells, seeds):
    lines = [f"study '{study.name}': {len(cells)} cells × {len(seeds)} seeds "
             f"({', '.join(map(str, seeds))})", "",
             f"{'cell':28} {'net, schedule':36} {'data':>10} {'epochs':>6} {'max_iter':>8}"]
    for c in cells:
        train, test = plan.image_counts(c.plan)
        net = f"{c.net}{' ' + ' '.join(c.net_args) if c.net_args else ''}, {c.schedule}"
        lines.append(f"{c.name:28} {net:36} {f'{train}+{test}':>10} "
                     f"{c.plan.original_epochs:6g} {plan.solver_shape(c)['max_iter']:8}")
    iterations, minutes = plan.estimate(cells, seeds)
    lines += ["", f"{iterations:,} training iterations in all: about {minutes:.0f} minutes on a "
                  f"quiet 2-core CPU ({plan.SECONDS_PER_ITERATION} s per iteration)"]
    extra = study.extra_cells if cells == study.cells else ()   # the default selection
    if extra:
        more, more_minutes = plan.estimate(extra, seeds)
        lines.append(f"also in the plan, run only when --cells names them: "
                     f"{', '.join(c.name for c in extra)} ({more:,} iterations, about "
                     f"{more_minutes / 60:.1f} hours more)")
    return "\n".join(lines)


PROGRESS_EVERY = 10


def train(steps, title, solver, log_path, gpu):
    """Train with the engine, its log to `log_path` only. (seconds, the iteration whose loss
    was not finite, or None): a diverged run is a result of the study, not a failure."""
    from ..engine.loop import TrainingDiverged
    from ..engine.train import TrainOptions, train as train_engine

    class Observer:
        """The last iteration done (where a diverged run stopped); a progress line every
        PROGRESS_EVERY tests."""
        last, tests, best = 0, 0, 0.0

        def iteration(self, it, loss):
            self.last = it

        def tested(self, i, outputs):
            if i != 0 or "accuracy" not in outputs:
                return
            self.tests += 1
            self.best = max(self.best, outputs["accuracy"])
            if self.tests % PROGRESS_EVERY == 1:
                print(f"      iteration {self.last:6d}: test accuracy {outputs['accuracy']:.4f} "
                      f"(best {self.best:.4f}, {time.time() - started:5.0f} s)", flush=True)

    steps.done += 1
    steps.say(f"({steps.done}/{steps.total}) {title}")
    print("    $ " + command_line("train", [solver, "--backend", "engine", "--log", log_path]
                                  + (["--gpu", gpu] if gpu else [])) + " 2>/dev/null", flush=True)
    if os.path.exists(log_path):
        os.remove(log_path)  # one run per log
    log = Glog(stderr=False)
    log.add_file(log_path)
    observer, started, diverged_at = Observer(), time.time(), None
    device = f"cuda:{gpu}" if gpu is not None else "cpu"
    try:
        train_engine(TrainOptions(solver, device=device, stages=("",)), observer=observer, log=log)
    except TrainingDiverged as err:
        diverged_at = observer.last   # updates done = the iteration whose loss was not finite
        print(f"      diverged: {err}", flush=True)
    finally:
        log.close()
    return round(time.time() - started, 1), diverged_at


def measure(log_path, label, study, diverged_at):
    """The run's metrics from its log (report.py's definitions), iterations as logged."""
    from .. import curves, report
    run = curves.load_run(log_path, label)
    row = report.summarize(run, study.target, study.tolerance_pp)
    finite = [v for v in run.test_values if v == v]
    return {"to_target": row["to_target"], "stays_at_target": row["stays_at_target"],
            "to_convergence": row["to_convergence"], "best": row["best"],
            "best_at": row["best_at"], "last_test": row["last_test"],
            "final": finite[-1] if finite and diverged_at is None else None,
            "diverged_at": diverged_at}


def torch_threads():
    """CPU threads the run used: the same seed gives the same numbers with the same count
    (another count sums floats in another order)."""
    import torch
    return torch.get_num_threads()


def count_lines(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def solver_args(cell, seed, net, train_images, test_images, snapshot_prefix, gpu=None):
    """gen_solver's arguments for one run: the cell's schedule scaled so that the original
    schedule spans the cell's epochs, tested `tests_per_original_run` times per original run,
    a snapshot only at the end, and the seed as random_seed."""
    p = cell.plan
    return [cell.schedule, "--net", net, "--scale", f"{p.scale(train_images):.8g}",
            "--test-iter", p.test_iter(test_images), "--test-interval", p.test_interval_paper(),
            "--display", p.display_paper(), "--snapshot", 10 ** 9,
            "--snapshot-prefix", snapshot_prefix,
            "--solver-mode", "GPU" if gpu is not None else "CPU", "--random-seed", seed]


def run_one(steps, args, study, cell, seed, out):
    """Data (if not there), net, solver, training and result.json of one cell and seed."""
    p = cell.plan
    data = data_folder(args.data_root, p, seed)
    if not os.path.exists(os.path.join(data, "mean.binaryproto")):
        steps.run(f"building {os.path.basename(data)}", "build_lmdb", "--synthetic", data,
                  "--identities", p.identities, "--images-per-identity", p.images_per_identity,
                  "--difficulty", p.difficulty, "--seed", p.data_seed, "--shuffle-seed", seed,
                  "--holdout-identities", p.holdout_identities, "--overwrite", "-q")
    else:
        steps.done += 1
    train_images = count_lines(os.path.join(data, "train.txt"))
    test_images = count_lines(os.path.join(data, "test.txt"))
    classes = count_lines(os.path.join(data, "labels.txt"))
    scale = p.scale(train_images)
    folder = os.path.join(out, "runs", cell.name, f"seed{seed}")
    net, solver = os.path.join(folder, "net.prototxt"), os.path.join(folder, "solver.prototxt")
    steps.run(f"{cell.name} seed {seed}: net", "gen_net", *(["--bn"] if cell.net == "bn" else []),
              "--num-classes", classes, "--widths", p.widths, "--filler", p.filler,
              "--batch-size", p.batch_size, "--test-batch-size", p.test_batch_size,
              "--train-lmdb", os.path.join(data, "train_lmdb"),
              "--test-lmdb", os.path.join(data, "test_lmdb"),
              "--mean-file", os.path.join(data, "mean.binaryproto"), *cell.net_args, "-o", net)
    steps.run(f"{cell.name} seed {seed}: solver", "gen_solver",
              *solver_args(cell, seed, net, train_images, test_images,
                           os.path.join(out, "snapshots", cell.name, f"seed{seed}"), args.gpu),
              "-o", solver)
    log = os.path.join(folder, "train.log")
    seconds, diverged_at = train(steps, f"{cell.name} seed {seed}: training ({cell.about})",
                                 solver, log, args.gpu)
    metrics = measure(log, cell.name, study, diverged_at)
    if p.holdout_identities:
        if diverged_at is None:
            metrics.update(verify(steps, args, cell, seed, data, classes, net, solver, out))
        else:
            steps.done += 2   # no final weights to verify
    result = {"cell": cell.name, "seed": seed, "config": cell.config(),
              "classes": classes, "train_images": train_images, "test_images": test_images,
              "scale": scale, "metrics": metrics,
              "seconds": seconds, "torch_threads": torch_threads(),
              "log": os.path.relpath(log, out),
              "command": rerun_command(args, cell, seed),
              "date": datetime.datetime.now().isoformat(timespec="seconds")}
    path = os.path.join(folder, "result.json")
    previous = read_previous(path, cell)
    write_json(path, result)
    print(f"      {summary_line(result, study)}\n      re-run: {result['command']}", flush=True)
    if previous:
        print(f"      {compare_with_previous(previous, result)}", flush=True)
    return result


def verify(steps, args, cell, seed, data, classes, train_val, solver, out):
    """The final weights on the held-out people (tools/verify.py, as `make demo` does): its
    accuracy (mean and std over the 10 folds) and EER. Its output folder (features of every
    image) stays beside the weights; the run's folder gets its metrics.csv."""
    p = cell.plan
    folder = os.path.dirname(solver)
    deploy = os.path.join(folder, "deploy.prototxt")
    steps.run(f"{cell.name} seed {seed}: deploy net", "gen_net", "--deploy",
              *(["--bn"] if cell.net == "bn" else []), "--num-classes", classes,
              "--widths", p.widths, "--filler", p.filler, *cell.net_args, "-o", deploy)
    where = os.path.join(out, "snapshots", cell.name, f"seed{seed}.verification")
    steps.run(f"{cell.name} seed {seed}: verification on {p.holdout_identities} held-out people",
              "verify", deploy, final_snapshot(solver), os.path.join(data, "holdout.txt"),
              "-o", where, "--transform-from", train_val, "--name", cell.name, "-q",
              *(["--gpu", args.gpu] if args.gpu is not None else []))
    shutil.copyfile(os.path.join(where, "metrics.csv"), os.path.join(folder, "verification.csv"))
    figures = read_metrics(where)
    return {"verification_accuracy": figures["accuracy"],
            "verification_accuracy_std": figures["accuracy_std"],
            "verification_eer": figures["eer"]}


def read_previous(path, cell):
    """The result this run replaces, if it was made by the same cell as it is now."""
    try:
        with open(path) as f:
            previous = json.load(f)
    except (OSError, ValueError):
        return None
    return previous if previous.get("config") == cell.config() else None


def compare_with_previous(previous, result):
    """A re-run of a run: the same metrics (what a seed promises), or which ones moved."""
    moved = [k for k in result["metrics"] if previous["metrics"].get(k) != result["metrics"][k]]
    if not moved and previous.get("scale") == result["scale"]:
        return f"the same numbers as the result it replaces (made {previous.get('date')})"
    threads = ("" if previous.get("torch_threads") == result["torch_threads"] else
               f"; that run used {previous.get('torch_threads')} CPU threads, this one "
               f"{result['torch_threads']} (floats are summed in another order)")
    return f"NOT the numbers of the result it replaces: {', '.join(moved) or 'scale'} differ{threads}"


def summary_line(result, study):
    """'80% at 63,000, best 98.88%' (paper units), or how the run failed to get there."""
    m, scale = result["metrics"], result["scale"]
    reached = "not reached" if m["to_target"] is None else f"{round(m['to_target'] / scale):,}"
    best = "no test" if m["best"] is None else f"{100 * m['best']:.2f}%"
    text = f"{100 * study.target:g}% at {reached}, best {best}, {result['seconds']:.0f} s"
    if m["diverged_at"] is not None:
        text += f"; diverged at {round(m['diverged_at'] / scale):,}"
    return text


def write_json(path, data):
    from ..formats.prototxt import write_bytes
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def load_results(out, study):
    """{cell name: [results]} of every run in `out` made with this study's cells as they are
    now; results of another plan (or an older one) are reported and left out."""
    cells = {c.name: c for c in study.all_cells}
    grouped, stale = {}, []
    for path in sorted(glob.glob(os.path.join(out, "runs", "*", "seed*", "result.json"))):
        with open(path) as f:
            result = json.load(f)
        cell = cells.get(result.get("cell"))
        if cell is None or result.get("config") != cell.config():
            stale.append(path)
            continue
        grouped.setdefault(cell.name, []).append(result)
    for results in grouped.values():
        results.sort(key=lambda r: r["seed"])
    return grouped, stale


def write_outputs(out, study):
    from ..formats.prototxt import write_bytes
    from ..plots import save
    grouped, stale = load_results(out, study)
    for path in stale:
        print(f"left out (made by another plan): {path}")
    write_bytes(os.path.join(out, "table.md"), tables.markdown(study, grouped).encode())
    for name, text in (("table.csv", tables.table_csv(study, grouped)),
                       ("runs.csv", tables.runs_csv(study, grouped)),
                       ("scale.csv", tables.scale_csv(study, grouped))):
        write_bytes(os.path.join(out, name), text.encode())
    for name, draw in (("speedup.png", figures.speedup_figure),
                       ("accuracy_gap.png", figures.gap_figure),
                       ("ablations.png", figures.ablation_figure)):
        save(draw(study, grouped), os.path.join(out, name))
    return grouped


def write_run_info(out, argv, args, study, minutes, grouped):
    import platform

    import torch
    info = {"command": command_line("reproduce", argv),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "minutes": round(minutes, 1),
            "machine": {"platform": platform.platform(), "cpu": cpu_model(),
                        "cpus": os.cpu_count(), "torch": torch.__version__,
                        "torch_threads": torch.get_num_threads(),
                        "device": f"cuda:{args.gpu}" if args.gpu is not None else "cpu"},
            "continued": bool(args.skip_done),   # then minutes cover only the last part
            "training_minutes_all_runs": round(sum(r["seconds"] for results in grouped.values()
                                                   for r in results) / 60, 1),
            "study": study.name, "seeds": list(study.seeds), "target": study.target,
            "cells": {c.name: c.config() for c in study.all_cells if c.name in grouped},
            "runs": {f"{r['cell']}/seed{r['seed']}": {"seconds": r["seconds"], "date": r["date"]}
                     for results in grouped.values() for r in results}}
    write_json(os.path.join(out, "run.json"), info)


def main(argv):
    args = parser().parse_args(argv)
    study = plan.STUDIES["quick" if args.quick else "full"]
    cells = plan.select(study, args.cells)
    seeds = plan.parse_seeds(args.seeds) if args.seeds else study.seeds
    if args.list:
        print(describe(study, cells, seeds))
        return 0
    if args.gpu is not None:
        options.parse_gpus(args.gpu)
    out = args.out or os.path.join("results", study.name)
    os.makedirs(out, exist_ok=True)   # (its snapshots/ are ignored by git: .gitignore)
    per_run = 6 if any(c.plan.holdout_identities for c in cells) else 4
    steps = Steps(total=per_run * len(cells) * len(seeds))
    steps.say(describe(study, cells, seeds))
    done = load_results(out, study)[0] if args.skip_done else {}
    for seed in seeds:            # seed by seed: an interrupted study has whole seeds first
        for cell in cells:
            if any(r["seed"] == seed for r in done.get(cell.name, ())):
                steps.done += per_run
                continue
            run_one(steps, args, study, cell, seed, out)
    grouped = write_outputs(out, study)
    minutes = (time.time() - steps.started) / 60
    # run.json is the provenance of the whole plan: written by the invocation that completes
    # it (not by a re-run of one cell into a finished folder)
    whole = cells == study.cells and seeds == study.seeds and all(
        [r["seed"] for r in grouped.get(c.name, ())] == list(study.seeds) for c in study.cells)
    if whole:
        write_run_info(out, ["study", *argv], args, study, minutes, grouped)
    steps.say(f"done: {out}/table.md, table.csv, runs.csv, scale.csv, speedup.png, "
              f"accuracy_gap.png, ablations.png" + (", run.json" if whole else
              " (run.json is written by a run of the whole plan)"))
    print(f"{sum(len(v) for v in grouped.values())} runs in the tables")
    with open(os.path.join(out, "table.md")) as f:
        print(f.read())
    return 0
