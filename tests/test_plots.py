"""Figures are written, non-empty, the right size, and hold the runs' curves."""
import matplotlib.image
import pytest

from bnface_caffe import curves, plots
from bnface_caffe.errors import UserError
from test_report import glog_run


def two_runs(tmp_path):
    logs = [glog_run(tmp_path, "original", [(0, 0.1), (100, 0.5), (200, 0.85)]),
            glog_run(tmp_path, "multistep", [(0, 0.2), (100, 0.7), (200, 0.9)], policy="multistep")]
    return curves.load_runs(logs)


def test_accuracy_loss_and_lr_panels_hold_each_run(tmp_path):
    runs = two_runs(tmp_path)
    fig, artists = plots.plot_runs(runs, loss=True, lr=True, target=0.8)
    assert len(fig.axes) == 3
    for run in runs:
        line = artists["accuracy"][run.label]
        assert list(line.get_xdata()) == [0, 100, 200] and list(line.get_ydata()) == run.test_values
        assert list(artists["loss"][run.label].get_ydata()) == run.loss_values
        assert list(artists["lr"][run.label].get_ydata()) == [0.055, 0.055, 0.055]
    assert list(artists["target"].get_ydata()) == [0.8, 0.8]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["original", "multistep", "target 80%"]

    png = tmp_path / "curves.png"
    plots.save(fig, str(png))
    image = matplotlib.image.imread(str(png))
    width, height = fig.get_size_inches() * 120
    assert image.shape[:2] == (round(height), round(width))
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_scaled_iterations_seconds_and_svg(tmp_path):
    runs = two_runs(tmp_path)
    fig, artists = plots.plot_runs(runs, scale=0.01)
    assert list(artists["accuracy"]["original"].get_xdata()) == [0, 10000, 20000]
    assert "paper" in fig.axes[0].get_xlabel()
    fig, artists = plots.plot_runs(runs, x="seconds", lr=True)
    assert list(artists["accuracy"]["original"].get_xdata()) == [0.0, 1.0, 2.0]  # one test a second
    assert list(artists["lr"]["original"].get_xdata()) == [0.0, 1.0, 2.0]
    assert fig.axes[-1].get_xlabel() == "seconds"
    svg = tmp_path / "curves.svg"
    plots.save(fig, str(svg))
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and text.count("<path") > 10
    with pytest.raises(UserError, match="must end in .png or .svg"):
        plots.save(fig, str(tmp_path / "curves.jpg"))
