"""tools/forward.py: the mistake a user made is the one reported (in the order they would look
for it), --labels/--top-k are checked, weights that copy nothing are refused, and the tool is
quiet by default (Caffe's set-up lines with -v). In-process through cli.run, as the wrappers."""
import os

import cv2
import numpy as np
import pytest
import torch

from bnface_caffe.cli import forward, run
from bnface_caffe.engine import Net
from bnface_caffe.formats import caffemodel
from bnface_caffe.formats.glog import Glog
from bnface_caffe.proto import caffe_pb2
from engine_util import net_param
from test_engine_cli import DEPLOY

TRAIN_VAL = """
name: "cli"
layer { name: "data" type: "Data" top: "data" top: "label"
  data_param { source: "lmdb" batch_size: 4 backend: LMDB } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 6 } }
"""


def call(argv, capsys):
    with pytest.raises(SystemExit) as done:
        run(forward.main, [str(a) for a in argv])
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def one_line_error(status, err, *fragments):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def files(tmp_path):
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(DEPLOY)
    torch.manual_seed(0)
    net = Net(net_param(DEPLOY), phase=caffe_pb2.TEST, logger=Glog(stderr=False))
    weights = tmp_path / "w.caffemodel"
    caffemodel.write(net.to_proto(), weights)
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((10, 10), 128, np.uint8))
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 10, 10), np.float32))
    return tmp_path, deploy, weights, image


def test_the_real_mistake_comes_before_the_missing_transform(files, capsys):
    folder, deploy, weights, image = files
    out = folder / "o.npz"
    empty = folder / "empty.caffemodel"
    empty.write_bytes(b"")
    bare = folder / "bare.caffemodel"
    bare.write_bytes(caffe_pb2.NetParameter(layer=[caffe_pb2.LayerParameter(name="fc")])
                     .SerializeToString())
    train_val = folder / "train_val.prototxt"
    train_val.write_text(TRAIN_VAL)
    # none of these give --transform-from; each must name its own problem
    cases = [([deploy, weights, folder / "absent.png"], ["absent.png: no such file"]),
             ([deploy, empty, image], ["empty.caffemodel: the file is empty (0 bytes)"]),
             ([deploy, bare, image], ["bare.caffemodel: holds 1 layer(s) but no weights"]),
             ([train_val, weights, image], ["this is a train_val net", "data layers (data)"]),
             ([deploy, folder / "absent.caffemodel", image], ["absent.caffemodel: no such file"])]
    for argv, fragments in cases:
        status, _, err = call(argv + ["-o", out], capsys)
        one_line_error(status, err, *fragments)
        assert "transform" not in err
    # with every file right, the transform is what is missing
    status, _, err = call([deploy, weights, image, "-o", out], capsys)
    one_line_error(status, err, "image inputs need the net's transform")
    assert not out.exists()


def test_weights_that_copy_no_layer_name_both_sides(files, capsys):
    folder, deploy, weights, _ = files
    renamed = caffemodel.read(str(weights))
    for layer in renamed.layer:
        layer.name = "old_" + layer.name
    other = folder / "other.caffemodel"
    caffemodel.write(renamed, other)
    status, _, err = call([deploy, other, folder / "x.npy", "-o", folder / "o.npz"], capsys)
    one_line_error(status, err, "copies no weights into this net",
                   "the net's layers with weights are conv, fc", "the file's are old_conv, old_fc")
    assert not (folder / "o.npz").exists()


def test_a_partial_copy_logs_the_ignored_layers(files, capsys):
    folder, deploy, weights, _ = files
    partial = caffemodel.read(str(weights))
    partial.layer[-1].name = "extra"   # the file's last layer is not in the net
    path = folder / "partial.caffemodel"
    caffemodel.write(partial, path)
    status, _, err = call([deploy, path, folder / "x.npy", "-o", folder / "o.npz", "-v"], capsys)
    assert status == 0 and "Ignoring source layer extra" in err


def test_top_k_and_labels_are_checked(files, capsys):
    folder, deploy, weights, _ = files
    out = folder / "o.npz"
    x = folder / "x.npy"
    labels = folder / "labels.txt"
    labels.write_text("".join(f"person{i}\n" for i in range(5)))   # the net has 6 classes
    status, _, err = call([deploy, weights, x, "-o", out, "--top-k", "3", "--labels", labels], capsys)
    one_line_error(status, err, "5 names for the net's 6 classes")
    status, _, err = call([deploy, weights, x, "-o", out, "--top-k", "0"], capsys)
    one_line_error(status, err, "--top-k must be at least 1")
    status, _, err = call([deploy, weights, x, "-o", out, "--labels", labels], capsys)
    one_line_error(status, err, "give --top-k K too")
    assert not out.exists()
    labels.write_text("".join(f"person{i}\n" for i in range(6)))
    status, stdout, _ = call([deploy, weights, x, "-o", out, "--top-k", "2", "--labels", labels],
                             capsys)
    assert status == 0 and len(stdout.splitlines()) == 2 and "person" in stdout


def test_quiet_by_default_set_up_lines_with_verbose(files, capsys, monkeypatch):
    for name in ("GLOG_logtostderr", "GLOG_minloglevel", "GLOG_log_dir"):
        monkeypatch.delenv(name, raising=False)
    folder, deploy, weights, _ = files
    argv = [deploy, weights, folder / "x.npy", "-o", folder / "o.npz"]
    status, stdout, err = call(argv, capsys)
    assert status == 0 and err == "" and stdout == ""
    status, _, err = call(argv + ["--verbose"], capsys)
    assert status == 0 and "Top shape: 1 4 8 8 (256)" in err and "Use CPU." in err
    # glog's own file still gets every line
    logs = folder / "glog"
    monkeypatch.setenv("GLOG_log_dir", str(logs))
    status, _, err = call(argv, capsys)
    (info,) = [f for f in os.listdir(logs) if ".log.INFO." in f]
    assert status == 0 and err == "" and "Top shape: 1 4 8 8 (256)" in (logs / info).read_text()
