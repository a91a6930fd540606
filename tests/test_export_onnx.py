"""ONNX export: onnxruntime against the engine for both paper nets and every supported
layer type, Caffe's pooling shapes and divisors, dynamic batch, and one-line refusals."""
import numpy as np
import onnx
import pytest
from conftest import assert_one_line_error, run_tool
from engine_util import net_param
from net_fixtures import paper_deploy, randomise

from bnface_caffe.engine import Net
from bnface_caffe.export import onnx_check, onnx_graph
from bnface_caffe.export.onnx_layers import pooling_plan
from bnface_caffe.formats.glog import Glog
from bnface_caffe.proto import caffe_pb2


def max_error(net, model, batches, outputs=None, seed=0):
    """Largest |onnxruntime - engine| over the outputs, relative to max(1, max |engine|)."""
    sess = onnx_check.session(model.SerializeToString())
    names = outputs or [o.name for o in model.graph.output]
    worst = 0.0
    for n in batches:
        result = onnx_check.compare(sess, net, onnx_check.random_inputs(net, n, seed + n), names)
        for diff, scale in result.values():
            worst = max(worst, diff / max(1.0, scale))
    return worst


def exported(text, seed=0, outputs=None, dynamic=True):
    net = Net(net_param(text), phase=caffe_pb2.TEST, logger=Glog(stderr=False))
    randomise(net, seed)
    model, is_dynamic = onnx_graph.export(net, "test.prototxt", outputs, dynamic)
    return net, model, is_dynamic


@pytest.mark.parametrize("bn", [False, True])
def test_paper_nets_match_the_engine_with_a_dynamic_batch(tmp_path, bn):
    _, _, net = paper_deploy(tmp_path, bn=bn, num_classes=7)
    model, dynamic = onnx_graph.export(net, "deploy", ["pool4", "prob"])
    assert dynamic
    assert [d.dim_param or d.dim_value for d in
            model.graph.input[0].type.tensor_type.shape.dim] == ["N", 1, 50, 50]
    assert max_error(net, model, batches=(1, 4)) <= 1e-5
    ops = [n.op_type for n in model.graph.node]
    if bn:   # BatchNorm + its in-place Scale: one node; no Dropout node anywhere
        assert ops.count("BatchNormalization") == 4 and "Mul" not in ops
    assert ops.count("Conv") == (7 if bn else 8)
    assert "Dropout" not in ops and "Identity" not in ops


def test_ceil_mode_shapes_50_25_13_7_1_are_kept(tmp_path):
    _, _, net = paper_deploy(tmp_path, bn=True)
    model, _ = onnx_graph.export(net, "deploy", ["pool1", "pool2", "pool3", "pool4"])
    sess = onnx_check.session(model.SerializeToString())
    x = np.zeros((2, 1, 50, 50), np.float32)
    shapes = [o.shape for o in sess.run(None, {"data": x})]
    assert [s[2:] for s in shapes] == [(25, 25), (13, 13), (7, 7), (1, 1)]
    inferred = onnx.shape_inference.infer_shapes(model)
    dims = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim][2:]
            for o in inferred.graph.output}
    assert dims == {"pool1": [25, 25], "pool2": [13, 13], "pool3": [7, 7], "pool4": [1, 1]}


def test_pooling_plan_follows_caffes_windows():
    # H=6, k=3, s=2, pad 1: ceil(5/2)+1 = 4 windows starting at -1, 1, 3, 5; they end at
    # min(start+3, H+pad=7): sizes 3, 3, 3, 2 (the last one is cut at the padded border)
    assert pooling_plan(6, 3, 2, 1, 4) == (1, 2, [3, 3, 3, 2])
    # 13 -> 7 with 2x2/2, no pad: the 7th window starts at 12 and reaches past H + pad = 13,
    # so one cell is padded on and AVE divides that window by 1
    assert pooling_plan(13, 2, 2, 0, 7) == (0, 1, [2] * 6 + [1])
    assert pooling_plan(8, 2, 2, 0, 4) == (0, 0, [2] * 4)


INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { %s } } }\n'


def dims(*d):
    return " ".join(f"dim: {x}" for x in d)


LAYER_NETS = {
    "conv_group_dilation": INPUT % dims(1, 4, 11, 9) + """
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {
  num_output: 6 group: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 2 pad_w: 1
  dilation: 2 } }
layer { name: "c2" type: "Convolution" bottom: "c" top: "c2" convolution_param {
  num_output: 3 kernel_size: 1 bias_term: false } }""",
    "deconv": INPUT % dims(1, 2, 5, 5) + """
layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" convolution_param {
  num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1 } }""",
    "pooling": INPUT % dims(1, 3, 13, 11) + """
layer { name: "m" type: "Pooling" bottom: "data" top: "m" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "a" type: "Pooling" bottom: "data" top: "a" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "a2" type: "Pooling" bottom: "data" top: "a2" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "a3" type: "Pooling" bottom: "data" top: "a3" pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 3 stride_w: 2 pad_h: 1 pad_w: 1 } }
layer { name: "m2" type: "Pooling" bottom: "data" top: "m2" pooling_param { pool: MAX kernel_size: 2 stride: 3 } }
layer { name: "g" type: "Pooling" bottom: "data" top: "g" pooling_param { pool: AVE global_pooling: true } }
layer { name: "gm" type: "Pooling" bottom: "data" top: "gm" pooling_param { pool: MAX global_pooling: true } }
layer { name: "f" type: "Pooling" bottom: "data" top: "f" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR } }""",
    "inner_product": INPUT % dims(2, 3, 4, 5) + """
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 6 } }
layer { name: "ip2" type: "InnerProduct" bottom: "data" top: "ip2" inner_product_param { num_output: 7 axis: 2 transpose: true } }
layer { name: "ip3" type: "InnerProduct" bottom: "ip" top: "ip3" inner_product_param { num_output: 2 bias_term: false } }""",
    "neurons": INPUT % dims(1, 3, 4, 4) + """
layer { name: "r" type: "ReLU" bottom: "data" top: "r" relu_param { negative_slope: 0.1 } }
layer { name: "p" type: "PReLU" bottom: "data" top: "p" }
layer { name: "ps" type: "PReLU" bottom: "data" top: "ps" prelu_param { channel_shared: true } }
layer { name: "s" type: "Sigmoid" bottom: "data" top: "s" }
layer { name: "t" type: "TanH" bottom: "data" top: "t" }
layer { name: "ab" type: "AbsVal" bottom: "data" top: "ab" }
layer { name: "e" type: "ELU" bottom: "data" top: "e" elu_param { alpha: 0.7 } }
layer { name: "pw" type: "Power" bottom: "ab" top: "pw" power_param { power: 1.5 scale: 2 shift: 0.5 } }
layer { name: "d" type: "Dropout" bottom: "t" top: "t" }
layer { name: "r2" type: "ReLU" bottom: "t" top: "t" }""",
    "batchnorm_scale_bias": INPUT % dims(1, 3, 4, 4) + """
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
layer { name: "sc" type: "Scale" bottom: "bn" top: "sc" scale_param { bias_term: true } }
layer { name: "bn2" type: "BatchNorm" bottom: "sc" top: "sc" }
layer { name: "sc2" type: "Scale" bottom: "sc" top: "sc" }
layer { name: "sc3" type: "Scale" bottom: "data" top: "sc3" scale_param { axis: 2 num_axes: 2 } }
layer { name: "b" type: "Bias" bottom: "sc3" top: "b" }
layer { name: "w" type: "InnerProduct" bottom: "data" top: "w" inner_product_param { num_output: 3 } }
layer { name: "sc4" type: "Scale" bottom: "data" bottom: "w" top: "sc4" scale_param { axis: 0 } }
layer { name: "b2" type: "Bias" bottom: "data" bottom: "w" top: "b2" bias_param { axis: 0 } }""",
    "structure": INPUT % dims(2, 4, 3, 3) + """
layer { name: "s" type: "Slice" bottom: "data" top: "s1" top: "s2" top: "s3" slice_param { slice_point: 1 slice_point: 3 } }
layer { name: "sum" type: "Eltwise" bottom: "s1" bottom: "s3" top: "sum" eltwise_param { coeff: 0.5 coeff: -2 } }
layer { name: "prod" type: "Eltwise" bottom: "s1" bottom: "s3" bottom: "sum" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "s1" bottom: "s3" top: "max" eltwise_param { operation: MAX } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "s2" bottom: "max" top: "cat" }
layer { name: "cat0" type: "Concat" bottom: "data" bottom: "data" top: "cat0" concat_param { axis: 0 } }
layer { name: "fl" type: "Flatten" bottom: "cat" top: "fl" }
layer { name: "fl2" type: "Flatten" bottom: "cat" top: "fl2" flatten_param { axis: 2 } }
layer { name: "rs" type: "Reshape" bottom: "cat" top: "rs" reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
layer { name: "rs2" type: "Reshape" bottom: "cat" top: "rs2" reshape_param { shape { dim: 2 dim: 2 } axis: 1 num_axes: 1 } }
layer { name: "sm" type: "Softmax" bottom: "rs" top: "sm" }
layer { name: "sm2" type: "Softmax" bottom: "rs" top: "sm2" softmax_param { axis: 2 } }
layer { name: "sil" type: "Silence" bottom: "s2" }""",
    "lrn": INPUT % dims(1, 7, 6, 5) + """
layer { name: "across" type: "LRN" bottom: "data" top: "across" lrn_param { local_size: 5 alpha: 0.3 beta: 0.75 k: 2 } }
layer { name: "within" type: "LRN" bottom: "data" top: "within" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 norm_region: WITHIN_CHANNEL } }""",
}


@pytest.mark.parametrize("name", sorted(LAYER_NETS))
def test_each_layer_type_matches_the_engine(name):
    net, model, dynamic = exported(LAYER_NETS[name])
    assert dynamic
    batch = net.shapes["data"][0]
    assert max_error(net, model, batches=(batch, batch + 3)) <= 1e-5


def test_average_pooling_divisor_near_the_padded_border_is_caffes():
    # One 1x1x6x6 input of ones: Caffe's AVE (k 3, s 2, pad 1) averages zero padding in,
    # dividing by the window clipped to [-1, 7): 4/9, 6/9, 6/9, 4/6 along each axis
    net, model, _ = exported(INPUT % dims(1, 1, 6, 6) + """
layer { name: "a" type: "Pooling" bottom: "data" top: "a" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }""")
    sess = onnx_check.session(model.SerializeToString())
    out = sess.run(None, {"data": np.ones((1, 1, 6, 6), np.float32)})[0][0, 0]
    rows = np.array([2 / 3, 1.0, 1.0, 1.0])    # cells inside the input / divisor, per axis
    divisors = np.array([3, 3, 3, 2])
    inside = np.array([2, 3, 3, 1])
    expected = np.outer(inside, inside) / np.outer(divisors, divisors)
    assert rows[0] == pytest.approx(inside[0] / divisors[0])
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_static_batch_and_a_reshape_that_fixes_the_batch():
    text = INPUT % dims(2, 3, 2, 2) + """
layer { name: "rs" type: "Reshape" bottom: "data" top: "rs" reshape_param { shape { dim: 2 dim: 12 } } }"""
    net, model, dynamic = exported(text)
    assert not dynamic            # 2 x 12 takes the 24 values of batch 2 only
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 2, 2]
    assert max_error(net, model, batches=(2,)) <= 1e-6


def test_cli_exports_verifies_and_refuses_in_one_line(tmp_path):
    deploy, weights, _ = paper_deploy(tmp_path, bn=True)
    out = tmp_path / "m.onnx"
    result = run_tool("export_onnx", deploy, weights, "-o", out, "--verify", "--outputs",
                      "pool4,prob")
    assert result.returncode == 0, result.stderr
    assert "opset 17, dynamic batch" in result.stdout and "onnx.checker: ok" in result.stdout
    assert "outputs pool4 [Nx12x1x1], prob [Nx5]" in result.stdout
    assert "verify (ok:" in result.stdout and "8 synthetic faces" in result.stdout
    assert result.stderr == ""
    onnx.checker.check_model(onnx.load(str(out)))

    python = tmp_path / "py.prototxt"
    python.write_text(INPUT % dims(1, 1, 4, 4) + 'layer { name: "py" type: "Python" '
                      'bottom: "data" top: "y" }')
    assert_one_line_error(run_tool("export_onnx", python, weights, "-o", tmp_path / "x.onnx"),
                          "layer 'py' (Python): no ONNX export for this layer type",
                          "supports")
    train_val = tmp_path / "tv.prototxt"
    train_val.write_text('layer { name: "data" type: "Data" top: "data" top: "label" '
                         'data_param { source: "/nowhere" batch_size: 2 } }')
    assert_one_line_error(run_tool("export_onnx", train_val, weights, "-o", tmp_path / "x.onnx"),
                          "layer 'data' (Data)", "export the deploy net")
    mask = tmp_path / "mask.prototxt"      # no learned layer: any caffemodel will do
    mask.write_text(INPUT % dims(1, 1, 4, 4) + """
layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "mask" pooling_param { kernel_size: 2 stride: 2 } }""")
    assert_one_line_error(run_tool("export_onnx", mask, weights, "-o", tmp_path / "x.onnx"),
                          "layer 'p' (Pooling)", "argmax mask")
    assert_one_line_error(run_tool("export_onnx", deploy, weights, "-o", tmp_path / "x.onnx",
                                   "--outputs", "nope"), "--outputs nope", "no blob 'nope'")
    assert not (tmp_path / "x.onnx").exists()
