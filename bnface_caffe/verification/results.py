"""The verification figures of one evaluation: computed from scores, written as CSV and
markdown tables, and the ROC curve as a figure."""
import csv
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import metrics

FAR_TARGETS = (1e-2, 1e-3)
COLUMNS = ("pairs", "folds", "accuracy", "accuracy_std", "accuracy_se", "auc", "eer",
           "eer_threshold", "tar_at_far_1e-2", "tar_at_far_1e-3")


def figures(scores, pairs):
    """Every figure of the protocol as a dict (None where the pair count cannot give it),
    plus the per-fold results and the ROC curve."""
    folds = metrics.kfold_accuracy(scores, pairs.same, pairs.fold)
    curve = metrics.roc(scores, pairs.same)
    rate, threshold = metrics.eer(curve)
    out = {"pairs": len(pairs), "folds": len(folds.accuracies), "accuracy": folds.mean,
           "accuracy_std": folds.std, "accuracy_se": folds.standard_error,
           "auc": metrics.auc(curve), "eer": rate, "eer_threshold": threshold,
           "in_sample": folds.in_sample}
    for far in FAR_TARGETS:
        out[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = metrics.tar_at_far(curve, far)
    return out, folds, curve


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def summary_lines(fig):
    """Human-readable lines for the terminal."""
    protocol = (f"{fig['folds']}-fold (threshold from the other folds)" if not fig["in_sample"]
                else "1 fold (threshold chosen on the same pairs: optimistic)")
    lines = [f"pairs: {fig['pairs']} ({protocol})",
             f"accuracy: {_pct(fig['accuracy'])} ± {_pct(fig['accuracy_std'])} "
             f"(std over folds; standard error {_pct(fig['accuracy_se'])})",
             f"ROC AUC: {fig['auc']:.4f}",
             f"EER: {_pct(fig['eer'])} (threshold {fig['eer_threshold']:.4f})"]
    for far in FAR_TARGETS:
        key = f"tar_at_far_{far:.0e}".replace("e-0", "e-")
        value = fig[key]
        lines.append(f"TAR@FAR={far:g}: " + (_pct(value) if value is not None else
                     f"n/a (needs at least {round(1 / far)} different-person pairs)"))
    return lines


def csv_text(rows):
    """rows: [(name, figures dict)] -> CSV with a `name` column then COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("name",) + COLUMNS)
    for name, fig in rows:
        writer.writerow([name] + ["" if fig[c] is None else
                                  (f"{fig[c]:.6g}" if isinstance(fig[c], float) else fig[c])
                                  for c in COLUMNS])
    return out.getvalue()


def markdown(rows):
    lines = ["| model | pairs | accuracy (mean ± std) | AUC | EER | TAR@FAR=1e-2 | "
             "TAR@FAR=1e-3 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, fig in rows:
        lines.append(f"| {name} | {fig['pairs']} | {_pct(fig['accuracy'])} ± "
                     f"{_pct(fig['accuracy_std'])} | {fig['auc']:.4f} | {_pct(fig['eer'])} | "
                     f"{_pct(fig['tar_at_far_1e-2'])} | {_pct(fig['tar_at_far_1e-3'])} |")
    return "\n".join(lines) + "\n"


def folds_csv(folds):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("fold", "threshold", "accuracy"))
    for k, (t, a) in enumerate(zip(folds.thresholds, folds.accuracies)):
        writer.writerow((k, f"{t:.6g}", f"{a:.6g}"))
    return out.getvalue()


def roc_csv(curve):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("threshold", "far", "tar"))
    for t, f, r in zip(curve.thresholds, curve.far, curve.tar):
        writer.writerow((f"{t:.8g}", f"{f:.8g}", f"{r:.8g}"))
    return out.getvalue()


def plot_roc(curves, title=None):
    """A Figure with one ROC curve per (label, Roc, figures); FAR on a log axis where the
    curve has points above 0, and the EER point marked."""
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    smallest = 1.0
    for label, curve, figs in curves:
        positive = curve.far > 0
        if positive.any():
            smallest = min(smallest, curve.far[positive].min())
        ax.plot(np.maximum(curve.far, 1e-6), curve.tar, drawstyle="steps-post",
                label=f"{label} (AUC {figs['auc']:.3f}, EER {100 * figs['eer']:.1f}%)")
        ax.plot([figs["eer"]], [1 - figs["eer"]], "o", color=ax.lines[-1].get_color(), ms=4)
    ax.set_xscale("log")
    ax.set_xlim(max(min(smallest, 1e-3) / 2, 1e-6), 1.0)
    ax.set_ylim(0.0, 1.005)
    ax.set_xlabel("false accept rate (different people accepted)")
    ax.set_ylabel("true accept rate (same person accepted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def load(folder):
    """(Roc, figures) from a tools/verify.py output folder (roc.csv, metrics.csv)."""
    with open(f"{folder}/roc.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(f"{folder}/metrics.csv", newline="") as f:
        fig = next(csv.DictReader(f))
    fig = {k: (v if k == "name" else float(v) if v else None) for k, v in fig.items()}
    curve = metrics.Roc(far=np.array([float(r["far"]) for r in rows]),
                        tar=np.array([float(r["tar"]) for r in rows]),
                        thresholds=np.array([float(r["threshold"]) for r in rows]),
                        positives=0, negatives=0)
    return curve, fig


def plot_roc_folders(labelled_folders, title=None):
    """One ROC figure of several tools/verify.py results: [(label, folder)]."""
    return plot_roc([(label, *load(folder)) for label, folder in labelled_folders], title)
