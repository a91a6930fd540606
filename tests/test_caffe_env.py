"""`make caffe-env`: the venv beside a distribution's pycaffe (numpy 1.x, system site-packages
visible) imports our package, and `tools/train.py --backend caffe` trains in it. No real Caffe
is needed: tests/pycaffe_standin stands in for pycaffe (real pycaffe was checked by hand)."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from solver_fixtures import make_setup

STANDIN = os.path.join(ROOT, "tests", "pycaffe_standin")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_caffe_env_has_numpy_1_and_trains_with_the_caffe_backend(tmp_path):
    venv = tmp_path / "caffe-env"
    base = getattr(sys, "_base_executable", sys.executable)   # the interpreter, not our venv's
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    built = subprocess.run(["make", "-C", ROOT, "caffe-env", f"CAFFE_VENV={venv}",
                            f"CAFFE_PYTHON={base}"], env=env, capture_output=True, text=True,
                           timeout=1200)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    python = str(venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import sys, numpy, bnface_caffe; "
                            "print(numpy.__version__); print(bnface_caffe.__file__); "
                            "print(sys.flags.no_site, open(sys.prefix + '/pyvenv.cfg').read())"],
                           env=env, capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    version, where, config = probe.stdout.split("\n", 2)
    assert int(version.split(".")[0]) < 2
    assert where.startswith(os.path.join(ROOT, "bnface_caffe"))   # editable: this checkout
    assert "include-system-site-packages = true" in config
    # the caffe backend, through a `caffe` module found on PYTHONPATH as a Caffe build's is
    make_setup(tmp_path, {"max_iter": 2, "snapshot": 0, "test_interval": 2, "display": 1})
    env["PYTHONPATH"] = STANDIN
    trained = subprocess.run([python, os.path.join(ROOT, "tools", "train.py"), "solver.prototxt",
                              "--backend", "caffe", "--log", "c.log"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "caffe.cpp:250] Optimization Done." in (tmp_path / "c.log").read_text()
