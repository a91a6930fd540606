""".caffemodel and mean.binaryproto I/O: round trips, legacy blob forms, weight
loading checks, and OpenCV's dnn module as an independent reader of our files."""
import numpy as np
import pytest
import torch

from bnface_caffe.formats import prototxt
from bnface_caffe.engine import Net
from bnface_caffe.formats import caffemodel
from bnface_caffe.formats.upgrade import upgrade_net
from bnface_caffe.formats.blobproto import proto_shape, proto_to_array, read_mean_file
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log, messages, net_param

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST

NET = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "msra" }
  bias_filler { type: "gaussian" } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE kernel_size: 6 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } bias_filler { type: "gaussian" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def quiet_net(text_or_param, phase=TEST, **kw):
    logger, buffer = captured_log()
    param = net_param(text_or_param) if isinstance(text_or_param, str) else text_or_param
    return Net(param, phase=phase, logger=logger, **kw), buffer


def trained_small_net():
    torch.manual_seed(0)
    net, _ = quiet_net(NET, TRAIN)
    for _ in range(3):   # non-trivial BatchNorm statistics: blob2 = 1 + 0.999 + 0.999^2
        net.set_input("data", torch.randn(2, 1, 8, 8) * 2 + 1)
        net.forward()
    return net


def test_round_trip_is_lossless_and_batchnorm_blobs_are_caffes(tmp_path):
    net = trained_small_net()
    path = tmp_path / "w.caffemodel"
    caffemodel.write(net.to_proto(), path)
    proto = upgrade_net(caffemodel.read(str(path)))
    assert proto.name == "small"
    assert [l.name for l in proto.layer] == [n.layer.name for n in net.nodes]
    for layer, node in zip(proto.layer, net.nodes):
        assert len(layer.blobs) == len(node.layer.blobs)
        for blob, tensor in zip(layer.blobs, node.layer.blobs):
            assert proto_shape(blob) == tuple(tensor.shape)
            assert np.array_equal(proto_to_array(blob), tensor.detach().numpy())
    bn = {l.name: l for l in proto.layer}["bn"]
    assert proto_to_array(bn.blobs[2])[0] == pytest.approx(1 + 0.999 + 0.999 ** 2)
    assert [p.lr_mult for p in bn.param] == [0, 0, 0]
    # load into a fresh TEST net: identical outputs
    fresh, _ = quiet_net(NET, TEST)
    fresh.copy_trained_layers_from(proto)
    again, _ = quiet_net(NET, TEST)
    again.copy_trained_layers_from_file(str(path))
    x = torch.randn(2, 1, 8, 8)
    outs = []
    for n in (fresh, again):
        n.set_input("data", x)
        n.forward()
        outs.append(n.blob("prob"))
    assert np.array_equal(outs[0], outs[1])
    # the written bytes are a plain NetParameter any protobuf reader takes
    plain = caffe_pb2.NetParameter.FromString(path.read_bytes())
    assert plain.layer[1].blobs[0].shape.dim == [4, 1, 3, 3]


def test_legacy_4d_shapes_and_double_data_are_read():
    net, buffer = quiet_net(NET)
    src = caffe_pb2.NetParameter()
    fc = src.layer.add(name="fc", type="InnerProduct")
    w = fc.blobs.add(num=1, channels=1, height=3, width=4)      # old [N, K] as 1 1 N K
    w.double_data.extend(np.arange(12, dtype=np.float64) / 7)
    b = fc.blobs.add(num=1, channels=1, height=1, width=3)
    b.data.extend([0.5, -1.0, 2.0])
    src.layer.add(name="gone", type="ReLU")
    net.copy_trained_layers_from(src, "old.caffemodel")
    fc_blobs = [n for n in net.nodes if n.layer.name == "fc"][0].layer.blobs
    assert np.allclose(fc_blobs[0].detach().numpy(), (np.arange(12) / 7).reshape(3, 4))
    assert fc_blobs[1].tolist() == [0.5, -1.0, 2.0]
    assert "Ignoring source layer gone" in messages(buffer)


def test_v1_caffemodel_is_upgraded_on_load():
    src = caffe_pb2.NetParameter()
    old = src.layers.add(name="fc", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    w = old.blobs.add(num=1, channels=1, height=3, width=4)
    w.data.extend(np.ones(12, np.float32))
    old.blobs.add(num=1, channels=1, height=1, width=3).data.extend([1, 2, 3])
    net, buffer = quiet_net(NET)
    net.copy_trained_layers_from(src, "v1.caffemodel")
    fc = [n for n in net.nodes if n.layer.name == "fc"][0].layer
    assert fc.blobs[1].tolist() == [1, 2, 3]
    assert any("deprecated V1LayerParameter: v1.caffemodel" in m for m in messages(buffer))


def test_shape_and_count_mismatches_name_the_layer_and_both_shapes(tmp_path):
    net = trained_small_net()
    path = tmp_path / "w.caffemodel"
    caffemodel.write(net.to_proto(), path)
    other = NET.replace("num_output: 3", "num_output: 5")
    target, _ = quiet_net(other)
    before = [b.clone() for b in target.nodes[1].layer.blobs]
    with pytest.raises(UserError) as err:
        target.copy_trained_layers_from_file(str(path))
    message = str(err.value)
    assert "layer 'fc'" in message and "3 4 (12)" in message and "5 4 (20)" in message
    assert str(path) in message and "\n" not in message
    # nothing was copied before the check failed
    assert all(torch.equal(a, b) for a, b in zip(before, target.nodes[1].layer.blobs))
    no_bias = NET.replace("num_output: 3 weight_filler", "num_output: 3 bias_term: false weight_filler")
    target, _ = quiet_net(no_bias)
    with pytest.raises(UserError, match="layer 'fc' holds 2 blob.*has 1"):
        target.copy_trained_layers_from_file(str(path))
    with pytest.raises(UserError, match="not a binary caffe.NetParameter"):
        (tmp_path / "junk.caffemodel").write_bytes(b"\xff\xff\xff garbage")
        target.copy_trained_layers_from_file(str(tmp_path / "junk.caffemodel"))
    with pytest.raises(UserError, match="missing.caffemodel.h5"):   # HDF5 ones: test_formats_hdf5
        target.copy_trained_layers_from_file(str(tmp_path / "missing.caffemodel.h5"))


def test_mean_binaryproto_legacy_and_new_shapes(tmp_path):
    legacy = caffe_pb2.BlobProto(num=1, channels=1, height=2, width=3)
    legacy.data.extend([1, 2, 3, 4, 5, 6])
    prototxt.write_binary(legacy, tmp_path / "mean.binaryproto")
    mean = read_mean_file(str(tmp_path / "mean.binaryproto"))
    assert mean.shape == (1, 2, 3) and mean.dtype == np.float32
    assert mean.ravel().tolist() == [1, 2, 3, 4, 5, 6]
    new = caffe_pb2.BlobProto()
    new.shape.dim.extend([1, 2, 1, 2])
    new.data.extend([0.5, 1.5, 2.5, 3.5])
    prototxt.write_binary(new, tmp_path / "m2.binaryproto")
    assert read_mean_file(str(tmp_path / "m2.binaryproto")).shape == (2, 1, 2)
    bad = caffe_pb2.BlobProto(num=1, channels=1, height=2, width=3)
    bad.data.extend([1, 2])
    prototxt.write_binary(bad, tmp_path / "bad.binaryproto")
    with pytest.raises(UserError, match="bad.binaryproto"):
        read_mean_file(str(tmp_path / "bad.binaryproto"))


@pytest.mark.parametrize("bn", [False, True])
def test_opencv_dnn_reads_our_caffemodel_of_the_papers_deploy_nets(bn, tmp_path):
    cv2 = pytest.importorskip("cv2")
    from bnface_caffe.architectures import NetOptions, build_net
    deploy = build_net(NetOptions(bn=bn, deploy=True, num_classes=1000))
    deploy_path = tmp_path / "deploy.prototxt"
    prototxt.write_text(deploy, deploy_path)
    torch.manual_seed(0)
    net, _ = quiet_net(deploy, TEST)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for node in net.nodes:
            layer = node.layer
            if layer.type == "BatchNorm":
                c = layer.blobs[0].shape[0]
                factor = 37.25                      # as if after ~40 training forwards
                layer.blobs[0].copy_(torch.randn(c, generator=g) * 0.3 * factor)
                layer.blobs[1].copy_((torch.rand(c, generator=g) * 2 + 0.2) * factor)
                layer.blobs[2].fill_(factor)
            elif layer.type == "Scale":
                for blob in layer.blobs:
                    blob.copy_(1 + 0.2 * torch.randn(blob.shape, generator=g))
            elif layer.blobs:
                w = layer.blobs[0]
                w.copy_(torch.randn(w.shape, generator=g) * (2.0 / (w.numel() / w.shape[0])) ** 0.5)
                if len(layer.blobs) > 1:
                    layer.blobs[1].copy_(0.1 * torch.randn(layer.blobs[1].shape, generator=g))
    model_path = tmp_path / "random.caffemodel"
    caffemodel.write(net.to_proto(), model_path)
    x = np.random.default_rng(2).uniform(-1, 1, (4, 1, 50, 50)).astype(np.float32)
    net.reshape({"data": x.shape})
    net.set_input("data", x)
    net.forward()
    ours = net.blob("prob")
    reader = cv2.dnn.readNetFromCaffe(str(deploy_path), str(model_path))
    reader.setInput(x)
    theirs = reader.forward("prob").reshape(ours.shape)
    assert ours.max() > 5 / 1000                   # far from uniform: the test has teeth
    assert np.abs(ours - theirs).max() <= 1e-4
    assert (ours.argmax(1) == theirs.argmax(1)).all()
