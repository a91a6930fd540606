"""tools/plot_lr.py end to end, and the plotting function's artists."""
import os

import matplotlib.image
import numpy as np

from bnface_caffe.paper_schedules import build_solver
from bnface_caffe.schedule_plot import plot_schedules
from conftest import ROOT, assert_one_line_error, run_tool


def test_plots_the_committed_solvers(tmp_path):
    out = tmp_path / "lr.png"
    solvers = [os.path.join(ROOT, "solvers", f"{n}.prototxt") for n in ("original", "short_step", "multistep")]
    result = run_tool("plot_lr", *solvers, "-o", out)
    assert result.returncode == 0, result.stderr
    image = matplotlib.image.imread(str(out))
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert np.std(image[..., :3]) > 0.05  # not a blank canvas


def test_lines_follow_the_schedule_and_mark_steps(tmp_path):
    solvers = [build_solver("short_step"), build_solver("multistep")]
    fig, lines, markers = plot_schedules(solvers, ["short", "multi"], str(tmp_path / "lr.svg"))
    x, y = lines[0].get_data()
    assert x[0] == 0 and x[-1] == 180000 and abs(y[0] - 0.055) < 1e-8
    assert len(markers[0].get_offsets()) == 16  # steps at 11000 .. 176000
    assert len(markers[1].get_offsets()) == 14
    assert fig.axes[0].get_yscale() == "log" and (tmp_path / "lr.svg").stat().st_size > 1000


def test_malformed_solver_is_a_located_one_line_error(tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('base_lr: 0.1\nlr_policy: "step"\nstepsiz: 10\n')
    assert_one_line_error(run_tool("plot_lr", bad, "-o", tmp_path / "x.png"), f"{bad}:3:1:", "stepsiz")
    missing = tmp_path / "none.prototxt"
    assert_one_line_error(run_tool("plot_lr", missing), "no such file")
    nopolicy = tmp_path / "nopolicy.prototxt"
    nopolicy.write_text("base_lr: 0.1\nmax_iter: 10\n")
    assert_one_line_error(run_tool("plot_lr", nopolicy), "lr_policy is not set")


def test_scale_puts_the_x_axis_in_paper_units(tmp_path):
    scaled = build_solver("short_step")
    scaled.max_iter, scaled.stepsize = 1800, 110  # gen_solver --scale 0.01
    _, lines, _ = plot_schedules([scaled], ["s"], str(tmp_path / "lr.png"), scale=0.01)
    x, _ = lines[0].get_data()
    assert x[1] == 11000 and x[-1] == 180000
