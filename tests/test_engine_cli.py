"""tools/time_net.py and tools/forward.py: output, results, and one-line errors."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from bnface_caffe.formats import prototxt
from bnface_caffe.cli import forward, time_net
from bnface_caffe.engine import Net
from bnface_caffe.formats import caffemodel
from bnface_caffe.formats.glog import Glog
from bnface_caffe.proto import caffe_pb2
from engine_util import net_param

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

DEPLOY = """
name: "cli"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "msra" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 6 weight_filler { type: "xavier" } bias_filler { type: "gaussian" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def run_tool(name, *args, cwd=None):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def deploy(tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text(DEPLOY)
    torch.manual_seed(0)
    net = Net(net_param(DEPLOY), phase=caffe_pb2.TEST, logger=Glog(stderr=False))
    weights = tmp_path / "w.caffemodel"
    caffemodel.write(net.to_proto(), weights)
    return path, weights, net


def test_time_net_logs_setup_and_caffes_timing_lines(deploy, capsys):
    path, _, _ = deploy
    assert time_net.main([str(path), "--iterations", "2"]) == 0
    err = capsys.readouterr().err
    messages = [line.split("] ", 1)[1] for line in err.splitlines() if "] " in line]
    shapes = [m for m in messages if m.startswith("Top shape:")]
    assert shapes == ["Top shape: 1 1 10 10 (100)", "Top shape: 1 4 8 8 (256)",
                      "Top shape: 1 4 8 8 (256)", "Top shape: 1 4 4 4 (64)",
                      "Top shape: 1 6 (6)", "Top shape: 1 6 (6)"]
    assert "Use CPU." in messages and "*** Benchmark begins ***" in messages
    assert "Testing for 2 iterations." in messages
    assert sum(m.startswith("Iteration: ") for m in messages) == 2
    per_layer = [m for m in messages if "\tforward: " in m or "\tbackward: " in m]
    assert len(per_layer) == 12 and per_layer[0].startswith("      data\tforward: ")
    for key in ("Average Forward pass: ", "Average Backward pass: ",
                "Average Forward-Backward: ", "Total Time: "):
        assert any(m.startswith(key) and m.endswith(" ms.") for m in messages)
    assert messages[-1] == "*** Benchmark ends ***"


def test_time_net_bad_input_is_one_line_exit_2(tmp_path):
    rc, _, err = run_tool("time_net", tmp_path / "missing.prototxt")
    assert rc == 2 and err.count("\n") == 1 and "missing.prototxt" in err
    bad = tmp_path / "bad.prototxt"
    bad.write_text(DEPLOY.replace("kernel_size: 2 stride: 2", "pool: AVE kernel_size: 9"))
    rc, _, err = run_tool("time_net", bad)          # after the set-up log: one error line
    lines = [l for l in err.splitlines() if "error" in l]
    assert rc == 2 and "Traceback" not in err
    assert len(lines) == 1 and "layer 'pool' (Pooling)" in lines[0] and "9x9" in lines[0]
    rc, _, err = run_tool("time_net", bad, "--iterations", "0")
    assert rc == 2


def test_forward_npy_matches_the_net_and_saves_every_output(deploy, tmp_path):
    path, weights, net = deploy
    x = np.random.default_rng(0).normal(size=(5, 1, 10, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert forward.main([str(path), str(weights), str(tmp_path / "x.npy"), "-o", str(out),
                         "--blobs", "pool", "--batch-size", "2", "--quiet"]) == 0
    saved = np.load(out)
    assert sorted(saved.files) == ["pool", "prob"]
    assert saved["prob"].shape == (5, 6) and saved["pool"].shape == (5, 4, 4, 4)
    for i in range(5):                      # the net one input at a time
        net.set_input("data", x[i:i + 1])
        net.forward()
        np.testing.assert_allclose(saved["prob"][i], net.blob("prob")[0], rtol=1e-5, atol=1e-7)


def test_forward_top_k_with_labels(deploy, tmp_path, capsys):
    path, weights, _ = deploy
    np.save(tmp_path / "x.npy", np.ones((1, 10, 10), np.float32))   # C,H,W: one input
    (tmp_path / "labels.txt").write_text("\n".join(f"person{i}" for i in range(6)) + "\n")
    out = tmp_path / "o.npz"
    assert forward.main([str(path), str(weights), str(tmp_path / "x.npy"), "-o", str(out),
                         "--top-k", "3", "--labels", str(tmp_path / "labels.txt"), "--quiet"]) == 0
    prob = np.load(out)["prob"][0]
    best = np.argsort(-prob)[:3]
    line = capsys.readouterr().out.strip()
    assert line == "x.npy[0]: " + ", ".join(f"person{c} ({prob[c]:.4f})" for c in best) \
        or line.endswith(", ".join(f"person{c} ({prob[c]:.4f})" for c in best))


def test_forward_images_get_the_nets_transform(deploy, tmp_path):
    path, weights, net = deploy
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (10, 10), dtype=np.uint8) for _ in range(2)]
    for i, img in enumerate(images):
        cv2.imwrite(str(tmp_path / f"face{i}.png"), img)
    mean = caffe_pb2.BlobProto(num=1, channels=1, height=10, width=10)
    mean.data.extend(np.full(100, 100.0, np.float32))
    prototxt.write_binary(mean, tmp_path / "mean.binaryproto")
    train_val = tmp_path / "train_val.prototxt"
    train_val.write_text(f"""
layer {{ name: "data" type: "Data" top: "data" include {{ phase: TEST }}
  transform_param {{ scale: 0.0078125 mean_file: "{tmp_path / 'mean.binaryproto'}" }}
  data_param {{ source: "x" batch_size: 1 }} }}""")
    out = tmp_path / "o.npz"
    files = [str(tmp_path / f"face{i}.png") for i in range(2)]
    assert forward.main([str(path), str(weights), *files, "-o", str(out), "--transform-from",
                         str(train_val), "--quiet"]) == 0
    prob = np.load(out)["prob"]
    for i, img in enumerate(images):       # 10x10 images are used as they are
        net.set_input("data", ((img.astype(np.float32) - 100) * 0.0078125)[None, None])
        net.forward()
        np.testing.assert_allclose(prob[i], net.blob("prob")[0], rtol=1e-5, atol=1e-7)
    rc, _, err = run_tool("forward", path, weights, *files, "-o", out)
    assert rc == 2 and "transform" in err and err.count("\n") == 1


def test_forward_bad_inputs_are_one_line_exit_2(deploy, tmp_path):
    path, weights, _ = deploy
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 10, 10), np.float32))
    rc, _, err = run_tool("forward", path, weights, tmp_path / "bad.npy", "-o", tmp_path / "o.npz")
    assert rc == 2 and "(N, 1, 10, 10)" in err and "Traceback" not in err
    other = tmp_path / "other.prototxt"
    other.write_text(DEPLOY.replace("num_output: 6", "num_output: 7"))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 10, 10), np.float32))
    rc, _, err = run_tool("forward", other, weights, tmp_path / "x.npy", "-o", tmp_path / "o.npz")
    error = [l for l in err.splitlines() if "error" in l]
    assert rc == 2 and len(error) == 1
    assert "layer 'fc'" in error[0] and "6 64 (384)" in error[0] and "7 64 (448)" in error[0]
    assert not (tmp_path / "o.npz").exists()
