"""Several processes (torchrun, gloo on CPU) train like one process with their batches
together: 2 processes × batch 8 == 1 process × batch 16 (a net without BatchNorm, whose
statistics stay per process as in Caffe's multi-GPU training)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from solver_fixtures import make_setup
from test_engine_signals import model_blobs

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


@pytest.mark.slow
def test_two_processes_equal_one_with_twice_the_batch(tmp_path):
    make_setup(tmp_path, {"max_iter": 6, "snapshot_prefix": "one/toy"}, bn=False, batch=16,
               name="one.prototxt")
    (tmp_path / "net.prototxt").rename(tmp_path / "net16.prototxt")
    (tmp_path / "one.prototxt").write_text(
        (tmp_path / "one.prototxt").read_text().replace('"net.prototxt"', '"net16.prototxt"'))
    make_setup(tmp_path, {"max_iter": 6, "snapshot_prefix": "two/toy"}, bn=False, batch=8,
               name="two.prototxt")
    train = os.path.join(ROOT, "tools", "train.py")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", "--", train, "two.prototxt", "--backend", "engine",
                          "--log", "two.log"], cwd=tmp_path, env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, train, "one.prototxt", "--backend", "engine"],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    for (name, x), (_, y) in zip(model_blobs(tmp_path / "one/toy_iter_6.caffemodel"),
                                 model_blobs(tmp_path / "two/toy_iter_6.caffemodel")):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=name)
    # rank 0 alone logs (one log, one "Solving" line), and alone snapshots
    log = (tmp_path / "two.log").read_text()
    assert log.count("] Solving toy") == 1 and log.count("Iteration 5, lr = 0.05") == 1
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "toy_iter_6.caffemodel", "toy_iter_6.solverstate"]
