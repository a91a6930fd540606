"""One figure per question of the study: speed-up and best-accuracy gap against the number
of identities (mean ± sample std over seeds, the paper's single run at 14,700 identities
for comparison), and the ablations as bars with error bars and every seed's value as a dot.
matplotlib's object API on the Agg canvas, as plots.py."""
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import paper
from . import aggregate
from .tables import ablation_cells, scale_rows

PAPER_SPEEDUP = paper.RESULTS[0][2] / paper.RESULTS[2][2]          # 64,000 / 45,000
PAPER_GAP_PP = 100 * (paper.RESULTS[2][4] - paper.RESULTS[0][4])   # 91.3% − 94.5%


def _figure(width=6.4, height=4.0, panels=1):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, panels, squeeze=False)[0]


def _against_classes(ax, rows, key, ylabel, title, paper_value, level, bounds=False):
    """A line per BN schedule: the scale rows' `key` Summary against identities, the paper's
    run as a star (paper_value None: none); with `bounds`, a triangle where only the BN runs
    reached the target (a lower bound)."""
    for i, run in enumerate(dict.fromkeys(r["run"] for r in rows)):
        shift = 1 + 0.04 * (i - 0.5)   # side by side, so both error bars show
        mine = [r for r in rows if r["run"] == run]
        points = [(r["classes"] * shift, r[key]) for r in mine]
        lower = [(r["classes"] * shift, min(r["bound"].values)) for r in mine
                 if r["bound"].values] if bounds else []
        if lower:
            ax.scatter([x for x, _ in lower], [y for _, y in lower], marker="^", s=60,
                       facecolors="none", edgecolors=f"C{i}",
                       label=f"{run}: only BN reached the target (speed-up above this)")
        shown = [(x, s) for x, s in points if s.mean is not None]
        if not shown:
            continue
        ax.errorbar([x for x, _ in shown], [s.mean for _, s in shown],
                    yerr=[s.std or 0.0 for _, s in shown], marker="o", capsize=4,
                    color=f"C{i}", label=f"{run} (mean ± std over seeds)")
        for x, s in shown:
            ax.scatter([x] * len(s.values), s.values, color=f"C{i}", s=10, alpha=0.5)
            if s.missing:
                ax.annotate(f"{len(s.values)} of {s.n}", (x, s.mean), textcoords="offset points",
                            xytext=(6, 6), fontsize=8, color=f"C{i}")
    if paper_value is not None:
        ax.scatter([paper.NUM_CLASSES], [paper_value], marker="*", s=140, color="k",
                   label="the paper (multistep, one run)", zorder=3)
    ax.axhline(level, color="0.6", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("identities (classes)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def speedup_figure(study, grouped):
    t = f"{100 * study.target:g}%"
    fig, (ax,) = _figure()
    _against_classes(ax, scale_rows(study, grouped), "speedup",
                     f"speed-up to {t} (baseline ÷ BN iterations)",
                     f"Is BN's speed-up to {t} robust across seeds and scale?",
                     PAPER_SPEEDUP, 1.0, bounds=True)
    return fig


def gap_figure(study, grouped):
    """Two panels: the best test accuracy's gap (the paper's measure) and the held-out
    verification accuracy's."""
    fig, axes = _figure(width=11, panels=2)
    rows = scale_rows(study, grouped)
    _against_classes(axes[0], rows, "gap", "best test accuracy, BN − baseline (pp)",
                     "Does the final-accuracy gap change with scale?", PAPER_GAP_PP, 0.0)
    _against_classes(axes[1], rows, "verification_gap",
                     "verification accuracy, BN − baseline (pp)",
                     "... and on held-out people (final weights)", None, 0.0)
    return fig


def ablation_figure(study, grouped):
    """Iterations to the target and best accuracy per ablation cell, bars ± std, seeds as dots."""
    cells = [c for c in ablation_cells(study) if grouped.get(c.name)]
    fig, axes = _figure(width=11, height=0.5 * len(cells) + 1.8, panels=2)
    t = f"{100 * study.target:g}%"
    for ax, column, xlabel, factor in (
            (axes[0], aggregate.column("to_target"), f"iterations to {t} (paper units)", 1.0),
            (axes[1], aggregate.column("best"), "best test accuracy (%)", 100.0)):
        for y, cell in enumerate(cells):
            s = aggregate.summarize(aggregate.value(r, column) for r in grouped[cell.name])
            note = []
            if s.mean is not None:
                ax.barh(y, s.mean * factor, xerr=(s.std or 0.0) * factor, capsize=4,
                        color="C1" if cell.net == "bn" else "C0", alpha=0.8)
                ax.scatter([v * factor for v in s.values], [y] * len(s.values), color="k", s=10,
                           zorder=3)
            if s.missing:
                note.append(f"{s.missing} of {s.n} {column.missing}")
            crashed = aggregate.diverged(grouped[cell.name])
            if crashed:
                note.append(f"{len(crashed)} diverged")
            if note:
                ax.annotate("; ".join(note), (0, y), xytext=(4, 0), textcoords="offset points",
                            va="center", fontsize=8)
        ax.set_yticks(range(len(cells)), [c.name for c in cells] if ax is axes[0] else [])
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
    if cells and cells[0].plan.identities:
        fig.suptitle(f"Ablations at {cells[0].classes} identities × "
                     f"{cells[0].plan.images_per_identity} images (mean ± std over seeds; "
                     "dots: single seeds; blue: baseline net, orange: BN net)")
    return fig
