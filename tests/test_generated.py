"""Committed prototxt/ and solvers/ are fresh, round-trip, and are read by OpenCV's Caffe importer."""
import os

import cv2
import numpy as np
import pytest

from bnface_caffe import generated
from bnface_caffe.formats import prototxt
from bnface_caffe.architectures import NetOptions, build_net
from bnface_caffe.proto import caffe_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_committed_generated_files_are_fresh():
    assert generated.stale(ROOT) == [], "run `make nets solvers`"


@pytest.mark.parametrize("path", list(generated.NETS) + list(generated.SOLVERS))
def test_generated_files_round_trip_through_text_format(path):
    kind = caffe_pb2.SolverParameter if path.startswith("solvers/") else caffe_pb2.NetParameter
    msg = prototxt.read_text(os.path.join(ROOT, path), kind)
    again = prototxt.parse_text(prototxt.format_text(msg), kind)
    assert again == msg and msg.ByteSize() > 0


def test_solvers_name_nets_that_exist_relative_to_the_repo_root():
    for path in generated.SOLVERS:
        solver = prototxt.read_text(os.path.join(ROOT, path), caffe_pb2.SolverParameter)
        assert os.path.exists(os.path.join(ROOT, solver.net)), solver.net


def random_caffemodel(net, seed=0):
    """Weights for every learnable layer, shaped from the prototxt by hand (independent of the engine)."""
    rng = np.random.default_rng(seed)
    channels, model = {}, caffe_pb2.NetParameter(name=net.name)
    for layer in net.layer:
        out = model.layer.add(name=layer.name, type=layer.type)
        c = channels.get(layer.bottom[0]) if layer.bottom else None
        shapes = []
        if layer.type == "Input":
            c = layer.input_param.shape[0].dim[1]
        elif layer.type == "Convolution":
            p = layer.convolution_param
            shapes = [(p.num_output, c, 3, 3)] + ([(p.num_output,)] if p.bias_term else [])
            c = p.num_output
        elif layer.type == "BatchNorm":
            shapes = [(c,), (c,), (1,)]
        elif layer.type == "Scale":
            shapes = [(c,), (c,)]
        elif layer.type == "InnerProduct":
            p = layer.inner_product_param
            shapes, c = [(p.num_output, c), (p.num_output,)], p.num_output
        for shape in shapes:
            blob = out.blobs.add()
            blob.shape.dim.extend(shape)
            values = rng.normal(0, 0.1, size=shape).astype(np.float32)
            if layer.type == "BatchNorm":  # sums and a positive scale factor, variance > 0
                values = np.abs(values) + (2.0 if len(out.blobs) == 3 else 0.1)
            blob.data.extend(values.ravel().tolist())
        for top in layer.top:
            channels[top] = c
    return model


@pytest.mark.parametrize("bn", [False, True])
def test_opencv_reads_the_deploy_nets_with_caffe_shapes(tmp_path, bn):
    net = build_net(NetOptions(bn=bn, deploy=True, num_classes=10))
    proto, weights = tmp_path / "deploy.prototxt", tmp_path / "w.caffemodel"
    prototxt.write_text(net, str(proto))
    prototxt.write_binary(random_caffemodel(net), str(weights))
    cv_net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
    cv_net.setInput(np.random.default_rng(1).uniform(0, 1, (1, 1, 50, 50)).astype(np.float32))
    pools = cv_net.forward(["pool1", "pool2", "pool3", "pool4", "prob"])
    assert [p.shape for p in pools[:4]] == [(1, 64, 25, 25), (1, 128, 13, 13), (1, 192, 7, 7), (1, 320, 1, 1)]
    prob = pools[4].reshape(-1)
    assert prob.shape == (10,) and abs(prob.sum() - 1) < 1e-5
