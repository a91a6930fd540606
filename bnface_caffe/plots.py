"""The paper's figure: test accuracy of several runs against iterations, with optional
train-loss and learning-rate panels and a line at the target accuracy.

Figures are made with matplotlib's object API and the Agg canvas (no display, no
pyplot state), and saved as PNG or SVG by the output's extension.
"""
import os

import numpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .errors import UserError

FORMATS = (".png", ".svg")


def _time_unit(max_seconds):
    if max_seconds > 2 * 3600:
        return 3600.0, "hours"
    if max_seconds > 2 * 60:
        return 60.0, "minutes"
    return 1.0, "seconds"


def plot_runs(runs, x="iterations", loss=False, lr=False, target=None, scale=1.0, title=None):
    """A Figure and the drawn artists: {"accuracy"|"loss"|"lr": {label: Line2D}, "target": Line2D}."""
    if x not in ("iterations", "seconds"):
        raise UserError(f"--x must be 'iterations' or 'seconds', not '{x}'")
    panels = ["accuracy"] + (["loss"] if loss else []) + (["lr"] if lr else [])
    fig = Figure(figsize=(8, 3.2 + 2.4 * (len(panels) - 1)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    divide, unit = 1.0, "iterations"
    if x == "seconds":
        longest = max([max(r.test_seconds + r.loss_seconds, default=0.0) for r in runs], default=0.0)
        divide, unit = _time_unit(longest)
    elif scale != 1.0:
        divide, unit = scale, f"iterations (÷ {scale:g}: the paper's units)"
    artists = {name: {} for name in panels}
    colors = {}
    for run in runs:
        color = colors.setdefault(run.label, f"C{len(colors) % 10}")
        curves = {
            "accuracy": (run.test_seconds if x == "seconds" else run.test_iters, run.test_values),
            "loss": (run.loss_seconds if x == "seconds" else run.loss_iters, run.loss_values),
            "lr": (None if x == "seconds" else run.lr_iters, run.lr_values),
        }
        for ax, name in zip(axes, panels):
            xs, ys = curves[name]
            if xs is None:  # the lr lines carry no time of their own: map iterations to seconds
                xs = _iters_to_seconds(run, run.lr_iters)
            if not ys:
                continue
            style = dict(marker="o", markersize=3) if name == "accuracy" and len(ys) < 60 else {}
            line, = ax.plot([v / divide for v in xs], ys, color=color, label=run.label,
                            drawstyle="steps-post" if name == "lr" else "default", **style)
            artists[name][run.label] = line
    ax = axes[0]
    metric = next((r.metric for r in runs if r.metric), "accuracy")
    ax.set_ylabel(f"test {metric}")
    if target is not None:
        artists["target"] = ax.axhline(target, color="0.4", linestyle="--", linewidth=1,
                                       label=f"target {100 * target:g}%")
    ax.grid(True, alpha=0.3)
    if artists["accuracy"] or target is not None:
        ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    for ax, name in zip(axes[1:], panels[1:]):
        ax.set_ylabel({"loss": "train loss", "lr": "learning rate"}[name])
        ax.grid(True, alpha=0.3)
        if name == "lr" and any(v > 0 for r in runs for v in r.lr_values):
            ax.set_yscale("log")
    axes[-1].set_xlabel(unit)
    return fig, artists


def _iters_to_seconds(run, iters):
    """Seconds at given iterations, interpolated from the loss and test points (which carry both)."""
    known = sorted(set(zip(run.loss_iters, run.loss_seconds)) | set(zip(run.test_iters, run.test_seconds)))
    if not known:
        return [0.0 for _ in iters]
    return list(numpy.interp(iters, [p[0] for p in known], [p[1] for p in known]))


def check_format(path):
    """A figure is PNG or SVG, chosen by the extension; anything else is refused up front."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise UserError(f"{path}: a figure must end in .png or .svg (got "
                        f"{repr(ext) if ext else 'no extension'})")
    return ext


def save(fig, path):
    """Write the figure; the extension picks PNG or SVG. Written to a temporary name first."""
    ext = check_format(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        fig.savefig(tmp, format=ext[1:], dpi=120)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
