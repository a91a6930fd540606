"""Every tool that writes a file refuses an output it cannot write: -o naming a directory, a
path under a file, an extension it does not write. One line, exit status 2, nothing written,
and the check comes before any work (forward: before its inputs are even looked at)."""
import os

import pytest

from bnface_caffe.cli import forward, gen_net, gen_solver, parse_log, plot_curves, plot_lr, report, run
from test_report import glog_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLVER = os.path.join(ROOT, "solvers", "multistep.prototxt")
DEPLOY = os.path.join(ROOT, "prototxt", "bn_deploy.prototxt")


def call(main, argv, capsys):
    with pytest.raises(SystemExit) as done:
        run(main, argv)
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def listing(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, dirs, files in os.walk(folder) for f in files + dirs)


# (tool, argv before the output, the output's file name)
TOOLS = {
    "gen_net": (gen_net.main, lambda log: ["--bn"], "net.prototxt"),
    "gen_solver": (gen_solver.main, lambda log: ["multistep"], "solver.prototxt"),
    "report": (report.main, lambda log: [log], "table.md"),
    "plot_curves": (plot_curves.main, lambda log: [log], "curves.png"),
    "plot_lr": (plot_lr.main, lambda log: [SOLVER], "lr.svg"),
    "forward": (forward.main, lambda log: [DEPLOY, "absent.caffemodel", "absent.npy"], "out.npz"),
}


@pytest.fixture
def workdir(tmp_path):
    log = glog_run(tmp_path, "run", [(0, 0.25), (10, 0.5)])
    return tmp_path, log


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_output_naming_a_directory(workdir, capsys, name):
    folder, log = workdir
    main, before, file_name = TOOLS[name]
    target = folder / file_name          # a directory that happens to have a file's name
    target.mkdir()
    seen = listing(folder)
    status, _, err = call(main, before(log) + ["-o", str(target)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"-o {target}: is a directory; give a file name" in err
    assert listing(folder) == seen


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_output_under_a_file(workdir, capsys, name):
    folder, log = workdir
    main, before, file_name = TOOLS[name]
    blocker = folder / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    seen = listing(folder)
    target = blocker / file_name
    status, _, err = call(main, before(log) + ["-o", str(target)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "is a file, not a folder" in err
    assert listing(folder) == seen


@pytest.mark.parametrize("main, before", [(plot_curves.main, lambda log: [log]),
                                          (plot_lr.main, lambda log: [SOLVER])])
@pytest.mark.parametrize("file_name", ["figure.pdf", "figure"])
def test_figures_are_png_or_svg_only(workdir, capsys, main, before, file_name):
    folder, log = workdir
    seen = listing(folder)
    status, _, err = call(main, before(log) + ["-o", str(folder / file_name)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "a figure must end in .png or .svg" in err
    assert listing(folder) == seen


def test_parse_log_outdir_must_be_a_folder(workdir, capsys):
    folder, log = workdir
    blocker = folder / "notes.txt"
    blocker.write_text("x\n")
    for outdir, message in ((blocker, "is a file, not a directory"),
                            (folder / "absent", "no such directory")):
        status, _, err = call(parse_log.main, [log, str(outdir)], capsys)
        assert status == 2 and len(err.strip().splitlines()) == 1 and message in err
    # LOG.train is in the way as a directory
    (folder / "run.log.train").mkdir()
    seen = listing(folder)
    status, _, err = call(parse_log.main, [log], capsys)
    assert status == 2 and "run.log.train: is a directory" in err
    assert listing(folder) == seen
