"""Draw solvers' learning-rate schedules (log scale) over their max_iter, marking steps."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .plots import save  # noqa: E402
from .schedules import lr_points  # noqa: E402


def plot_schedules(solvers, labels, output, scale=None):
    """`solvers`: SolverParameters; `scale`: their gen_solver --scale, to show the x axis in
    the paper's iterations (iterations / scale), as plot_curves does.
    Returns (figure, [Line2D per schedule], [marker collections])."""
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    lines, markers = [], []
    styles = ["-", "--", "-.", ":"]  # identical schedules (original, long_step) stay visible
    for n, (solver, label) in enumerate(zip(solvers, labels)):
        its, rates = lr_points(solver)
        x = list(its) + [solver.max_iter]
        y = list(rates) + [rates[-1]]
        if scale:
            x = [v / scale for v in x]
        (line,) = ax.step(x, y, where="post", label=f"{label} ({solver.lr_policy})",
                         linewidth=1.6, linestyle=styles[n % len(styles)])
        lines.append(line)
        if solver.lr_policy in ("step", "multistep") and len(x) > 2:
            markers.append(ax.scatter(x[1:-1], y[1:-1], s=14, color=line.get_color(), zorder=3))
    ax.set_yscale("log")
    ax.set_xlabel("iteration" + (f" (÷ {scale:g}: the paper's units)" if scale else ""))
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedules")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save(fig, output)
    return fig, lines, markers
