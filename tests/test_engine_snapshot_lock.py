"""One run per snapshot_prefix (engine/snapshot_lock.py): a second run refuses to start, the
lock goes with its process (a stale lock of a killed run is taken over, with a line)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from bnface_caffe.engine.snapshot_lock import PrefixLock
from bnface_caffe.errors import UserError
from conftest import ROOT
from engine_util import captured_log
from solver_fixtures import make_setup

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def dead_pid():
    """The PID of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_holder_is_refused_and_the_lock_goes_on_release(tmp_path):
    prefix = str(tmp_path / "snap" / "toy")
    log, out = captured_log()
    first = PrefixLock(prefix, log)
    first.acquire()
    assert open(prefix + ".lock").read() == f"{os.getpid()}\n"
    with pytest.raises(UserError) as refused:
        PrefixLock(prefix, log).acquire()
    assert str(refused.value) == (
        f"snapshot_prefix '{prefix}' is in use by process {os.getpid()} (lock file "
        f"{prefix}.lock); wait for that run to end, or give this one another snapshot_prefix")
    first.release()
    assert not os.path.exists(prefix + ".lock")
    with PrefixLock(prefix, log):
        assert os.path.exists(prefix + ".lock")
    assert not os.path.exists(prefix + ".lock") and out.getvalue() == ""


def test_a_stale_lock_is_taken_over_with_a_line(tmp_path):
    prefix = str(tmp_path / "toy")
    pid = dead_pid()
    with open(prefix + ".lock", "w") as f:
        f.write(f"{pid}\n")
    log, out = captured_log()
    with PrefixLock(prefix, log):
        assert open(prefix + ".lock").read() == f"{os.getpid()}\n"
    line = out.getvalue().strip()
    assert line.startswith("W") and line.endswith(
        f"snapshot_lock.py:1] Ignoring the stale lock {prefix}.lock of process {pid} "
        "(no longer running)")


def start(folder, solver, *args, log_name):
    err = open(os.path.join(folder, log_name + ".stderr"), "w")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "train.py"), solver,
                             "--backend", "engine", "--log", log_name, *args], cwd=folder,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=err)


def wait_for_text(path, text, proc, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and text in open(path).read():
            return
        assert proc.poll() is None, f"training ended early (status {proc.returncode})"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {text!r}")


def test_two_runs_on_one_prefix_and_a_killed_runs_lock(tmp_path):
    make_setup(tmp_path, {"max_iter": 100000, "snapshot": 0, "test_interval": 1000},
               name="long.prototxt")
    make_setup(tmp_path, {"max_iter": 2, "snapshot": 0, "test_interval": 1000},
               name="short.prototxt")
    first = start(tmp_path, "long.prototxt", log_name="first.log")
    wait_for_text(tmp_path / "first.log", "Iteration 1, lr", first)
    second = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"),
                             "short.prototxt", "--backend", "engine"], cwd=tmp_path, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1] == (
        f"train.py: error: snapshot_prefix 'snap/toy' is in use by process {first.pid} (lock "
        "file snap/toy.lock); wait for that run to end, or give this one another snapshot_prefix")
    assert "Traceback" not in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    assert open(tmp_path / "snap/toy.lock").read() == f"{first.pid}\n"    # left behind
    third = start(tmp_path, "short.prototxt", "--resume", log_name="third.log")
    assert third.wait(300) == 0, (tmp_path / "third.log.stderr").read_text()[-2000:]
    text = (tmp_path / "third.log").read_text()
    assert (f"Ignoring the stale lock snap/toy.lock of process {first.pid} (no longer running)"
            in text)
    assert "--resume: no complete snapshot of snap/toy; starting fresh" in text
    assert not (tmp_path / "snap/toy.lock").exists()
