"""Each layer against Caffe's formulas worked out here, and its gradient against
finite differences in float64 (torch.autograd.gradcheck)."""
import math

import numpy as np
import pytest
import torch

from bnface_caffe.engine.layers import LAYERS
from bnface_caffe.shapes import pool_output_size
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import make_layer, rand

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def gradcheck(layer, inputs, top=0, wrt=None):
    """Finite-difference check of d(sum(r * top))/d(inputs, blobs) for a fixed random r.
    `wrt`: indices of the inputs to differentiate (default all; labels are constants)."""
    wrt = range(len(inputs)) if wrt is None else wrt
    inputs = [x.detach().clone().requires_grad_(i in wrt) for i, x in enumerate(inputs)]
    learn = [i for i, b in enumerate(layer.blobs) if b.requires_grad]
    leaves = [layer.blobs[i].detach().clone().requires_grad_(True) for i in learn]
    original = list(layer.blobs)
    weight = []

    def f(*args):
        blobs = list(original)
        for i, v in zip(learn, args[len(inputs):]):
            blobs[i] = v
        layer.blobs = blobs
        out = layer.forward(list(args[:len(inputs)]))[top]
        if not weight:
            weight.append(rand(*out.shape, seed=7))
        return (out * weight[0]).sum()

    try:
        return torch.autograd.gradcheck(f, (*inputs, *leaves), eps=1e-6, atol=1e-6, rtol=1e-4)
    finally:
        layer.blobs = original


# ---------------------------------------------------------------- Convolution

def naive_conv(x, w, b, stride, pad, dilation, group):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    xp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    out = np.zeros((n, o, oh, ow))
    og = o // group
    for g in range(group):
        for oc in range(g * og, (g + 1) * og):
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for ic in range(cg):
                        for u in range(kh):
                            for v in range(kw):
                                total = total + xp[:, g * cg + ic, i * stride[0] + u * dilation[0],
                                                   j * stride[1] + v * dilation[1]] * w[oc, ic, u, v]
                    out[:, oc, i, j] = total + (b[oc] if b is not None else 0)
    return out


@pytest.mark.parametrize("spec,shape,stride,pad,dil,group", [
    ("num_output: 3 kernel_size: 3", (2, 2, 4, 5), (1, 1), (0, 0), (1, 1), 1),
    ("num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2", (1, 4, 5, 5), (2, 2), (1, 1), (1, 1), 2),
    ("num_output: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0",
     (1, 3, 6, 5), (2, 1), (1, 0), (1, 1), 1),
    ("num_output: 3 kernel_size: 3 dilation: 2 pad: 2", (1, 2, 7, 7), (1, 1), (2, 2), (2, 2), 1),
    ("num_output: 2 kernel_size: 3 kernel_size: 1 stride: 1 stride: 2 pad: 1 pad: 0",
     (1, 2, 5, 6), (1, 2), (1, 0), (1, 1), 1),
])
def test_convolution_matches_cross_correlation(spec, shape, stride, pad, dil, group):
    text = f'name: "c" type: "Convolution" convolution_param {{ {spec} ' \
           'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }'
    layer, tops = make_layer(text, [shape])
    x = rand(*shape)
    w, b = layer.blobs
    assert tuple(w.shape)[:2] == (w.shape[0], shape[1] // group)
    want = naive_conv(x.numpy(), w.detach().numpy(), b.detach().numpy(), stride, pad, dil, group)
    got = layer.forward([x])[0].detach().numpy()
    assert got.shape == tuple(tops[0]) == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    assert gradcheck(layer, [x])


def test_convolution_defaults_weights_constant_zero_and_checks():
    layer, _ = make_layer('name: "c" type: "Convolution" convolution_param { num_output: 3 '
                          'kernel_size: 2 }', [(1, 2, 4, 4)])
    assert layer.blobs[0].shape == (3, 2, 2, 2) and not layer.blobs[0].any()
    assert layer.blobs[1].shape == (3,) and not layer.blobs[1].any()
    with pytest.raises(UserError, match="divisible by group"):
        make_layer('name: "c" type: "Convolution" convolution_param { num_output: 3 '
                   'kernel_size: 2 group: 2 }', [(1, 4, 4, 4)])
    with pytest.raises(UserError, match="not both"):
        make_layer('name: "c" type: "Convolution" convolution_param { num_output: 2 '
                   'kernel_size: 2 kernel_h: 2 kernel_w: 2 }', [(1, 2, 4, 4)])
    with pytest.raises(UserError, match="layer 'c'.*too small"):
        make_layer('name: "c" type: "Convolution" convolution_param { num_output: 2 '
                   'kernel_size: 5 }', [(1, 2, 4, 4)])


def test_deconvolution_is_the_transpose():
    text = ('name: "d" type: "Deconvolution" convolution_param { num_output: 2 kernel_size: 3 '
            'stride: 2 pad: 1 weight_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [(1, 3, 4, 4)])
    assert layer.blobs[0].shape == (3, 2, 3, 3)
    assert tops[0] == (1, 2, 2 * 3 + 3 - 2, 7)  # stride*(in-1) + k - 2*pad
    # <conv(y), x> == <y, deconv(x)> with the same weights
    x, y = rand(1, 3, 4, 4), rand(1, 2, 7, 7, seed=1)
    w = layer.blobs[0].detach()
    conv = torch.nn.functional.conv2d(y, w, None, 2, 1)     # weight [3, 2, k, k]: 2 -> 3 channels
    deconv = layer.forward([x])[0] - layer.blobs[1].reshape(1, -1, 1, 1)
    assert torch.allclose((conv * x).sum(), (y * deconv).sum())
    assert gradcheck(layer, [x])


# ---------------------------------------------------------------- Pooling

# (size, kernel, stride, pad, Caffe's output size worked out by hand)
POOL_SIZES = [
    (50, 2, 2, 0, 25), (25, 2, 2, 0, 13), (13, 2, 2, 0, 7), (7, 7, 1, 0, 1),  # the paper's nets
    (12, 2, 2, 0, 6),                 # floor-mode PyTorch's 25->12 would feed 6x6 to the 7x7 pool
    (10, 3, 2, 0, 5),                 # ceil(7/2)+1 = 5
    (6, 3, 2, 1, 4),                  # ceil(5/2)+1 = 4; last start 6 < 6+1: kept
    (5, 2, 2, 1, 3),                  # ceil(5/2)+1 = 4; (4-1)*2 = 6 >= 5+1: clipped to 3
    (4, 3, 3, 2, 2),                  # ceil(5/3)+1 = 3; (3-1)*3 = 6 >= 4+2: clipped to 2
    (7, 3, 2, 2, 5),                  # ceil(7/2)+1 = 5; 8 < 9: kept (pad 2 > k/2: no torch pad)
    (6, 1, 3, 0, 3),                  # ceil(5/3)+1 = 3 without pad: no clip (torch would say 2)
    (6, 7, 2, 0, 1),                  # ceil(-1/2)+1 = 1: a window larger than the input
]


@pytest.mark.parametrize("size,k,s,p,want", POOL_SIZES)
def test_pooling_output_size_table(size, k, s, p, want):
    assert pool_output_size(size, k, s, p) == want
    layer, tops = make_layer(f'name: "p" type: "Pooling" pooling_param {{ pool: MAX '
                             f'kernel_size: {k} stride: {s} pad: {p} }}', [(1, 1, size, size)])
    assert tops[0] == (1, 1, want, want)


def test_pooling_floor_round_mode_and_too_big_kernel():
    assert pool_output_size(13, 2, 2, 0, ceil_mode=False) == 6
    _, tops = make_layer('name: "p" type: "Pooling" pooling_param { kernel_size: 2 stride: 2 '
                         'round_mode: FLOOR }', [(1, 1, 13, 13)])
    assert tops[0] == (1, 1, 6, 6)
    with pytest.raises(UserError, match=r"layer 'p' \(Pooling\).*7x7 window.*6x6 input"):
        make_layer('name: "p" type: "Pooling" pooling_param { pool: AVE kernel_size: 7 }',
                   [(2, 3, 6, 6)])


def caffe_pool(x, k, s, p, method, out):
    """Caffe's pooling loops, written out (pooling_layer.cpp semantics)."""
    n, c, h, w = x.shape
    oh, ow = out if isinstance(out, tuple) else (out, out)
    y = np.zeros((n, c, oh, ow))
    arg = np.full((n, c, oh, ow), -1)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s - p, j * s - p
            if method == "MAX":
                he, we = min(hs + k, h), min(ws + k, w)
                hs, ws = max(hs, 0), max(ws, 0)
                for a in range(n):
                    for b in range(c):
                        best, idx = -3.4028234663852886e38, -1
                        for r in range(hs, he):
                            for q in range(ws, we):
                                if x[a, b, r, q] > best:
                                    best, idx = x[a, b, r, q], r * w + q
                        y[a, b, i, j], arg[a, b, i, j] = best, idx
            else:
                he, we = min(hs + k, h + p), min(ws + k, w + p)
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                y[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return y, arg


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("size,k,s,p", [(9, 3, 2, 1), (5, 2, 2, 1), (7, 3, 2, 2), (4, 3, 3, 2),
                                        (8, 2, 2, 0), (7, 7, 1, 0), (6, 4, 3, 1)])
def test_pooling_values_and_gradients(method, size, k, s, p):
    text = f'name: "p" type: "Pooling" pooling_param {{ pool: {method} kernel_size: {k} ' \
           f'stride: {s} pad: {p} }}'
    layer, tops = make_layer(text, [(2, 1, size, size)])
    x = rand(2, 1, size, size)
    want, _ = caffe_pool(x.numpy(), k, s, p, method, tops[0][2])
    got = layer.forward([x])[0].detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert gradcheck(layer, [x])


def test_pooling_explicit_path_without_pad_keeps_caffe_windows():
    # 6 -> 3 with kernel 1 stride 3 and no pad: Caffe keeps an output whose
    # window [6, 7) lies past the input (MAX gives -FLT_MAX there).
    layer, tops = make_layer('name: "p" type: "Pooling" pooling_param { kernel_size: 1 '
                             'stride: 3 }', [(1, 1, 6, 6)])
    assert tops[0] == (1, 1, 3, 3) and not layer.native
    x = rand(1, 1, 6, 6)
    y = layer.forward([x])[0]
    assert torch.equal(y[0, 0, :2, :2], x[0, 0, ::3, ::3])
    assert (y[0, 0, 2] == -3.4028234663852886e38).all()


def test_max_pooling_ties_go_to_the_first_maximum_in_row_major_order():
    layer, _ = make_layer('name: "p" type: "Pooling" top: "p" top: "mask" pooling_param '
                          '{ kernel_size: 2 stride: 2 }', [(1, 1, 2, 4)])
    x = torch.tensor([[[[1., 5., 5., 2.], [5., 3., 2., 2.]]]], dtype=torch.float64,
                     requires_grad=True)
    y, mask = layer.forward([x])
    assert y.tolist() == [[[[5., 5.]]]]
    assert mask.tolist() == [[[[1., 2.]]]]      # h*W + w of the first maximum
    y.sum().backward()
    assert x.grad.tolist() == [[[[0., 1., 1., 0.], [0., 0., 0., 0.]]]]
    # the same through the explicit (padded) path
    layer, _ = make_layer('name: "p" type: "Pooling" top: "p" top: "mask" pooling_param '
                          '{ kernel_size: 3 stride: 2 pad: 2 }', [(1, 1, 2, 4)])
    assert not layer.native
    y, mask = layer.forward([x])
    want, arg = caffe_pool(x.detach().numpy(), 3, 2, 2, "MAX", layer.out)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    np.testing.assert_array_equal(mask.numpy(), arg)


def test_global_pooling_and_bad_pooling_params():
    layer, tops = make_layer('name: "g" type: "Pooling" pooling_param { pool: AVE '
                             'global_pooling: true }', [(2, 3, 5, 4)])
    assert tops[0] == (2, 3, 1, 1)
    x = rand(2, 3, 5, 4)
    assert torch.allclose(layer.forward([x])[0][..., 0, 0], x.mean((2, 3)))
    with pytest.raises(UserError, match="pad"):
        make_layer('name: "p" type: "Pooling" pooling_param { kernel_size: 2 pad: 2 }',
                   [(1, 1, 5, 5)])
    with pytest.raises(UserError, match="STOCHASTIC"):
        make_layer('name: "p" type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 2 }',
                   [(1, 1, 5, 5)])
    with pytest.raises(UserError, match="4 axes"):
        make_layer('name: "p" type: "Pooling" pooling_param { kernel_size: 2 }', [(1, 5, 5)])


# ---------------------------------------------------------------- BatchNorm and Scale

def test_batchnorm_statistics_closed_form_after_k_forwards():
    layer, _ = make_layer('name: "bn" type: "BatchNorm"', [(4, 3, 2, 5)], double=False)
    assert not layer.use_global_stats                      # TRAIN default
    assert [(p.lr_mult) for p in layer.param.param] == [0, 0, 0]
    lam, m = 0.999, 4 * 2 * 5
    batches = [rand(4, 3, 2, 5, seed=i).float() * (i + 1) + i for i in range(5)]
    want0, want1, want2 = np.zeros(3), np.zeros(3), 0.0
    for x in batches:
        y = layer.forward([x])[0]
        mu = x.double().mean((0, 2, 3))
        var = x.double().var((0, 2, 3), unbiased=False)
        xhat = (x.double() - mu.reshape(1, 3, 1, 1)) / torch.sqrt(var.reshape(1, 3, 1, 1) + 1e-5)
        assert torch.allclose(y.double(), xhat, atol=1e-4)
        want2 = lam * want2 + 1
        want0 = lam * want0 + mu.numpy()
        want1 = lam * want1 + m / (m - 1) * var.numpy()
    b0, b1, b2 = (b.numpy() for b in layer.blobs)
    assert b2[0] == pytest.approx(sum(lam ** i for i in range(5)), rel=1e-6)
    np.testing.assert_allclose(b0, want0, rtol=1e-5)
    np.testing.assert_allclose(b1, want1, rtol=1e-5)


def test_batchnorm_scale_factor_after_40_forwards_is_caffes():
    layer, _ = make_layer('name: "bn" type: "BatchNorm"', [(2, 1, 3, 3)], double=False)
    for i in range(40):
        layer.forward([rand(2, 1, 3, 3, seed=i).float()])
    assert float(layer.blobs[2]) == pytest.approx(39.2298, abs=1e-4)


def test_batchnorm_inference_divides_by_the_scale_factor():
    layer, _ = make_layer('name: "bn" type: "BatchNorm" batch_norm_param { eps: 0.001 }',
                          [(3, 2, 4, 4)], phase=TEST)
    assert layer.use_global_stats                          # TEST default
    x = rand(3, 2, 4, 4)
    # blob2 == 0 (never trained): y = x / sqrt(eps)
    assert torch.allclose(layer.forward([x])[0], x / math.sqrt(0.001))
    with torch.no_grad():
        layer.blobs[0].copy_(torch.tensor([2.0, -3.0]))
        layer.blobs[1].copy_(torch.tensor([8.0, 0.5]))
        layer.blobs[2].copy_(torch.tensor([4.0]))
    s = 1 / 4.0
    want = (x - s * torch.tensor([2.0, -3.0]).reshape(1, 2, 1, 1).double()) / torch.sqrt(
        s * torch.tensor([8.0, 0.5]).reshape(1, 2, 1, 1).double() + 0.001)
    assert torch.allclose(layer.forward([x])[0], want)
    assert gradcheck(layer, [x])


def test_batchnorm_explicit_use_global_stats_and_learnable_statistics_refused():
    layer, _ = make_layer('name: "bn" type: "BatchNorm" batch_norm_param { use_global_stats: '
                          'false }', [(3, 2)], phase=TEST)
    assert not layer.use_global_stats
    assert gradcheck(layer, [rand(3, 2)])                  # training-mode gradient, 2-D input
    with pytest.raises(UserError, match="batch normalization statistics"):
        make_layer('name: "bn" type: "BatchNorm" param { lr_mult: 1 }', [(3, 2)])


def test_batchnorm_training_gradient():
    layer, _ = make_layer('name: "bn" type: "BatchNorm"', [(3, 2, 2, 2)])
    assert gradcheck(layer, [rand(3, 2, 2, 2)])


def test_scale_default_filler_is_one_and_bias():
    layer, tops = make_layer('name: "s" type: "Scale" scale_param { bias_term: true }',
                             [(2, 3, 4, 4)])
    assert torch.equal(layer.blobs[0], torch.ones(3, dtype=torch.float64))
    assert torch.equal(layer.blobs[1], torch.zeros(3, dtype=torch.float64))
    with torch.no_grad():
        layer.blobs[0].copy_(torch.tensor([1.0, 2.0, -1.0]))
        layer.blobs[1].copy_(torch.tensor([0.5, 0.0, 3.0]))
    x = rand(2, 3, 4, 4)
    want = x * torch.tensor([1.0, 2.0, -1.0]).reshape(1, 3, 1, 1) + \
        torch.tensor([0.5, 0.0, 3.0]).reshape(1, 3, 1, 1)
    assert torch.allclose(layer.forward([x])[0], want)
    assert gradcheck(layer, [x])


def test_scale_axis_num_axes_and_second_bottom():
    layer, _ = make_layer('name: "s" type: "Scale" scale_param { axis: 1 num_axes: 2 '
                          'filler { type: "gaussian" } }', [(2, 3, 4, 5)])
    assert layer.blobs[0].shape == (3, 4)
    x = rand(2, 3, 4, 5)
    assert torch.allclose(layer.forward([x])[0], x * layer.blobs[0].reshape(1, 3, 4, 1))
    assert gradcheck(layer, [x])
    layer, _ = make_layer('name: "s" type: "Scale" scale_param { num_axes: 0 }', [(2, 3)])
    assert layer.blobs[0].shape == ()
    layer, _ = make_layer('name: "s" type: "Scale" scale_param { axis: 0 bias_term: true }',
                          [(2, 3), (2,)])
    assert layer.blobs[0].shape == (2,)                    # only the bias is a blob
    x, s = rand(2, 3), rand(2, seed=3)
    assert torch.allclose(layer.forward([x, s])[0], x * s.reshape(2, 1) + layer.blobs[0].reshape(2, 1))
    assert gradcheck(layer, [x, s])
    with pytest.raises(UserError, match="does not match"):
        make_layer('name: "s" type: "Scale"', [(2, 3, 4), (4,)])


def test_bias_layer():
    layer, _ = make_layer('name: "b" type: "Bias" bias_param { filler { type: "gaussian" } }',
                          [(2, 3, 2)])
    x = rand(2, 3, 2)
    assert torch.allclose(layer.forward([x])[0], x + layer.blobs[0].reshape(1, 3, 1))
    assert gradcheck(layer, [x])


# ---------------------------------------------------------------- InnerProduct

@pytest.mark.parametrize("axis,transpose", [(1, False), (2, False), (1, True), (-1, False)])
def test_inner_product(axis, transpose):
    shape = (2, 3, 4)
    text = (f'name: "ip" type: "InnerProduct" inner_product_param {{ num_output: 5 axis: {axis} '
            f'transpose: {str(transpose).lower()} weight_filler {{ type: "gaussian" }} '
            'bias_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [shape])
    a = axis % 3
    k = int(np.prod(shape[a:]))
    assert tops[0] == shape[:a] + (5,)
    w, b = layer.blobs
    assert w.shape == ((k, 5) if transpose else (5, k))
    x = rand(*shape)
    flat = x.reshape(-1, k)
    want = flat @ (w if transpose else w.t()) + b
    assert torch.allclose(layer.forward([x])[0].reshape(-1, 5), want)
    assert gradcheck(layer, [x])


def test_inner_product_input_change_is_refused():
    layer, _ = make_layer('name: "fc" type: "InnerProduct" inner_product_param { num_output: 5 }',
                          [(2, 320, 1, 1)])
    with pytest.raises(UserError, match=r"layer 'fc'.*1280 features.*expect 320"):
        layer.reshape([(2, 320, 2, 2)])


# ---------------------------------------------------------------- element-wise

def test_relu_negative_slope_and_gradient_at_zero():
    layer, _ = make_layer('name: "r" type: "ReLU" relu_param { negative_slope: 0.1 }', [(5,)])
    x = torch.tensor([-2.0, -0.0, 0.0, 1.5, -1.0], dtype=torch.float64, requires_grad=True)
    y = layer.forward([x])[0]
    slope = float(np.float32(0.1))                         # the proto holds a float
    assert torch.allclose(y, torch.tensor([-0.2, 0, 0, 1.5, -0.1], dtype=torch.float64))
    y.sum().backward()
    assert x.grad.tolist() == [slope, slope, slope, 1.0, slope]   # slope where x <= 0
    layer, _ = make_layer('name: "r" type: "ReLU"', [(3,)])
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    layer.forward([x])[0].sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]
    assert gradcheck(layer, [rand(3, 4) + 0.01])


def test_prelu_default_quarter_slope_and_gradient():
    layer, _ = make_layer('name: "p" type: "PReLU"', [(2, 3, 2, 2)])
    assert torch.equal(layer.blobs[0], torch.full((3,), 0.25, dtype=torch.float64))
    x = rand(2, 3, 2, 2)
    assert torch.allclose(layer.forward([x])[0], torch.where(x > 0, x, 0.25 * x))
    assert gradcheck(layer, [x])
    layer, _ = make_layer('name: "p" type: "PReLU" prelu_param { channel_shared: true }',
                          [(2, 3)])
    assert layer.blobs[0].shape == ()
    assert gradcheck(layer, [rand(2, 3)])


def test_dropout_scales_kept_units_in_train_and_is_identity_in_test():
    torch.manual_seed(0)
    layer, _ = make_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 0.3 }',
                          [(2000,)])
    x = torch.rand(2000, dtype=torch.float64) + 1
    y = layer.forward([x])[0]
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.7)
    assert abs(kept.double().mean().item() - 0.7) < 0.05
    test_layer, _ = make_layer('name: "d" type: "Dropout"', [(10,)], phase=TEST)
    x = rand(10)
    assert torch.equal(test_layer.forward([x])[0], x)
    with pytest.raises(UserError, match="dropout_ratio"):
        make_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 1 }', [(3,)])


@pytest.mark.parametrize("kind,func", [("Sigmoid", torch.sigmoid), ("TanH", torch.tanh),
                                       ("AbsVal", torch.abs)])
def test_simple_neurons(kind, func):
    layer, _ = make_layer(f'name: "n" type: "{kind}"', [(3, 4)])
    x = rand(3, 4)
    assert torch.allclose(layer.forward([x])[0], func(x))
    assert gradcheck(layer, [x])


def test_power_and_elu():
    layer, _ = make_layer('name: "p" type: "Power" power_param { power: 2 scale: 0.5 shift: 1 }',
                          [(6,)])
    x = rand(6)
    assert torch.allclose(layer.forward([x])[0], (1 + 0.5 * x) ** 2)
    assert gradcheck(layer, [x])
    layer, _ = make_layer('name: "e" type: "ELU" elu_param { alpha: 0.5 }', [(6,)])
    assert torch.allclose(layer.forward([x])[0], torch.where(x > 0, x, 0.5 * (torch.exp(x) - 1)))
    assert gradcheck(layer, [x])


def test_lrn_across_and_within_channels():
    layer, _ = make_layer('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 0.3 beta: 0.75 '
                          'k: 2 }', [(1, 4, 2, 2)])
    x = rand(1, 4, 2, 2)
    sq = torch.nn.functional.pad(x * x, (0, 0, 0, 0, 1, 1))
    scale = 2 + 0.3 / 3 * (sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:])
    assert torch.allclose(layer.forward([x])[0], x * scale ** -0.75)
    assert gradcheck(layer, [x])
    layer, _ = make_layer('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 0.3 beta: 0.75 '
                          'norm_region: WITHIN_CHANNEL }', [(1, 2, 3, 3)])
    x = rand(1, 2, 3, 3)
    padded = torch.nn.functional.pad(x * x, (1, 1, 1, 1))
    window = sum(padded[:, :, i:i + 3, j:j + 3] for i in range(3) for j in range(3)) / 9
    assert torch.allclose(layer.forward([x])[0], x * (1 + 0.3 * window) ** -0.75)
    assert gradcheck(layer, [x])


# ---------------------------------------------------------------- Softmax, loss, accuracy

def test_softmax_along_axis():
    layer, _ = make_layer('name: "s" type: "Softmax" softmax_param { axis: 2 }', [(2, 3, 4)])
    x = rand(2, 3, 4)
    want = torch.exp(x) / torch.exp(x).sum(2, keepdim=True)
    assert torch.allclose(layer.forward([x])[0], want)
    assert gradcheck(layer, [x])


def _loss(text, x, labels):
    layer, tops = make_layer('name: "loss" type: "SoftmaxWithLoss" ' + text,
                             [tuple(x.shape), tuple(labels.shape)])
    return layer, layer.forward([x, labels])


@pytest.mark.parametrize("mode,normaliser", [("FULL", 6), ("VALID", 4), ("BATCH_SIZE", 2),
                                             ("NONE", 1)])
def test_softmax_loss_normalization_and_ignore_label(mode, normaliser):
    x = rand(2, 5, 3)  # outer 2, classes 5, inner 3: 6 positions
    labels = torch.tensor([[0., 4., -1.], [2., -1., 1.]], dtype=torch.float64)
    layer, (loss,) = _loss(f'loss_param {{ ignore_label: -1 normalization: {mode} }}', x, labels)
    p = torch.softmax(x, 1)
    total = 0.0
    for n in range(2):
        for i in range(3):
            if labels[n, i] >= 0:
                total -= math.log(p[n, int(labels[n, i]), i])
    assert loss.item() == pytest.approx(total / normaliser)
    assert gradcheck(layer, [x, labels], wrt=[0])
    # the gradient is (p - onehot) / normaliser at non-ignored positions, 0 elsewhere
    xg = x.clone().requires_grad_(True)
    layer.forward([xg, labels])[0].backward()
    onehot = torch.zeros_like(p)
    for n in range(2):
        for i in range(3):
            if labels[n, i] >= 0:
                onehot[n, int(labels[n, i]), i] = 1
    valid = (labels >= 0).double().unsqueeze(1)
    assert torch.allclose(xg.grad, (p - onehot) * valid / normaliser)


def test_softmax_loss_defaults_and_deprecated_normalize():
    x, labels = rand(4, 3), torch.tensor([0., 1., 2., 1.], dtype=torch.float64)
    layer, (loss,) = _loss('', x, labels)
    assert list(layer.param.loss_weight) == [] and layer.loss_layer   # Net adds weight 1
    want = -torch.log_softmax(x, 1)[range(4), [0, 1, 2, 1]].mean()
    assert loss.item() == pytest.approx(want.item())
    _, (loss,) = _loss('loss_param { normalize: false }', x, labels)   # BATCH_SIZE
    assert loss.item() == pytest.approx(want.item())
    _, (loss,) = _loss('loss_param { normalization: NONE }', x, labels)
    assert loss.item() == pytest.approx(4 * want.item())


def test_softmax_loss_clamps_at_flt_min_but_keeps_caffes_gradient():
    x = torch.tensor([[0.0, 200.0]], dtype=torch.float64, requires_grad=True)
    layer, (loss,) = _loss('', x, torch.tensor([0.0], dtype=torch.float64))
    assert loss.item() == pytest.approx(-math.log(1.1754943508222875e-38))
    loss.backward()
    assert torch.allclose(x.grad, torch.tensor([[-1.0, 1.0]], dtype=torch.float64))


def test_softmax_loss_label_out_of_range_and_shape_checks():
    with pytest.raises(UserError, match=r"layer 'loss'.*label 7 is out of range for 5 classes"):
        _loss('', rand(2, 5), torch.tensor([1., 7.], dtype=torch.float64))
    with pytest.raises(UserError, match="number of labels"):
        make_layer('name: "loss" type: "SoftmaxWithLoss"', [(2, 5, 3), (2,)])


def test_accuracy_top_k_and_ties_count_as_wrong():
    layer, tops = make_layer('name: "a" type: "Accuracy"', [(4, 3), (4,)])
    assert tops == [()]
    x = torch.tensor([[0.1, 0.5, 0.4],     # label 1: right
                      [0.3, 0.3, 0.4],     # label 0: wrong
                      [0.5, 0.5, 0.0],     # label 0: tie with class 1 -> wrong
                      [0.2, 0.2, 0.6]])    # label 2: right
    labels = torch.tensor([1., 0., 0., 2.])
    assert layer.forward([x, labels])[0].item() == pytest.approx(0.5)
    layer, _ = make_layer('name: "a" type: "Accuracy" accuracy_param { top_k: 2 }', [(4, 3), (4,)])
    # row 1: two other classes score >= its 0.3 (one by a tie): wrong even at top-2
    assert layer.forward([x, labels])[0].item() == pytest.approx(0.75)
    layer, tops = make_layer('name: "a" type: "Accuracy" top: "a" top: "per_class" '
                             'accuracy_param { ignore_label: 2 }', [(4, 3), (4,)])
    acc, per_class = layer.forward([x, labels])
    assert acc.item() == pytest.approx(1 / 3)          # label 2 ignored: 1 right of 3
    assert per_class.tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert tops[1] == (3,)


# ---------------------------------------------------------------- structure

def test_eltwise_sum_prod_max():
    a, b, c = rand(2, 3), rand(2, 3, seed=1), rand(2, 3, seed=2)
    layer, _ = make_layer('name: "e" type: "Eltwise" eltwise_param { coeff: 1 coeff: -0.5 '
                          'coeff: 2 }', [(2, 3)] * 3)
    assert torch.allclose(layer.forward([a, b, c])[0], a - 0.5 * b + 2 * c)
    assert gradcheck(layer, [a, b, c])
    layer, _ = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: PROD }',
                          [(2, 3)] * 3)
    assert torch.allclose(layer.forward([a, b, c])[0], a * b * c)
    assert gradcheck(layer, [a, b, c])
    layer, _ = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: MAX }',
                          [(2, 3)] * 3)
    assert torch.equal(layer.forward([a, b, c])[0], torch.max(torch.max(a, b), c))
    assert gradcheck(layer, [a, b, c])
    with pytest.raises(UserError, match="coeff"):
        make_layer('name: "e" type: "Eltwise" eltwise_param { coeff: 1 }', [(2,)] * 2)


def test_eltwise_max_tie_gradient_follows_caffes_loop():
    layer, _ = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: MAX }', [(1,)] * 3)
    xs = [torch.tensor([2.0], requires_grad=True) for _ in range(3)]
    layer.forward(xs)[0].backward()
    # 0 vs 1 tie: bottom 1 wins; bottom 2 only replaces on strictly greater
    assert [x.grad.item() for x in xs] == [0.0, 1.0, 0.0]


def test_concat_slice_flatten_reshape_split_silence():
    a, b = rand(2, 3, 2), rand(2, 1, 2, seed=1)
    layer, tops = make_layer('name: "c" type: "Concat"', [(2, 3, 2), (2, 1, 2)])
    assert tops[0] == (2, 4, 2) and torch.equal(layer.forward([a, b])[0], torch.cat([a, b], 1))
    assert gradcheck(layer, [a, b])
    layer, tops = make_layer('name: "c" type: "Concat" concat_param { axis: -1 }',
                             [(2, 3, 2), (2, 3, 1)])
    assert tops[0] == (2, 3, 3)
    layer, tops = make_layer('name: "s" type: "Slice" top: "x" top: "y" top: "z" '
                             'slice_param { slice_point: 1 slice_point: 3 }', [(2, 4, 2)])
    assert tops == [(2, 1, 2), (2, 2, 2), (2, 1, 2)]
    x = rand(2, 4, 2)
    parts = layer.forward([x])
    assert torch.equal(torch.cat(parts, 1), x)
    layer, tops = make_layer('name: "f" type: "Flatten"', [(2, 3, 4, 5)])
    assert tops[0] == (2, 60)
    layer, tops = make_layer('name: "f" type: "Flatten" flatten_param { axis: 1 end_axis: 2 }',
                             [(2, 3, 4, 5)])
    assert tops[0] == (2, 12, 5)
    layer, tops = make_layer('name: "r" type: "Reshape" reshape_param { shape { dim: 0 dim: -1 '
                             'dim: 2 } }', [(2, 3, 4)])
    assert tops[0] == (2, 6, 2)
    layer, tops = make_layer('name: "r" type: "Reshape" reshape_param { shape { dim: 2 dim: 2 } '
                             'axis: 1 num_axes: 1 }', [(3, 4, 5)])
    assert tops[0] == (3, 2, 2, 5)
    with pytest.raises(UserError, match="divisible"):
        make_layer('name: "r" type: "Reshape" reshape_param { shape { dim: 5 dim: -1 } }',
                   [(2, 3)])
    layer, tops = make_layer('name: "sp" type: "Split" top: "a" top: "b"', [(2, 2)])
    x = rand(2, 2).requires_grad_(True)
    ya, yb = layer.forward([x])
    (ya * 2 + yb * 3).sum().backward()
    assert torch.equal(x.grad, torch.full((2, 2), 5.0, dtype=torch.float64))  # diffs add
    layer, tops = make_layer('name: "s" type: "Silence" bottom: "x"', [(2, 2)])
    assert tops == [] and layer.forward([x]) == []


def test_every_registered_type_is_tested_here():
    """... or in a family's own file, tests/test_engine_layers_<family>.py."""
    import glob
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    source = "".join(open(p).read() for p in sorted(glob.glob(os.path.join(
        here, "test_engine_layers*.py"))))
    untested = [t for t in LAYERS if f'"{t}"' not in source and t not in ("Data", "Input")]
    assert untested == []
