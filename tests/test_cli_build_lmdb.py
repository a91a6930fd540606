"""tools/build_lmdb.py end to end: the fixed interface, one-line errors, Ctrl-C safety."""
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import lmdb
import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_tool


def test_synthetic_build_writes_the_documented_outdir(tmp_path):
    out = tmp_path / "data" / "lmdb"
    result = run_tool("build_lmdb", "--synthetic", out, "--identities", 6,
                      "--images-per-identity", 5, "--test-fraction", 0.2, "--workers", 1)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["labels.txt", "mean.binaryproto", "skipped.txt",
                                       "test.txt", "test_lmdb", "train.txt", "train_lmdb"]
    summary = result.stdout.strip()
    assert len(summary.splitlines()) == 1
    assert "24 train + 6 test images of 6 classes" in summary
    assert re.search(r"mean_value channel \[0\]: \d+(\.\d+)?\)", summary)
    assert (out / "labels.txt").read_text().splitlines() == [f"id{k:04d}" for k in range(6)]
    env = lmdb.open(str(out / "train_lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        keys = [k.decode() for k, _ in txn.cursor()]
    env.close()
    listed = [line.split(" ")[0] for line in (out / "train.txt").read_text().splitlines()]
    assert keys == [f"{i:08d}_{p}" for i, p in enumerate(listed)]
    assert keys[0][9:].startswith("id") and keys[0].endswith(".png")
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_listfile_needs_root_and_bad_lines_are_one_line_errors(tmp_path):
    (tmp_path / "p").mkdir()
    cv2.imwrite(str(tmp_path / "p" / "a b.png"), np.zeros((60, 60), np.uint8))
    listfile = tmp_path / "list.txt"
    listfile.write_text("p/a b.png 0\np/nolabel.png\n")
    assert_one_line_error(run_tool("build_lmdb", listfile, tmp_path / "o"), "needs --root")
    assert_one_line_error(run_tool("build_lmdb", listfile, tmp_path / "o", "--root", tmp_path),
                          f"{listfile}:2:", "no label")
    listfile.write_text("p/a b.png\n")  # the last space splits off "b.png" as the label
    assert_one_line_error(run_tool("build_lmdb", listfile, tmp_path / "o", "--root", tmp_path),
                          f"{listfile}:1:5:", "label 'b.png' is not an integer")
    listfile.write_text("p/a b.png -3\n")
    assert_one_line_error(run_tool("build_lmdb", listfile, tmp_path / "o", "--root", tmp_path),
                          f"{listfile}:1:", "out of range")
    listfile.write_text("p/a b.png 0\n")
    ok = run_tool("build_lmdb", listfile, tmp_path / "o", "--root", tmp_path, "--no-detect")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "train.txt").read_text() == "p/a b.png 0\n"


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    (tmp_path / "empty" / "person").mkdir(parents=True)
    assert_one_line_error(run_tool("build_lmdb", tmp_path / "empty", tmp_path / "o"),
                          "no images found")
    assert_one_line_error(run_tool("build_lmdb", tmp_path / "missing", tmp_path / "o"),
                          "no such folder")
    assert_one_line_error(run_tool("build_lmdb", tmp_path / "o"), "expected SOURCE OUTDIR")
    assert_one_line_error(run_tool("build_lmdb", "--synthetic", tmp_path / "a", tmp_path / "b"),
                          "expected --synthetic OUTDIR")
    assert_one_line_error(run_tool("build_lmdb", "--synthetic", tmp_path / "o",
                                   "--test-fraction", 1.5), "--test-fraction")
    assert_one_line_error(run_tool("build_lmdb", "--synthetic", tmp_path / "o", "--workers", -1),
                          "--workers must be ≥ 0 (0 = one per core), got -1")
    assert_one_line_error(run_tool("build_lmdb", "--synthetic", tmp_path / "o", "--difficulty", 5),
                          "--difficulty must be in [0, 1]", "got 5")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep me")
    assert_one_line_error(run_tool("build_lmdb", "--synthetic", tmp_path / "taken"),
                          "already exists; pass --overwrite")
    assert (tmp_path / "taken" / "x").read_text() == "keep me"
    (tmp_path / "all_bad" / "p").mkdir(parents=True)
    (tmp_path / "all_bad" / "p" / "x.jpg").write_bytes(b"")
    assert_one_line_error(run_tool("build_lmdb", tmp_path / "all_bad", tmp_path / "o"),
                          "no usable images", "empty file")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sig, delay", [(signal.SIGINT, 0.0), (signal.SIGINT, 0.1),
                                        (signal.SIGINT, 0.5), (signal.SIGTERM, 0.2)])
def test_interrupted_build_leaves_nothing_at_the_target(tmp_path, sig, delay):
    # Ctrl-C (or kill) at various points: while listing, starting the workers, rendering.
    out = tmp_path / "lmdb"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "build_lmdb.py"), "--synthetic", str(out),
           "--identities", 3000, "--images-per-identity", 30]
    proc = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not os.listdir(tmp_path):
        time.sleep(0.002)
    time.sleep(delay)  # rendering 90,000 images takes far longer than this
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().endswith("interrupted") and "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    assert os.listdir(tmp_path) == []  # neither the target nor the temporary build


def test_holdout_identities_option(tmp_path):
    out = tmp_path / "o"
    result = run_tool("build_lmdb", "--synthetic", out, "--identities", 3,
                      "--images-per-identity", 2, "--holdout-identities", 2, "--workers", 1)
    assert result.returncode == 0, result.stderr
    assert "Held out 2 identities (4 images) for verification: holdout/ and holdout.txt." \
        in result.stdout
    assert sorted(os.listdir(out / "holdout")) == ["id0003", "id0004"]
    assert len((out / "holdout.txt").read_text().splitlines()) == 4
    assert (out / "labels.txt").read_text().split() == ["id0000", "id0001", "id0002"]
    assert_one_line_error(run_tool("build_lmdb", "--synthetic", tmp_path / "x",
                                   "--holdout-identities", -1), "--holdout-identities")
