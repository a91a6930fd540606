"""NetSpec / layers / params / to_proto against hand-written prototxt (compared as parsed
NetParameters)."""
import pytest
from google.protobuf import text_format

from bnface_caffe.proto import caffe_pb2
from bnface_caffe.pycaffe import NetSpec, layers as L, params as P, to_proto


def parsed(text):
    return text_format.Parse(text, caffe_pb2.NetParameter())


def assert_net(net, text):
    expected = parsed(text)
    assert net == expected, text_format.MessageToString(net)


def test_lenet_style_spec():
    n = NetSpec()
    n.data, n.label = L.Data(batch_size=64, backend=P.Data.LMDB, source="train_lmdb",
                             transform_param=dict(scale=0.5), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type="xavier"))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.fc1 = L.InnerProduct(n.pool1, num_output=10)
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.loss = L.SoftmaxWithLoss(n.relu1, n.label)
    assert_net(n.to_proto(), """
      layer { name: "data" type: "Data" top: "data" top: "label"
              transform_param { scale: 0.5 }
              data_param { source: "train_lmdb" batch_size: 64 backend: LMDB } }
      layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
              convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
      layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
              pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
      layer { name: "fc1" type: "InnerProduct" bottom: "pool1" top: "fc1"
              inner_product_param { num_output: 10 } }
      layer { name: "relu1" type: "ReLU" bottom: "fc1" top: "fc1" }
      layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc1" bottom: "label" top: "loss" }
    """)


def test_layer_fields_repeated_messages_include_and_loss_weight():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]), include=[dict(phase=caffe_pb2.TRAIN, stage=["a"]),
                                                      dict(phase=caffe_pb2.TEST, min_level=1)])
    n.ip = L.InnerProduct(n.data, num_output=2,
                          param=[dict(lr_mult=1), dict(lr_mult=2, decay_mult=0)],
                          bias_filler=dict(type="constant", value=0.1), propagate_down=True)
    n.loss = L.EuclideanLoss(n.ip, n.data, loss_weight=0.5, exclude=dict(not_stage="deploy"))
    n.py = L.Python(n.ip, module="layers", layer="Double", param_str="{'k': 2}")
    assert_net(n.to_proto(), """
      layer { name: "data" type: "Input" top: "data"
              include { phase: TRAIN stage: "a" } include { phase: TEST min_level: 1 }
              input_param { shape { dim: 2 dim: 3 } } }
      layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
              param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 } propagate_down: true
              inner_product_param { num_output: 2 bias_filler { type: "constant" value: 0.1 } } }
      layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "data" top: "loss"
              loss_weight: 0.5 exclude { not_stage: "deploy" } }
      layer { name: "py" type: "Python" bottom: "ip" top: "py"
              python_param { module: "layers" layer: "Double" param_str: "{'k': 2}" } }
    """)


def test_automatic_names_count_per_type_and_follow_the_first_top():
    data = L.Input(shape=dict(dim=[1, 1, 4, 4]))
    a = L.Convolution(data, num_output=1, kernel_size=[3, 1], pad_h=1)
    b = L.ReLU(a, in_place=True)            # in place: named ReLU1, writes a's blob
    c = L.Convolution(b, num_output=1, kernel_size=1)
    d = L.Eltwise(c, a, operation=P.Eltwise.SUM, coeff=[1, -1])
    assert_net(to_proto(d), """
      layer { name: "Input1" type: "Input" top: "Input1"
              input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
      layer { name: "Convolution1" type: "Convolution" bottom: "Input1" top: "Convolution1"
              convolution_param { num_output: 1 kernel_size: 3 kernel_size: 1 pad_h: 1 } }
      layer { name: "ReLU1" type: "ReLU" bottom: "Convolution1" top: "Convolution1" }
      layer { name: "Convolution2" type: "Convolution" bottom: "Convolution1" top: "Convolution2"
              convolution_param { num_output: 1 kernel_size: 1 } }
      layer { name: "Eltwise1" type: "Eltwise" bottom: "Convolution2" bottom: "Convolution1"
              top: "Eltwise1" eltwise_param { operation: SUM coeff: 1 coeff: -1 } }
    """)


def test_ntop_several_and_none_and_several_roots():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 6]))
    n.a, n.b, n.c = L.Slice(n.data, slice_param=dict(axis=1, slice_point=[2, 4]), ntop=3)
    n.silence = L.Silence(n.c, ntop=0)       # a layer without tops, named by its attribute
    n.sum = L.Eltwise(n.a, n.b)
    assert_net(n.to_proto(), """
      layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 6 } } }
      layer { name: "a" type: "Slice" bottom: "data" top: "a" top: "b" top: "c"
              slice_param { axis: 1 slice_point: 2 slice_point: 4 } }
      layer { name: "silence" type: "Silence" bottom: "c" }
      layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
    """)
    data, label = L.DummyData(shape=[dict(dim=[2, 3]), dict(dim=[2])], ntop=2)
    ip = L.InnerProduct(data, num_output=2)
    absolute = L.AbsVal(label)
    assert_net(to_proto(ip, absolute), """
      layer { name: "DummyData1" type: "DummyData" top: "DummyData1" top: "DummyData2"
              dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
      layer { name: "InnerProduct1" type: "InnerProduct" bottom: "DummyData1" top: "InnerProduct1"
              inner_product_param { num_output: 2 } }
      layer { name: "AbsVal1" type: "AbsVal" bottom: "DummyData2" top: "AbsVal1" }
    """)


def test_top_to_proto_explicit_name_and_generic_param_keywords():
    x = L.Input(input_param=dict(shape=dict(dim=[3])))
    net = L.BatchNorm(x, batch_norm_param=dict(use_global_stats=True), name="bn",
                      param=[dict(lr_mult=0)] * 3).to_proto()
    assert_net(net, """
      layer { name: "Input1" type: "Input" top: "Input1" input_param { shape { dim: 3 } } }
      layer { name: "bn" type: "BatchNorm" bottom: "Input1" top: "BatchNorm1"
              param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }
              batch_norm_param { use_global_stats: true } }
    """)


def test_netspec_items_and_lookups():
    n = NetSpec()
    n["data"] = L.Input(shape=dict(dim=[1]))
    n["x/y"] = L.AbsVal(n["data"])
    assert n.data is n["data"]
    assert not hasattr(n, "missing")
    with pytest.raises(KeyError):
        n["missing"]
    assert [layer.top[0] for layer in n.to_proto().layer] == ["data", "x/y"]


def test_bad_specs_raise():
    with pytest.raises(TypeError, match="ReLU input 0 is not a Top"):
        L.ReLU("data")
    with pytest.raises(AttributeError):
        to_proto(L.Convolution(L.Input(), bogus_field=3))
    with pytest.raises(AttributeError):
        P.Pooling.NO_SUCH_METHOD
