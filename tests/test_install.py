"""The package works installed, not only from a checkout: a non-editable `pip install` into a
fresh venv gives a console script per tool, and they run the demo's pipeline (at a toy size)
and a two-process CPU training from a folder that is not the repository."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_PLAN
from solver_fixtures import make_setup


def console_scripts():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    block = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return re.findall(r"^(bnface-[a-z-]+) = ", block, re.M)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the package installed from the repository (not editable); its
    dependencies are this interpreter's (a .pth file), so nothing big is installed again."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = os.path.join(root, "bin", "python")
    site = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write("\n".join(ours) + "\n")
    result = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", ROOT],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def run(venv, args, cwd, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_every_tool_is_an_installed_console_script(venv, tmp_path):
    scripts = console_scripts()
    assert len(scripts) >= 11
    for name in scripts:
        result = run(venv, [os.path.join(venv, "bin", name), "--version"], tmp_path)
        assert result.returncode == 0 and "bnface-caffe" in result.stdout, (name, result.stderr)
    where = run(venv, [os.path.join(venv, "bin", "python"), "-c",
                       "import bnface_caffe; print(bnface_caffe.__file__)"], tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout   # the installed copy, not the checkout


@pytest.mark.slow
def test_installed_reproduce_runs_the_pipeline_where_it_is_run(venv, tmp_path):
    result = run(venv, [os.path.join(venv, "bin", "bnface-reproduce"), "fast", *TINY_PLAN], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = tmp_path / "results" / "fast"
    for name in ("table.md", "table.csv", "curves.png", "lr.png", "run.json"):
        assert (out / name).is_file(), name
    assert (tmp_path / "data").is_dir()
    assert "$ bnface-train " in result.stdout and "tools/" not in result.stdout


@pytest.mark.slow
def test_installed_package_trains_with_two_processes(venv, tmp_path):
    make_setup(tmp_path, {"max_iter": 3, "snapshot_prefix": "two/toy"}, bn=False, batch=4,
               name="two.prototxt")
    result = run(venv, [os.path.join(venv, "bin", "python"), "-m", "torch.distributed.run",
                        "--standalone", "--nproc_per_node=2", "-m", "--", "bnface_caffe.cli.train",
                        "two.prototxt", "--backend", "engine", "--log", "two.log"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "two.log").read_text()
    assert log.count("] Solving toy") == 1 and "Optimization Done." in log
    assert (tmp_path / "two" / "toy_iter_3.caffemodel").is_file()
