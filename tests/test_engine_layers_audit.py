"""Parameters of the original 28 layer types that Caffe honours and the engine
used to skip or refuse (issue 12's audit), against Caffe's formulas written out
here; and the registry's type list."""
import itertools
import math

import numpy as np
import pytest
import torch

from bnface_caffe.engine import layer_type_list
from bnface_caffe.engine.layers import LAYERS, create_layer
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import layer_param, make_layer, rand
from test_engine_layers import gradcheck

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def run(layer, *inputs):
    return [y.detach().numpy() for y in layer.forward([torch.as_tensor(x) for x in inputs])]


# ---------------------------------------------------------------- Convolution

def caffe_conv(x, w, b, stride, pad, dilation, group):
    """Caffe's convolution of x [N, C, spatial...] (im2col + gemm): every output
    position reads kernel taps at o*stride - pad + k*dilation, zero outside the
    input; output sizes with C++'s truncating division."""
    n, c, *spatial = x.shape
    o_ch, cg, *kernel = w.shape
    out = [int((s + 2 * p - (d * (k - 1) + 1)) / st) + 1
           for s, k, st, p, d in zip(spatial, kernel, stride, pad, dilation)]
    y = np.zeros((n, o_ch, *out))
    og = o_ch // group
    for pos in itertools.product(*[range(o) for o in out]):
        patch = np.zeros((n, c, *kernel))
        for taps in itertools.product(*[range(k) for k in kernel]):
            at = [o * st - p + k * d for o, st, p, k, d in zip(pos, stride, pad, taps, dilation)]
            if all(0 <= a < s for a, s in zip(at, spatial)):
                patch[(slice(None), slice(None), *taps)] = x[(slice(None), slice(None), *at)]
        for g in range(group):
            part = patch[:, g * cg:(g + 1) * cg].reshape(n, -1)
            weights = w[g * og:(g + 1) * og].reshape(og, -1)
            y[(slice(None), slice(g * og, (g + 1) * og), *pos)] = part @ weights.T
    if b is not None:
        y += b.reshape(1, -1, *[1] * len(out))
    return y


CONV_CASES = [
    # spec, input shape, stride, pad, dilation, group
    ("num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 4, 7), (2,), (1,), (1,), 2),
    ("num_output: 2 kernel_size: 2 dilation: 2", (1, 3, 6), (1,), (0,), (2,), 1),
    ("num_output: 2 kernel_size: 2 kernel_size: 3 kernel_size: 2 stride: 1 stride: 2 stride: 1 "
     "pad: 1 dilation: 1 dilation: 1 dilation: 2", (1, 2, 3, 5, 5), (1, 2, 1), (1, 1, 1),
     (1, 1, 2), 1),
    ("num_output: 4 kernel_size: 2 group: 2 force_nd_im2col: true", (2, 2, 3, 3, 3),
     (1, 1, 1), (0, 0, 0), (1, 1, 1), 2),
    ("num_output: 2 kernel_size: 3 stride: 2", (1, 1, 2, 2), (2, 2), (0, 0), (1, 1), 1),
    ("num_output: 2 kernel_size: 3 stride: 3 pad: 1", (1, 2, 2, 7), (3, 3), (1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("spec,shape,stride,pad,dilation,group", CONV_CASES)
def test_convolution_1d_3d_dilated_grouped_and_truncated_sizes(spec, shape, stride, pad,
                                                                dilation, group):
    text = (f'name: "c" type: "Convolution" convolution_param {{ {spec} '
            'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [shape])
    x = rand(*shape)
    w, b = (blob.detach().numpy() for blob in layer.blobs)
    want = caffe_conv(x.numpy(), w, b, stride, pad, dilation, group)
    assert tops == [want.shape]
    np.testing.assert_allclose(run(layer, x)[0], want, rtol=1e-10, atol=1e-10)
    assert gradcheck(layer, [x])


def test_truncated_output_size_is_cpp_division():
    # (2 - 3) / 2 truncates to 0 in C++: one output, its window partly past the input
    _, tops = make_layer('name: "c" type: "Convolution" convolution_param { num_output: 1 '
                         'kernel_size: 3 stride: 2 }', [(1, 1, 2, 2)])
    assert tops == [(1, 1, 1, 1)]
    with pytest.raises(UserError, match="too small"):      # (2 - 4) / 2 = -1: size 0
        make_layer('name: "c" type: "Convolution" convolution_param { num_output: 1 '
                   'kernel_size: 4 stride: 2 }', [(1, 1, 2, 2)])


def test_convolution_channel_axis():
    text = ('name: "c" type: "Convolution" convolution_param { num_output: 3 kernel_size: 2 '
            'axis: 2 weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [(2, 3, 2, 4, 5)])
    assert tops == [(2, 3, 3, 3, 4)]                      # axes before 2 are all batch
    x = rand(2, 3, 2, 4, 5)
    w, b = (blob.detach().numpy() for blob in layer.blobs)
    assert w.shape == (3, 2, 2, 2)
    want = caffe_conv(x.numpy().reshape(6, 2, 4, 5), w, b, (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(run(layer, x)[0], want.reshape(2, 3, 3, 3, 4), rtol=1e-10)
    assert gradcheck(layer, [x])
    layer, tops = make_layer(text.replace("axis: 2", "axis: -3"), [(2, 3, 2, 4, 5)])
    assert tops == [(2, 3, 3, 3, 4)]


def test_convolution_without_spatial_axes_is_a_grouped_matrix_product():
    text = ('name: "c" type: "Convolution" convolution_param { num_output: 4 group: 2 '
            'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [(5, 6)])
    assert tops == [(5, 4)] and layer.blobs[0].shape == (4, 3)
    x = rand(5, 6)
    w, b = (blob.detach().numpy() for blob in layer.blobs)
    want = np.concatenate([x.numpy()[:, :3] @ w[:2].T, x.numpy()[:, 3:] @ w[2:].T], 1) + b
    np.testing.assert_allclose(run(layer, x)[0], want, rtol=1e-10)
    assert gradcheck(layer, [x])


@pytest.mark.parametrize("spec,shape,message", [
    ("num_output: 2 kernel_size: 1", (1, 1, 2, 2, 2, 2), r"4 spatial axes.*at most 3"),
    ("num_output: 2 kernel_size: 1 kernel_size: 2", (1, 1, 2, 2, 2), "once or 3 times"),
    ("num_output: 2 kernel_h: 1 kernel_w: 2", (1, 1, 2, 2, 2), "only be used for 2-D"),
    ("num_output: 2 kernel_size: 2 stride: 0", (1, 1, 4, 4), "stride dimensions must be > 0"),
    ("num_output: 2 kernel_size: 2 dilation: 0", (1, 1, 4, 4), "dilation must be > 0"),
    ("num_output: 2 kernel_size: 2 axis: 4", (1, 1, 4, 4), "axis 4 is out of range"),
    ("num_output: 3 kernel_size: 1 group: 2", (1, 2, 4, 4), "num_output .3. must be divisible"),
])
def test_convolution_refusals_name_the_layer(spec, shape, message):
    with pytest.raises(UserError, match=r"layer 'c' \(Convolution\).*" + message):
        make_layer(f'name: "c" type: "Convolution" convolution_param {{ {spec} }}', [shape])


@pytest.mark.parametrize("spec,shape", [
    ("num_output: 2 kernel_size: 3 stride: 2 pad: 1", (1, 3, 4)),
    ("num_output: 4 kernel_size: 2 stride: 2 group: 2 dilation: 2", (1, 2, 3, 2, 3)),
    ("num_output: 2 kernel_size: 2 stride: 2 axis: 2", (2, 3, 2, 3, 3)),
    ("num_output: 4 group: 2", (3, 2)),
])
def test_deconvolution_is_the_adjoint_of_convolution(spec, shape):
    text = (f'name: "d" type: "Deconvolution" convolution_param {{ {spec} '
            'weight_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [shape])
    p = layer_param(text).convolution_param
    axis = p.axis % len(shape)
    n = len(shape) - axis - 1
    stride = [p.stride[0] if p.stride else 1] * n
    pad = [p.pad[0] if p.pad else 0] * n
    dil = [p.dilation[0] if p.dilation else 1] * n
    k = [p.kernel_size[0] if p.kernel_size else 1] * n
    sizes = [s * (i - 1) + d * (kk - 1) + 1 - 2 * pd
             for i, kk, s, pd, d in zip(shape[axis + 1:], k, stride, pad, dil)]
    assert tops == [(*shape[:axis], p.num_output, *sizes)]
    x, y = rand(*shape), rand(*tops[0], seed=1)
    w = layer.blobs[0].detach().numpy()
    items = int(np.prod(shape[:axis]))
    conv = caffe_conv(y.numpy().reshape(items, *tops[0][axis:]), w, None, stride, pad, dil,
                      p.group)
    deconv = run(layer, x)[0] - layer.blobs[1].detach().numpy().reshape(-1, *[1] * n)
    assert np.allclose((conv.reshape(shape) * x.numpy()).sum(), (y.numpy() * deconv).sum())
    assert gradcheck(layer, [x])


def test_deconvolution_too_small_output_is_refused():
    with pytest.raises(UserError, match=r"layer 'd' \(Deconvolution\).*too small"):
        make_layer('name: "d" type: "Deconvolution" convolution_param { num_output: 1 '
                   'kernel_size: 1 pad: 1 }', [(1, 1, 1, 1)])


# ---------------------------------------------------------------- Eltwise

def test_eltwise_max_ignores_coefficients_and_prod_refuses_them():
    a, b = rand(2, 3), rand(2, 3, seed=1)
    layer, _ = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: MAX coeff: 2 '
                          'coeff: -1 }', [(2, 3)] * 2)
    np.testing.assert_array_equal(run(layer, a, b)[0], np.maximum(a.numpy(), b.numpy()))
    with pytest.raises(UserError, match=r"layer 'e' \(Eltwise\).*only .* SUM"):
        make_layer('name: "e" type: "Eltwise" eltwise_param { operation: PROD coeff: 1 '
                   'coeff: 1 }', [(2, 3)] * 2)


def test_eltwise_unstable_product_gradient_divides_the_top():
    text = 'name: "e" type: "Eltwise" eltwise_param { operation: PROD stable_prod_grad: false }'
    layer, _ = make_layer(text, [(4,)] * 3)
    xs = [rand(4, seed=i) for i in range(3)]
    np.testing.assert_allclose(run(layer, *xs)[0], (xs[0] * xs[1] * xs[2]).numpy())
    assert gradcheck(layer, xs)
    # with a zero bottom Caffe's top / bottom gives NaN where the exact gradient does not
    xs = [torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True),
          torch.tensor([3.0, 0.5], dtype=torch.float64, requires_grad=True),
          torch.tensor([1.0, 4.0], dtype=torch.float64, requires_grad=True)]
    layer.forward(xs)[0].sum().backward()
    assert math.isnan(xs[0].grad[0]) and xs[0].grad[1] == 2.0
    assert xs[1].grad.tolist() == [0.0, 8.0] and xs[2].grad.tolist() == [0.0, 1.0]
    stable, _ = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: PROD }',
                           [(2,)] * 3)
    ys = [x.detach().clone().requires_grad_(True) for x in xs]
    stable.forward(ys)[0].sum().backward()
    assert ys[0].grad.tolist() == [3.0, 2.0]           # the product of the others


# ---------------------------------------------------------------- axes

def test_concat_slice_flatten_negative_axes_and_both_forms_refused():
    a, b = rand(2, 3, 4), rand(2, 3, 1, seed=1)
    layer, tops = make_layer('name: "c" type: "Concat" concat_param { axis: -1 }',
                             [(2, 3, 4), (2, 3, 1)])
    assert tops == [(2, 3, 5)]
    np.testing.assert_array_equal(run(layer, a, b)[0], np.concatenate([a, b], -1))
    layer, tops = make_layer('name: "s" type: "Slice" top: "x" top: "y" slice_param { axis: -2 '
                             'slice_point: 1 }', [(2, 3, 4)])
    assert tops == [(2, 1, 4), (2, 2, 4)]
    x, y = run(layer, a)
    np.testing.assert_array_equal(x, a.numpy()[:, :1])
    layer, tops = make_layer('name: "f" type: "Flatten" flatten_param { axis: -3 end_axis: -2 }',
                             [(2, 3, 4, 5)])
    assert tops == [(2, 12, 5)]
    with pytest.raises(UserError, match=r"layer 'c' \(Concat\).*either axis or concat_dim"):
        make_layer('name: "c" type: "Concat" concat_param { axis: 1 concat_dim: 1 }',
                   [(2, 3)] * 2)
    with pytest.raises(UserError, match=r"layer 's' \(Slice\).*either axis or slice_dim"):
        make_layer('name: "s" type: "Slice" top: "x" top: "y" slice_param { axis: 1 '
                   'slice_dim: 1 }', [(2, 4)])
    with pytest.raises(UserError, match=r"layer 'f' \(Flatten\).*end_axis 1 .*comes before"):
        make_layer('name: "f" type: "Flatten" flatten_param { axis: 2 end_axis: 1 }',
                   [(2, 3, 4)])
    with pytest.raises(UserError, match="axis -4 is out of range"):
        make_layer('name: "c" type: "Concat" concat_param { axis: -4 }', [(2, 3, 4)] * 2)


def test_reshape_infers_zero_for_an_empty_input():
    _, tops = make_layer('name: "r" type: "Reshape" reshape_param { shape { dim: 2 dim: -1 } }',
                         [(0, 4)])
    assert tops == [(2, 0)]


# ---------------------------------------------------------------- neurons

def test_dropout_ratio_zero_keeps_everything_and_one_is_refused():
    layer, _ = make_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 0 }', [(50,)])
    x = rand(50)
    assert torch.equal(layer.forward([x])[0], x)
    with pytest.raises(UserError, match=r"layer 'd' \(Dropout\).*\[0, 1\)"):
        make_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 1 }', [(3,)])


def power(text, x, **grad_kwargs):
    layer, _ = make_layer(f'name: "p" type: "Power" {text}', [tuple(x.shape)])
    xg = x.clone().requires_grad_(True)
    y = layer.forward([xg])[0]
    y.sum().backward()
    return layer, y.detach(), xg.grad


@pytest.mark.parametrize("params", ["power: 3 scale: 0.5 shift: 2", "power: 2 scale: -2 shift: 1",
                                    "power: 1 scale: 3 shift: -1", "power: -1.5 scale: 2",
                                    "power: 0.5 shift: 4"])
def test_power_values_and_gradient(params):
    p = layer_param(f'power_param {{ {params} }}').power_param
    x = rand(6).abs() + 0.5
    layer, y, _ = power(f'power_param {{ {params} }}', x)
    np.testing.assert_allclose(y.numpy(), (p.shift + p.scale * x.numpy()) ** p.power, rtol=1e-6)
    assert gradcheck(layer, [x])


def test_power_backward_is_caffes_quotient_where_the_base_is_zero():
    x = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64)
    _, y, grad = power("power_param { power: 0.5 }", x)       # y / x * power: 0/0 at 0
    assert math.isnan(grad[0]) and grad[1:].tolist() == [0.5, 0.25]
    _, y, grad = power("power_param { power: 3 shift: -1 }", torch.tensor([1.0, 2.0],
                                                                          dtype=torch.float64))
    assert math.isnan(grad[0]) and grad[1] == 3.0            # y / (x - 1) * 3 at x = 1: 0/0


def test_power_with_a_zero_power_or_scale_is_a_constant_without_gradient():
    x = rand(4).requires_grad_(True)
    for params, value in (("power: 0 scale: 2 shift: 3", 1), ("power: 2 scale: 0 shift: 3", 9)):
        layer, _ = make_layer(f'name: "p" type: "Power" power_param {{ {params} }}', [(4,)])
        y = layer.forward([x])[0]
        assert (y == value).all() and not y.requires_grad   # Caffe's bottom diff: 0


def test_power_in_place_backward_is_caffes_aliased_diff():
    # In place, Caffe's Power backward reads the bottom data after the forward wrote
    # the top there, and writes its factor into the shared diff before multiplying
    # by "the top diff", which is by then that factor: the factor squared results.
    layer, _ = make_layer('name: "p" type: "Power" bottom: "x" top: "x" power_param { power: 2 '
                          'scale: 3 shift: 1 }', [(3,)])
    x = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64, requires_grad=True)
    y = layer.forward([x])[0]
    (y * rand(3, seed=9)).sum().backward()
    factor = 2 * 3 * (3 * y.detach().numpy() + 1)
    np.testing.assert_allclose(x.grad.numpy(), factor ** 2)
    layer, _ = make_layer('name: "p" type: "Power" bottom: "x" top: "x" power_param { power: 1 '
                          'scale: 3 shift: 1 }', [(3,)])
    x = rand(3).requires_grad_(True)
    (layer.forward([x])[0] * rand(3, seed=9)).sum().backward()
    assert x.grad.tolist() == [9.0, 9.0, 9.0]


def test_eltwise_and_lrn_in_place_are_refused():
    for text in ('type: "Eltwise" bottom: "a" bottom: "b" top: "a"',
                 'type: "LRN" bottom: "a" top: "a"',
                 'type: "LRN" bottom: "a" top: "a" lrn_param { norm_region: WITHIN_CHANNEL }'):
        with pytest.raises(UserError, match=r"layer 'x' \((Eltwise|LRN)\): cannot run in place"):
            make_layer(f'name: "x" {text}', [(1, 3, 4, 4)] * text.count("bottom"))


# ---------------------------------------------------------------- Bias with a second bottom

def test_bias_from_a_second_bottom_gets_the_summed_gradient():
    layer, _ = make_layer('name: "b" type: "Bias" bias_param { axis: 1 }', [(2, 3, 4), (3,)])
    assert layer.blobs == []
    x, b = rand(2, 3, 4), rand(3, seed=1)
    np.testing.assert_allclose(run(layer, x, b)[0], (x + b.reshape(1, 3, 1)).numpy())
    assert gradcheck(layer, [x, b])
    with pytest.raises(UserError, match="does not match"):
        make_layer('name: "b" type: "Bias"', [(2, 3, 4), (4,)])


# ---------------------------------------------------------------- registry

def test_layer_type_list_is_every_registered_type_sorted():
    types = layer_type_list()
    assert types == sorted(LAYERS) and len(types) == len(set(types))
    new = ["ArgMax", "BNLL", "BatchReindex", "Clip", "Crop", "Embed", "Exp", "Filter", "Im2col",
           "Log", "MVN", "Parameter", "Reduction", "SPP", "Swish", "Threshold", "Tile"]
    assert set(new) <= set(types)
    assert types.index("BNLL") < types.index("BatchNorm")    # byte order, as std::map's


def test_unknown_layer_type_lists_every_supported_type():
    with pytest.raises(UserError) as err:
        create_layer(layer_param('name: "x" type: "Nope"'), TRAIN)
    message = str(err.value)
    assert "\n" not in message and "unknown layer type 'Nope'" in message
    assert message.endswith(", ".join(layer_type_list()))
