"""The paper's nets: layer structure and Caffe's ceil-mode shape arithmetic."""
import pytest

from bnface_caffe.architectures import NetOptions, build_net, parse_widths, spatial_sizes
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from bnface_caffe.shapes import conv_output_size, pool_output_size


def test_spatial_sizes_50_25_13_7_1():
    assert spatial_sizes(50) == [50, 25, 13, 7, 1]
    with pytest.raises(UserError, match="6x6 before the 7x7"):
        spatial_sizes(48)
    with pytest.raises(UserError, match="not 1x1"):
        spatial_sizes(60)


def shapes(net, input_size=50):
    """Walk the net with Caffe's formulas: top name -> (C, H, W) for the spatial layers."""
    blobs = {"data": (1, input_size, input_size)}
    for layer in net.layer:
        if layer.type == "Convolution":
            c, h, w = blobs[layer.bottom[0]]
            p = layer.convolution_param
            k, s, pad = p.kernel_size[0], p.stride[0], p.pad[0]
            blobs[layer.top[0]] = (p.num_output, conv_output_size(h, k, s, pad), conv_output_size(w, k, s, pad))
        elif layer.type == "Pooling":
            c, h, w = blobs[layer.bottom[0]]
            p = layer.pooling_param
            blobs[layer.top[0]] = (c, pool_output_size(h, p.kernel_size, p.stride), pool_output_size(w, p.kernel_size, p.stride))
    return blobs


def types(net):
    return [l.type for l in net.layer]


def test_baseline_net_structure_and_shapes():
    net = build_net(NetOptions())
    convs = [l for l in net.layer if l.type == "Convolution"]
    assert len(convs) == 8
    assert all(c.convolution_param.kernel_size == [3] and c.convolution_param.pad == [1] for c in convs)
    assert [c.convolution_param.num_output for c in convs] == [32, 64, 64, 128, 96, 192, 160, 320]
    assert types(net).count("ReLU") == 8 and "BatchNorm" not in types(net)
    s = shapes(net)
    assert [s[f"pool{i}"] for i in range(1, 5)] == [(64, 25, 25), (128, 13, 13), (192, 7, 7), (320, 1, 1)]
    pools = [l.pooling_param for l in net.layer if l.type == "Pooling"]
    assert [p.pool for p in pools] == [caffe_pb2.PoolingParameter.MAX] * 3 + [caffe_pb2.PoolingParameter.AVE]
    drop = next(l for l in net.layer if l.type == "Dropout")
    assert abs(drop.dropout_param.dropout_ratio - 0.5) < 1e-7 and drop.bottom == ["pool4"]
    fc = next(l for l in net.layer if l.type == "InnerProduct")
    assert fc.inner_product_param.num_output == 14700 and fc.bottom == ["pool4"]


def test_bn_net_structure_and_shapes():
    net = build_net(NetOptions(bn=True))
    t = types(net)
    assert t.count("Convolution") == 7 and t.count("BatchNorm") == 4 and t.count("Scale") == 4
    assert "Dropout" not in t
    body = [l.name for l in net.layer if l.type not in ("Data",)][:8]
    assert body == ["conv1_1", "bn1_1", "scale1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2"]
    names = [l.name for l in net.layer]
    block2 = names[names.index("conv2"):][:5]
    assert block2 == ["conv2", "bn2", "scale2", "relu2", "pool2"]
    s = shapes(net)
    assert s["conv2"] == (128, 25, 25) and s["pool4"] == (320, 1, 1)
    for layer in net.layer:
        if layer.type == "BatchNorm":
            assert len(layer.param) == 3 and all(p.lr_mult == 0 and p.decay_mult == 0 for p in layer.param)
            assert layer.top == layer.bottom  # in place
        if layer.type == "Scale":
            assert layer.scale_param.bias_term


def test_train_val_data_layers_are_lmdb_with_phases_mean_and_scale():
    net = build_net(NetOptions(bn=True, batch_size=32, test_batch_size=50, mirror=True))
    data = [l for l in net.layer if l.type == "Data"]
    assert [l.include[0].phase for l in data] == [caffe_pb2.TRAIN, caffe_pb2.TEST]
    assert all(l.data_param.backend == caffe_pb2.DataParameter.LMDB for l in data)
    assert [l.data_param.batch_size for l in data] == [32, 50]
    assert [l.data_param.source for l in data] == ["data/lmdb/train_lmdb", "data/lmdb/test_lmdb"]
    assert all(l.transform_param.mean_file == "data/lmdb/mean.binaryproto" for l in data)
    assert abs(data[0].transform_param.scale - 1 / 256) < 1e-9
    assert data[0].transform_param.mirror and not data[1].transform_param.mirror
    acc = [l for l in net.layer if l.type == "Accuracy"]
    assert [(a.name, a.accuracy_param.top_k, a.include[0].phase) for a in acc] == \
        [("accuracy", 1, caffe_pb2.TEST), ("accuracy_top5", 5, caffe_pb2.TEST)]
    mv = build_net(NetOptions(mean_value=120.5))
    assert all(list(l.transform_param.mean_value) == [120.5] and not l.transform_param.mean_file
               for l in mv.layer if l.type == "Data")


def test_deploy_has_input_and_prob_only():
    net = build_net(NetOptions(deploy=True, num_classes=10))
    assert net.layer[0].type == "Input" and list(net.layer[0].input_param.shape[0].dim) == [1, 1, 50, 50]
    assert net.layer[-1].type == "Softmax" and net.layer[-1].top == ["prob"]
    assert not {"Data", "SoftmaxWithLoss", "Accuracy"} & set(types(net))


def test_options_widths_filler_dropout():
    net = build_net(NetOptions(widths=parse_widths("8,16,16,32,24,48,40,80"), filler="msra", dropout=0))
    assert "Dropout" not in types(net)
    convs = [l.convolution_param for l in net.layer if l.type == "Convolution"]
    assert convs[-1].num_output == 80 and all(c.weight_filler.type == "msra" for c in convs)
    bn = build_net(NetOptions(bn=True, dropout=0.3))
    assert "Dropout" in types(bn)


def test_block2_convs_restores_or_removes_block_2s_second_convolution():
    # The study's ablation: the BN net with the baseline's two block-2 convolutions.
    bn2 = build_net(NetOptions(bn=True, block2_convs=2))
    names = [l.name for l in bn2.layer]
    assert names[names.index("pool1") + 1:names.index("pool2") + 1] == [
        "conv2_1", "bn2_1", "scale2_1", "relu2_1", "conv2_2", "relu2_2", "pool2"]
    assert types(bn2).count("Convolution") == 8 and types(bn2).count("BatchNorm") == 4
    s = shapes(bn2)
    assert s["conv2_1"] == (64, 25, 25) and s["conv2_2"] == (128, 25, 25)   # widths 3 and 4
    assert s["pool2"] == (128, 13, 13) and s["pool4"] == (320, 1, 1)
    conv = {l.name: l.convolution_param for l in bn2.layer if l.type == "Convolution"}
    assert not conv["conv2_1"].bias_term and conv["conv2_2"].bias_term  # BN follows only 2_1
    # and the other way: the baseline with the BN net's single block-2 convolution
    base1 = build_net(NetOptions(block2_convs=1))
    assert [l.name for l in base1.layer if l.type == "Convolution"][2] == "conv2"
    assert shapes(base1)["conv2"] == (128, 25, 25) and "BatchNorm" not in types(base1)
    # the defaults are the paper's nets
    assert types(build_net(NetOptions(bn=True, block2_convs=1))) == types(build_net(NetOptions(bn=True)))
    assert types(build_net(NetOptions(block2_convs=2))) == types(build_net(NetOptions()))
    with pytest.raises(UserError, match="block2-convs must be 1 or 2, got 3"):
        build_net(NetOptions(bn=True, block2_convs=3))


@pytest.mark.parametrize("text, message", [
    ("32,64,64,128", "needs 8 conv widths"), ("32,64,64,128,96,192,160,0", "positive"),
    ("a,b", "comma-separated integers")])
def test_bad_widths(text, message):
    with pytest.raises(UserError, match=message):
        parse_widths(text)
