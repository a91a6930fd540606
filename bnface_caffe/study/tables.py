"""The study's tables: Markdown (table.md) and CSV (table.csv per cell, runs.csv per run,
scale.csv for the scale comparisons), from the runs' results grouped by cell."""
import csv
import io

from .. import paper
from . import aggregate
from .aggregate import COLUMNS
from .plan import BASELINE_RUN, BN_RUNS


def _number(x, kind):
    if kind == "iterations":
        return f"{round(x):,}"
    if kind == "fraction":
        return f"{100 * x:.2f}%"
    if kind == "pp":
        return f"{x:+.2f} pp"
    return f"{x:.2f}×"   # a ratio


def _spread(x, kind):
    return {"iterations": f"{round(x):,}", "fraction": f"{100 * x:.2f}%",
            "pp": f"{x:.2f} pp"}.get(kind, f"{x:.2f}")


def cell_text(summary, kind, missing):
    """'63,000 ± 4,583', '63,000 ± 4,583 (2 of 3; 1 not reached)', 'not reached (3 of 3)'."""
    if summary.n == 0:
        return "—"
    if not summary.values:
        return f"{missing} ({summary.missing} of {summary.n})"
    text = _number(summary.mean, kind)
    if summary.std is not None:
        text += f" ± {_spread(summary.std, kind)}"
    if summary.missing:
        text += f" ({len(summary.values)} of {summary.n}; {summary.missing} {missing})"
    return text


def _target(target):
    return f"{100 * target:g}%"


def _diverged_text(results):
    runs = aggregate.diverged(results)
    if not runs:
        return "—"
    return (f"{len(runs)} of {len(results)}, at "
            + ", ".join(f"{round(it):,} (seed {seed})" for seed, it in runs))


def _bound_text(bound, target):
    if not bound.values:
        return ""
    return (f"; in {len(bound.values)} of {bound.n} only BN reached {target}: "
            f"> {min(bound.values):.2f}×")


def _net_schedule(cell):
    return f"{cell.net}{' ' + ' '.join(cell.net_args) if cell.net_args else ''}, {cell.schedule}"


def scale_rows(study, grouped):
    """For every size with both cells run and each BN schedule, a dict: classes, run, and the
    paired-by-seed Summaries speedup, gap (best test accuracy, pp), verification_gap (pp)
    and bound (the speed-up's lower bounds where only the BN run reached the target)."""
    rows = []
    sizes = sorted({c.classes for c in study.all_cells if c.question == "scale"})
    for classes in sizes:
        base = grouped.get(f"scale-{classes}-{BASELINE_RUN}")
        for run in BN_RUNS:
            bn = grouped.get(f"scale-{classes}-{run}")
            if base and bn:
                rows.append(dict(
                    classes=classes, run=run,
                    speedup=aggregate.paired(base, bn, aggregate.speedup),
                    gap=aggregate.paired(base, bn, aggregate.best_gap_pp),
                    verification_gap=aggregate.paired(base, bn, aggregate.verification_gap_pp),
                    bound=aggregate.paired(base, bn, aggregate.speedup_at_least)))
    return rows


def ablation_cells(study):
    """The ablations' rows: the two reference cells (the paper's nets), then the ablations."""
    by_name = {c.name: c for c in study.all_cells}
    return [by_name[name] for name in study.references] + [
        c for c in study.all_cells if c.question == "ablation"]


def markdown(study, grouped, columns=COLUMNS):
    t = _target(study.target)
    lines = [
        f"Study `{study.name}`: every cell ran with the seeds in `runs/<cell>/seed<s>/` (a seed "
        "sets the solver's random_seed, i.e. initial weights and dropout masks, and the order "
        "of the training records; faces and train/test split are the same for every seed). "
        "Figures are the mean ± the sample standard deviation (n − 1) over the seeds where the "
        "quantity exists; \"(k of n; m not reached)\" counts the seeds where it does not, "
        "which are left out of the mean. Iterations are in the paper's units (divided by each "
        "run's schedule scale). Convergence: the first test after which the best accuracy never "
        f"improves by more than {study.tolerance_pp:g} percentage points (confirmed by a later "
        "test). Final accuracy: the last test. Verification: the final weights on held-out people "
        "(tools/verify.py: pool4 features, cosine, 10-fold accuracy; EER from the ROC of all "
        "pairs). A diverged run (non-finite loss) stops there and is not verified; its best "
        "accuracy and iterations to the target are those it reached before.", ""]
    scale = scale_rows(study, grouped)
    if scale:
        lines += ["## Scale: speed-up and accuracy gaps", "",
                  f"| identities | BN schedule | speed-up to {t} (baseline ÷ BN iterations) | "
                  "best accuracy, BN − baseline | verification accuracy, BN − baseline | seeds |",
                  "|---:|---|---:|---:|---:|---:|"]
        for row in scale:
            lines.append(f"| {row['classes']:,} | {row['run']} | "
                         f"{cell_text(row['speedup'], 'ratio', 'undefined')}"
                         f"{_bound_text(row['bound'], t)} | "
                         f"{cell_text(row['gap'], 'pp', 'undefined')} | "
                         f"{cell_text(row['verification_gap'], 'pp', 'undefined')} | "
                         f"{row['speedup'].n} |")
        original, multistep = paper.RESULTS[0], paper.RESULTS[2]
        lines += ["", f"The paper ({paper.NUM_CLASSES:,} identities, one run): multistep reached "
                  f"80% {original[2] / multistep[2]:.2f}× sooner ({original[2]:,} vs "
                  f"{multistep[2]:,} iterations) and ended "
                  f"{100 * (multistep[4] - original[4]):+.2f} pp ({_number(multistep[4], 'fraction')}"
                  f" vs {_number(original[4], 'fraction')}). Per seed, speed-up and gap pair the "
                  "baseline and BN runs of the same seed; a seed where either never reached "
                  f"{t} has no speed-up (\"undefined\"); where only the BN run did, the speed-up "
                  "is more than the baseline's last test ÷ the BN run's iterations (the smallest "
                  "such bound is shown).", ""]
    head = " | ".join(c.label.format(target=t) for c in columns)
    lines += ["## Every cell", "",
              f"| cell | net, schedule | identities × images | epochs | seeds | {head} | diverged |",
              "|---|---|---:|---:|---:|" + "---:|" * len(columns) + "---|"]
    for cell in study.all_cells:
        results = grouped.get(cell.name)
        if not results:
            continue
        summaries = aggregate.cell_summaries(results, columns)
        cells = [cell_text(summaries[c.key], c.kind, c.missing) for c in columns]
        lines.append(f"| {cell.name} | {_net_schedule(cell)} | {cell.classes:,} × "
                     f"{cell.plan.images_per_identity} | {cell.plan.original_epochs:g} | "
                     f"{len(results)} | " + " | ".join(cells) + f" | {_diverged_text(results)} |")
    bn_reference = study.references[1]
    reference = grouped.get(bn_reference)
    ablations = [c for c in ablation_cells(study) if grouped.get(c.name)]
    if ablations:
        lines += ["", f"## Ablations ({ablations[0].classes:,} identities × "
                  f"{ablations[0].plan.images_per_identity} images; the first two rows are the "
                  "paper's nets, the references)", "",
                  f"| cell | what it changes | seeds | iterations to {t} | best accuracy | "
                  f"best accuracy − {bn_reference}'s (paired by seed) | verification accuracy "
                  "| diverged |", "|---|---|---:|---:|---:|---:|---:|---|"]
        for cell in ablations:
            results = grouped[cell.name]
            s = aggregate.cell_summaries(results, columns)
            delta = "—"
            if reference and cell.name != bn_reference:
                delta = cell_text(aggregate.paired(reference, results, aggregate.best_gap_pp),
                                  "pp", "undefined")
            lines.append(f"| {cell.name} | {cell.about} | {len(results)} | "
                         f"{cell_text(s['to_target'], 'iterations', 'not reached')} | "
                         f"{cell_text(s['best'], 'fraction', 'no test')} | {delta} | "
                         f"{cell_text(s['verification_accuracy'], 'fraction', 'not verified')} | "
                         f"{_diverged_text(results)} |")
    return "\n".join(lines) + "\n"


def _csv(header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _stats(summary):
    return ["" if summary.mean is None else summary.mean,
            "" if summary.std is None else summary.std, len(summary.values), summary.missing]


def table_csv(study, grouped, columns=COLUMNS):
    """One row per cell: its settings, then mean, std, n and missing per column."""
    header = ["cell", "question", "net", "schedule", "net_args", "identities",
              "images_per_identity", "epochs", "seeds"]
    for c in columns:
        header += [f"{c.key}_mean", f"{c.key}_std", f"{c.key}_n", f"{c.key}_missing"]
    header += ["diverged"]
    rows = []
    for cell in study.all_cells:
        results = grouped.get(cell.name)
        if not results:
            continue
        summaries = aggregate.cell_summaries(results, columns)
        row = [cell.name, cell.question, cell.net, cell.schedule, " ".join(cell.net_args),
               cell.classes, cell.plan.images_per_identity, cell.plan.original_epochs,
               len(results)]
        for c in columns:
            row += _stats(summaries[c.key])
        rows.append(row + [len(aggregate.diverged(results))])
    return _csv(header, rows)


def runs_csv(study, grouped, columns=COLUMNS):
    """One row per run: cell, seed, each column's value (iterations in paper units)."""
    header = (["cell", "seed"] + [c.key for c in columns]
              + ["diverged_at", "scale", "train_images", "seconds", "log"])
    rows = []
    for cell in study.all_cells:
        for r in aggregate.by_seed(grouped.get(cell.name, ())).values():
            values = [aggregate.value(r, c) for c in columns]
            div = r["metrics"].get("diverged_at")
            rows.append([cell.name, r["seed"]] + ["" if v is None else v for v in values]
                        + ["" if div is None else round(div / r["scale"]), r["scale"],
                           r["train_images"], r["seconds"], r["log"]])
    return _csv(header, rows)


def scale_csv(study, grouped):
    header = ["identities", "bn_schedule", "speedup_mean", "speedup_std", "speedup_n",
              "speedup_missing", "best_gap_pp_mean", "best_gap_pp_std", "best_gap_pp_n",
              "best_gap_pp_missing", "verification_gap_pp_mean", "verification_gap_pp_std",
              "verification_gap_pp_n", "verification_gap_pp_missing", "speedup_lower_bound_min",
              "speedup_lower_bound_n"]
    return _csv(header, [[r["classes"], r["run"], *_stats(r["speedup"]), *_stats(r["gap"]),
                          *_stats(r["verification_gap"]),
                          min(r["bound"].values) if r["bound"].values else "",
                          len(r["bound"].values)] for r in scale_rows(study, grouped)])
