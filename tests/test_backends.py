"""Backend choice and the pycaffe backend, run against tests/pycaffe_standin (a `caffe`
module that answers pycaffe's calls with the engine and logs to fd 2 like C++ glog).
Real pycaffe, when installed, is exercised by hand (see the report), never by tests."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from bnface_caffe import backends
from bnface_caffe.errors import UserError
from conftest import ROOT
from solver_fixtures import make_setup
from test_engine_signals import model_blobs, wait_for

STANDIN = os.path.join(ROOT, "tests", "pycaffe_standin")


def train(folder, *args, standin=True, wait=True):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if standin:
        env["PYTHONPATH"] = STANDIN + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train.py"), *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_resolve():
    assert backends.resolve("engine") == "engine"
    with pytest.raises(UserError, match="unknown backend"):
        backends.resolve("tensorflow")
    if not backends.pycaffe_importable():
        assert backends.resolve("auto") == "engine"
        with pytest.raises(UserError, match="`import caffe` fails"):
            backends.resolve("caffe")


def test_caffe_backend_trains_like_the_engine_and_logs_to_the_file(tmp_path):
    make_setup(tmp_path, {"max_iter": 10, "snapshot_prefix": "viacaffe/toy"}, name="c.prototxt")
    make_setup(tmp_path, {"max_iter": 10, "snapshot_prefix": "engine/toy"}, name="e.prototxt")
    via_caffe = train(tmp_path, "c.prototxt", "--backend", "auto", "--log", "c.log")
    assert via_caffe.returncode == 0, via_caffe.stderr[-2000:]
    engine = train(tmp_path, "e.prototxt", "--backend", "engine", standin=False)
    assert engine.returncode == 0, engine.stderr[-2000:]
    log = (tmp_path / "c.log").read_text()
    # everything that went to fd 2 is in the file too, in order -- except what a Data
    # layer's prefetch thread may print after training returned (Caffe's can do the same)
    def steady(text):
        return [l for l in text.splitlines() if "Restarting data prefetching" not in l]
    assert steady(log) == steady(via_caffe.stderr)
    for line in ("caffe.cpp:197] Use CPU.", "solver.cpp:289] Solving toy",
                 "sgd_solver.cpp:112] Iteration 9, lr = 0.025", "caffe.cpp:239] Starting Optimization",
                 "solver.cpp:332] Optimization Done.", "caffe.cpp:250] Optimization Done."):
        assert line in log
    a = model_blobs(tmp_path / "viacaffe/toy_iter_10.caffemodel")
    b = model_blobs(tmp_path / "engine/toy_iter_10.caffemodel")
    for (name, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_caffe_backend_resumes_and_finetunes(tmp_path):
    make_setup(tmp_path, {"max_iter": 10}, name="s.prototxt")
    assert train(tmp_path, "s.prototxt", "--backend", "caffe").returncode == 0
    make_setup(tmp_path, {"max_iter": 20, "snapshot_prefix": "resumed/toy"}, name="r.prototxt")
    resumed = train(tmp_path, "r.prototxt", "--backend", "caffe",
                    "--snapshot", "snap/toy_iter_10.solverstate")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "caffe.cpp:235] Resuming from snap/toy_iter_10.solverstate" in resumed.stderr
    make_setup(tmp_path, {"max_iter": 20, "snapshot_prefix": "straight/toy"}, name="t.prototxt")
    assert train(tmp_path, "t.prototxt", "--backend", "engine", standin=False).returncode == 0
    for (n, x), (_, y) in zip(model_blobs(tmp_path / "resumed/toy_iter_20.caffemodel"),
                              model_blobs(tmp_path / "straight/toy_iter_20.caffemodel")):
        np.testing.assert_array_equal(x, y, err_msg=n)
    make_setup(tmp_path, {"max_iter": 1, "snapshot_prefix": "tuned/toy", "base_lr": 0.0,
                          "random_seed": 99}, name="f.prototxt")
    tuned = train(tmp_path, "f.prototxt", "--backend", "caffe",
                  "--weights", "snap/toy_iter_10.caffemodel")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert tuned.stderr.count("Finetuning from snap/toy_iter_10.caffemodel") == 2  # train + test
    # lr 0: the weights stay what was loaded (BatchNorm statistics move with the forward pass)
    loaded = dict(model_blobs(tmp_path / "snap/toy_iter_10.caffemodel"))
    after = dict(model_blobs(tmp_path / "tuned/toy_iter_1.caffemodel"))
    np.testing.assert_array_equal(loaded["fc"], after["fc"])


def test_caffe_backend_sigint_and_nan(tmp_path):
    make_setup(tmp_path, {"max_iter": 100000, "snapshot": 0, "test_interval": 1000},
               name="long.prototxt")
    proc = train(tmp_path, "long.prototxt", "--backend", "caffe", "--log", "long.log", wait=False)
    wait_for(lambda: (tmp_path / "long.log").exists()
             and "Iteration 3, lr" in (tmp_path / "long.log").read_text(), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "Optimization stopped early." in err and len(list(tmp_path.glob("snap/*.solverstate"))) == 1
    make_setup(tmp_path, {"base_lr": 1e30, "max_iter": 50, "snapshot": 0}, name="nan.prototxt")
    nan = train(tmp_path, "nan.prototxt", "--backend", "caffe")
    assert nan.returncode == 1
    last = nan.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: iteration ") and "the training loss is" in last


def test_stderr_also_to_copies_c_level_and_python_writes(tmp_path):
    code = ("import os, sys\nfrom bnface_caffe import backends\n"
            "with backends.stderr_also_to(sys.argv[1]):\n"
            "    os.write(2, b'from C\\n')\n    print('from Python', file=sys.stderr)\n"
            "print('after', file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.log")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert (tmp_path / "x.log").read_text() == "from C\nfrom Python\n"
    assert out.stderr == "from C\nfrom Python\nafter\n"


def test_probing_for_pycaffe_leaves_the_glog_settings_as_they_were(monkeypatch):
    # the probe sets GLOG_logtostderr for C++ glog during the import only: a user's
    # GLOG_log_dir must still give our Glog its file afterwards
    monkeypatch.delenv("GLOG_logtostderr", raising=False)
    monkeypatch.setenv("GLOG_minloglevel", "1")
    backends.pycaffe_importable()
    assert "GLOG_logtostderr" not in os.environ and os.environ["GLOG_minloglevel"] == "1"
