"""tools/verify.py: features equal forward.py's, figures agree with a recomputation from the
saved features, pairs stay among held-out people, LFW pairs files, one-line errors."""
import csv
import os

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, run_tool
from net_fixtures import paper_deploy

from bnface_caffe.cli import forward, verify
from bnface_caffe.data import build


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A synthetic set with 4 trained and 6 held-out people, and the BN deploy net."""
    root = tmp_path_factory.mktemp("verify")
    data = root / "data"
    build.build(build.Options(outdir=str(data), synthetic=True, identities=4,
                              images_per_identity=5, holdout_identities=6, workers=1))
    deploy, weights, _ = paper_deploy(root, bn=True, num_classes=4)
    return root, data, deploy, weights


def run_verify(setup, *extra, source=None):
    root, data, deploy, weights = setup
    out = root / f"out{len(os.listdir(root))}"
    argv = [str(deploy), str(weights), str(source or data / "holdout.txt"), "-o", str(out),
            "--mean-value", "128", "--pixel-scale", "0.0078125", "--folds", "3", "-q", *extra]
    assert verify.main(argv) == 0
    return out


def test_features_equal_forward_py_blobs_and_figures_recompute(setup, capsys):
    root, data, deploy, weights = setup
    out = run_verify(setup, "--batch-size", "7")
    saved = np.load(out / "features.npz")
    paths = list(saved["paths"])
    assert len(paths) == 30 and saved["features"].shape == (30, 12)   # pool4 of width 12
    fwd = root / "fwd.npz"
    assert forward.main([str(deploy), str(weights), *paths[:9], "-o", str(fwd), "--blobs",
                         "pool4", "--mean-value", "128", "--pixel-scale", "0.0078125", "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(fwd)["pool4"].reshape(9, -1), saved["features"][:9])

    # independent recomputation from the saved features
    f = saved["features"].astype(np.float64)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    first, second, same, fold = saved["first"], saved["second"], saved["same"], saved["fold"]
    scores = (f[first] * f[second]).sum(1)
    np.testing.assert_allclose(scores, saved["scores"], atol=1e-12)
    with open(out / "metrics.csv") as fh:
        row = next(csv.DictReader(fh))
    pos, neg = scores[same], scores[~same]
    auc = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) \
        / (len(pos) * len(neg))
    assert float(row["auc"]) == pytest.approx(auc, abs=1e-6)
    accs = []
    for k in range(3):                       # brute force: every score as a threshold
        train, test = fold != k, fold == k
        cands = np.r_[scores[train], np.inf]
        acc = [((scores[train] >= t) == same[train]).mean() for t in cands]
        best = max(acc)
        # any best threshold must do as well on the training folds as the one chosen
        chosen = float(list(csv.DictReader(open(out / "folds.csv")))[k]["threshold"])
        assert ((scores[train] >= chosen) == same[train]).mean() == pytest.approx(best)
        accs.append(((scores[test] >= chosen) == same[test]).mean())
    assert float(row["accuracy"]) == pytest.approx(np.mean(accs), abs=1e-6)
    assert float(row["accuracy_std"]) == pytest.approx(np.std(accs, ddof=1), abs=1e-6)
    text = capsys.readouterr().out
    assert "blob pool4 (12-d, L2-normalised, cosine), 30 images of 6 people" in text
    assert f"{100 * np.mean(accs):.2f}%" in text
    for name in verify.OUTPUTS:
        assert (out / name).stat().st_size > 0
    assert (out / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (out / "roc.svg").read_bytes()[:400]


def test_pairs_only_among_held_out_people_balanced_and_seeded(setup):
    root, data, _, _ = setup
    a = np.load(run_verify(setup, "--seed", "3") / "features.npz")
    b = np.load(run_verify(setup, "--seed", "3", source=data / "holdout") / "features.npz")
    trained = set((data / "labels.txt").read_text().split())
    people = {os.path.basename(os.path.dirname(p)) for p in a["paths"]}
    assert len(people) == 6 and not people & trained
    ids = a["identities"]
    assert ((ids[a["first"]] == ids[a["second"]]) == a["same"]).all()
    for k in range(3):
        assert a["same"][a["fold"] == k].sum() == (~a["same"][a["fold"] == k]).sum()
    # the holdout/ folder and holdout.txt list the same images: same pairs, same scores
    assert [os.path.relpath(p, data) for p in a["paths"]] == \
        [os.path.relpath(p, data) for p in b["paths"]]
    for key in ("first", "second", "same", "fold", "scores"):
        np.testing.assert_array_equal(a[key], b[key])


def test_lfw_pairs_file(setup, tmp_path):
    lfw = tmp_path / "lfw"
    rng = np.random.default_rng(0)
    for name, count in (("Ann_A", 3), ("Bob_B", 2), ("Cid_C", 1)):
        (lfw / name).mkdir(parents=True)
        for i in range(1, count + 1):
            cv2.imwrite(str(lfw / name / f"{name}_{i:04d}.jpg"),
                        rng.integers(0, 256, (50, 50), dtype=np.uint8))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2 1\nAnn_A 1 2\nAnn_A 1 Cid_C 1\nBob_B 1 2\nBob_B 2 Ann_A 3\n")
    root = setup[0]
    out = root / "lfw_out"
    assert verify.main([str(setup[2]), str(setup[3]), str(lfw), "--pairs", str(pairs), "-o",
                        str(out), "--raw", "-q"]) == 0
    saved = np.load(out / "features.npz")
    assert len(saved["paths"]) == 6            # each named image once
    assert saved["same"].tolist() == [True, False, True, False]
    assert saved["fold"].tolist() == [0, 0, 1, 1]
    rows = list(csv.DictReader(open(out / "pairs.csv")))
    assert rows[3]["first"].endswith("Bob_B/Bob_B_0002.jpg")
    assert rows[3]["second"].endswith("Ann_A/Ann_A_0003.jpg")
    assert list(csv.DictReader(open(out / "metrics.csv")))[0]["folds"] == "2"


def test_bad_input_is_one_line_exit_2(setup, tmp_path):
    root, data, deploy, weights = setup
    common = ["-o", tmp_path / "o", "--mean-value", "128", "-q"]
    assert_one_line_error(run_tool("verify", deploy, weights, data / "holdout.txt", "--blob",
                                   "nope", "--folds", 3, *common),
                          "--blob nope", "has no blob 'nope'", "pool4")
    lfw = tmp_path / "lfw" / "Ann"
    lfw.mkdir(parents=True)
    cv2.imwrite(str(lfw / "Ann_0001.jpg"), np.zeros((50, 50), np.uint8))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1 1\nAnn 1 2\nAnn 1 Bob 1\n")
    assert_one_line_error(run_tool("verify", deploy, weights, tmp_path / "lfw", "--pairs", pairs,
                                   *common), f"{pairs}:2:", "Ann_0002.jpg does not exist")
    assert_one_line_error(run_tool("verify", deploy, weights, tmp_path / "missing", *common),
                          "no such folder or listfile")
    assert_one_line_error(run_tool("verify", deploy, weights, data / "holdout.txt", *common),
                          "6 identities are too few for 10 identity-disjoint folds")
    listfile = tmp_path / "list.txt"
    listfile.write_text("nowhere/x.png 0\n")
    assert_one_line_error(run_tool("verify", deploy, weights, listfile, *common),
                          "nowhere/x.png does not exist")
    assert not (tmp_path / "o").exists()
