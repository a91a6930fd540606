"""The shape and structure layers added for issue 12 (ArgMax, BatchReindex, Crop,
Embed, Filter, Im2col, MVN, Parameter, Reduction, SPP, Tile) against Caffe's
loops and formulas written out here, their gradients against finite
differences, Caffe's refusals to backpropagate, and their errors."""
import itertools

import numpy as np
import pytest
import torch

from bnface_caffe.engine import Net
from bnface_caffe.errors import UserError
from engine_util import make_layer, net_param, rand
from test_engine_layers import gradcheck


def run(layer, *inputs):
    return [y.detach().numpy() for y in layer.forward([torch.as_tensor(x) for x in inputs])]


def refuses_backward(layer, inputs, grad_index, match):
    """Backward through top 0 with bottom `grad_index` needing a gradient: a UserError."""
    inputs = [torch.as_tensor(x).clone().requires_grad_(i == grad_index)
              for i, x in enumerate(inputs)]
    top = layer.forward(inputs)[0]
    with pytest.raises(UserError, match=match):
        top.sum().backward()


# ---------------------------------------------------------------- ArgMax

def ranked(values):
    """Indices by value, largest first; equal values: the larger index first."""
    return sorted(range(len(values)), key=lambda j: (values[j], j), reverse=True)


def test_argmax_over_each_item_with_and_without_values():
    x = rand(2, 3, 2).numpy()
    x[1].flat[1] = x[1].flat[4] = x[1].max() + 1          # a tie for the top in item 1
    layer, tops = make_layer('name: "a" type: "ArgMax"', [(2, 3, 2)])
    assert tops == [(2, 1, 1)]
    (y,) = run(layer, x)
    assert y[0, 0, 0] == np.argmax(x[0]) and y[1, 0, 0] == 4   # the tie goes to index 4
    layer, tops = make_layer('name: "a" type: "ArgMax" argmax_param { top_k: 3 '
                             'out_max_val: true }', [(2, 3, 2)])
    assert tops == [(2, 2, 3)]
    (y,) = run(layer, x)
    for n in range(2):
        flat = x[n].reshape(-1)
        order = ranked(flat)[:3]
        assert y[n, 0].tolist() == order
        assert y[n, 1].tolist() == [flat[j] for j in order]
    layer, tops = make_layer('name: "a" type: "ArgMax" argmax_param { top_k: 2 }',
                             [(2, 3, 4, 5)])
    assert tops == [(2, 1, 2, 1)]                          # 4-D in: 4-D out, 1s padded


@pytest.mark.parametrize("axis", [1, 2, -1])
@pytest.mark.parametrize("values", [False, True])
def test_argmax_along_an_axis(axis, values):
    x = rand(2, 4, 3).numpy().round(1)                     # rounding makes some ties
    text = (f'name: "a" type: "ArgMax" argmax_param {{ top_k: 2 axis: {axis} '
            f'out_max_val: {str(values).lower()} }}')
    layer, tops = make_layer(text, [(2, 4, 3)])
    a = axis % 3
    want_shape = list(x.shape)
    want_shape[a] = 2
    assert tops == [tuple(want_shape)]
    (y,) = run(layer, x)
    moved, got = np.moveaxis(x, a, -1), np.moveaxis(y, a, -1)
    for idx in itertools.product(*[range(d) for d in moved.shape[:-1]]):
        order = ranked(list(moved[idx]))[:2]
        want = [moved[idx][j] for j in order] if values else order
        assert got[idx].tolist() == want


def test_argmax_errors_and_no_backward():
    with pytest.raises(UserError, match=r"layer 'a' \(ArgMax\).*top_k \(7\).*6"):
        make_layer('name: "a" type: "ArgMax" argmax_param { top_k: 7 }', [(2, 3, 2)])
    with pytest.raises(UserError, match="top_k .*axis 1"):
        make_layer('name: "a" type: "ArgMax" argmax_param { top_k: 4 axis: 1 }', [(2, 3, 2)])
    with pytest.raises(UserError, match="at least 1"):
        make_layer('name: "a" type: "ArgMax" argmax_param { top_k: 0 }', [(2, 3)])
    layer, _ = make_layer('name: "a" type: "ArgMax" argmax_param { out_max_val: true }',
                          [(2, 3)])
    refuses_backward(layer, [rand(2, 3)], 0, r"layer 'a' \(ArgMax\).*no backward")


# ---------------------------------------------------------------- BatchReindex

def test_batch_reindex_picks_items_and_adds_their_gradients():
    layer, tops = make_layer('name: "r" type: "BatchReindex"', [(3, 2, 2), (4,)])
    assert tops == [(4, 2, 2)]
    x = rand(3, 2, 2)
    index = torch.tensor([2.0, 0.0, 2.0, 1.7], dtype=torch.float64)   # 1.7 -> 1
    (y,) = run(layer, x, index)
    np.testing.assert_array_equal(y, x.numpy()[[2, 0, 2, 1]])
    xg = x.clone().requires_grad_(True)
    r = rand(4, 2, 2, seed=5)
    (layer.forward([xg, index])[0] * r).sum().backward()
    want = np.zeros((3, 2, 2))
    for row, src in enumerate([2, 0, 2, 1]):
        want[src] += r[row].numpy()
    np.testing.assert_allclose(xg.grad.numpy(), want)
    assert gradcheck(layer, [x, index], wrt=[0])
    refuses_backward(layer, [x, index], 1, r"layer 'r' \(BatchReindex\).*index")


def test_batch_reindex_errors():
    layer, _ = make_layer('name: "r" type: "BatchReindex"', [(3, 2), (2,)])
    for bad in ([0.0, 3.0], [-0.5, 1.0]):
        with pytest.raises(UserError, match=r"layer 'r' \(BatchReindex\).*out of range for a "
                                            r"batch of 3"):
            layer.forward([rand(3, 2), torch.tensor(bad, dtype=torch.float64)])
    with pytest.raises(UserError, match="one axis"):
        make_layer('name: "r" type: "BatchReindex"', [(3, 2), (2, 1)])


# ---------------------------------------------------------------- Crop

@pytest.mark.parametrize("params,want", [
    ("offset: 1 offset: 2", (slice(None), slice(None), slice(1, 4), slice(2, 4))),
    ("offset: 1", (slice(None), slice(None), slice(1, 4), slice(1, 3))),
    ("", (slice(None), slice(None), slice(0, 3), slice(0, 2))),
    ("axis: 1 offset: 1 offset: 0 offset: 3", (slice(None), slice(1, 2), slice(0, 3),
                                                slice(3, 5))),
    ("axis: -1 offset: 4", (slice(None), slice(None), slice(None), slice(4, 6))),
])
def test_crop(params, want):
    layer, tops = make_layer(f'name: "c" type: "Crop" crop_param {{ {params} }}',
                             [(2, 3, 5, 6), (1, 1, 3, 2)])
    x, like = rand(2, 3, 5, 6), rand(1, 1, 3, 2)
    expect = x.numpy()[want]
    assert tops == [expect.shape]
    np.testing.assert_array_equal(run(layer, x, like)[0], expect)
    assert gradcheck(layer, [x, like], wrt=[0])
    xg, lg = x.clone().requires_grad_(True), like.clone().requires_grad_(True)
    layer.forward([xg, lg])[0].sum().backward()
    assert lg.grad is None                       # the reference only gives the size
    assert xg.grad.sum() == expect.size


def test_crop_errors():
    with pytest.raises(UserError, match=r"layer 'c' \(Crop\).*axis 3 is out of bounds.*"
                                        r"size 2 at offset 5"):
        make_layer('name: "c" type: "Crop" crop_param { offset: 0 offset: 5 }',
                   [(2, 3, 5, 6), (1, 1, 3, 2)])
    with pytest.raises(UserError, match="3 offsets"):
        make_layer('name: "c" type: "Crop" crop_param { offset: 0 offset: 0 offset: 0 }',
                   [(2, 3, 5, 6), (1, 1, 3, 2)])
    with pytest.raises(UserError, match="fewer axes"):
        make_layer('name: "c" type: "Crop"', [(2, 3, 5, 6), (3, 2)])


# ---------------------------------------------------------------- Embed

def test_embed_looks_up_rows_and_learns_only_them():
    text = ('name: "e" type: "Embed" embed_param { num_output: 4 input_dim: 5 '
            'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    layer, tops = make_layer(text, [(2, 3)])
    assert tops == [(2, 3, 4)]
    w, b = (blob.detach().numpy() for blob in layer.blobs)
    assert w.shape == (5, 4) and b.shape == (4,)
    index = torch.tensor([[0.0, 4.0, 2.9], [1.0, 1.0, 3.0]], dtype=torch.float64)
    (y,) = run(layer, index)
    np.testing.assert_allclose(y, w[[[0, 4, 2], [1, 1, 3]]] + b)      # 2.9 truncates to 2
    assert gradcheck(layer, [index], wrt=[])                       # weights and bias
    refuses_backward(layer, [index], 0, r"layer 'e' \(Embed\).*Embed input")


def test_embed_defaults_and_errors():
    layer, _ = make_layer('name: "e" type: "Embed" embed_param { num_output: 2 input_dim: 3 }',
                          [(4,)])
    assert len(layer.blobs) == 2 and not any(b.any() for b in layer.blobs)  # constant 0
    layer, _ = make_layer('name: "e" type: "Embed" embed_param { num_output: 2 input_dim: 3 '
                          'bias_term: false }', [(4,)])
    assert len(layer.blobs) == 1
    with pytest.raises(UserError, match=r"layer 'e' \(Embed\).*index 3 is out of range for "
                                        r"input_dim 3"):
        layer.forward([torch.tensor([0.0, 3.0, 1.0, 2.0])])
    with pytest.raises(UserError, match="input_dim must be > 0"):
        make_layer('name: "e" type: "Embed" embed_param { num_output: 2 }', [(4,)])
    with pytest.raises(UserError, match="num_output must be > 0"):
        make_layer('name: "e" type: "Embed" embed_param { input_dim: 2 }', [(4,)])


# ---------------------------------------------------------------- Filter

def test_filter_keeps_items_with_a_non_zero_selector():
    layer, tops = make_layer('name: "f" type: "Filter" top: "a" top: "b"',
                             [(4, 3), (4,), (4, 1)])
    assert tops == [(4, 3), (4,)]                    # set-up: the whole batch, as Caffe
    a, b = rand(4, 3), rand(4, seed=1)
    selector = torch.tensor([[0.0], [1.0], [0.0], [-2.5]], dtype=torch.float64)
    ya, yb = run(layer, a, b, selector)
    np.testing.assert_array_equal(ya, a.numpy()[[1, 3]])
    np.testing.assert_array_equal(yb, b.numpy()[[1, 3]])
    assert gradcheck(layer, [a, b, selector], wrt=[0, 1])
    ag = a.clone().requires_grad_(True)
    layer.forward([ag, b, selector])[0].sum().backward()
    assert ag.grad[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]      # unselected items get 0
    refuses_backward(layer, [a, b, selector], 2, r"layer 'f' \(Filter\).*selector")


def test_filter_errors():
    with pytest.raises(UserError, match="one top per filtered bottom"):
        make_layer('name: "f" type: "Filter" top: "a"', [(4, 3), (4, 3), (4,)])
    with pytest.raises(UserError, match="size 1 on every axis but the first"):
        make_layer('name: "f" type: "Filter" top: "a"', [(4, 3), (4, 2)])
    with pytest.raises(UserError, match="first dimension 4"):
        make_layer('name: "f" type: "Filter" top: "a"', [(3, 3), (4,)])


def test_filter_in_a_net_feeds_the_selected_items_to_the_loss():
    net = Net(net_param('''
        layer { name: "in" type: "Input" top: "x" top: "label" top: "keep"
                input_param { shape { dim: 5 dim: 3 } shape { dim: 5 } shape { dim: 5 } } }
        layer { name: "f" type: "Filter" bottom: "x" bottom: "label" bottom: "keep"
                top: "fx" top: "flabel" }
        layer { name: "fc" type: "InnerProduct" bottom: "fx" top: "fc"
                inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "flabel" top: "loss" }
    '''))
    x = rand(5, 3).float()
    labels = torch.tensor([0.0, 3.0, 1.0, 2.0, 1.0])
    net.set_input("x", x)
    net.set_input("label", labels)
    net.set_input("keep", torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]))
    loss = net.forward_backward()
    w = net.learnable_params[0].data.double()
    scores = x.double()[[0, 2, 3]] @ w.t()
    want = -torch.log_softmax(scores, 1)[range(3), [0, 1, 2]].mean()
    assert loss == pytest.approx(want.item(), rel=1e-5)
    assert net.learnable_params[0].diff.abs().sum() > 0


# ---------------------------------------------------------------- Im2col

def caffe_im2col(x, kernel, stride, pad, dilation):
    """im2col_nd_cpu for one item [C, spatial...]: rows (c, k...) x columns (out...)."""
    c, spatial = x.shape[0], x.shape[1:]
    out = [int((s + 2 * p - (d * (k - 1) + 1)) / st) + 1    # C++ truncation
           for s, k, st, p, d in zip(spatial, kernel, stride, pad, dilation)]
    cols = np.zeros((c, *kernel, *out))
    for ch in range(c):
        for ks in itertools.product(*[range(k) for k in kernel]):
            for os_ in itertools.product(*[range(o) for o in out]):
                pos = [o * st - p + k * d for o, st, p, k, d in
                       zip(os_, stride, pad, ks, dilation)]
                if all(0 <= q < s for q, s in zip(pos, spatial)):
                    cols[(ch, *ks, *os_)] = x[(ch, *pos)]
    return cols.reshape(c * int(np.prod(kernel)), *out)


@pytest.mark.parametrize("params,shape,kernel,stride,pad,dilation", [
    ("kernel_size: 3", (2, 2, 4, 5), (3, 3), (1, 1), (0, 0), (1, 1)),
    ("kernel_size: 2 stride: 2 pad: 1", (1, 3, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1)),
    ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 dilation: 2",
     (1, 2, 6, 5), (3, 2), (2, 1), (1, 0), (2, 2)),
    ("kernel_size: 2 kernel_size: 1 kernel_size: 3 pad: 1 force_nd_im2col: true",
     (2, 2, 3, 2, 4), (2, 1, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ("kernel_size: 3 stride: 2", (1, 2, 6), (3,), (2,), (0,), (1,)),
    ("kernel_size: 3 stride: 2", (1, 1, 2, 2), (3, 3), (2, 2), (0, 0), (1, 1)),  # C++ truncation
])
def test_im2col_matches_caffes_loops(params, shape, kernel, stride, pad, dilation):
    layer, tops = make_layer(f'name: "i" type: "Im2col" convolution_param {{ {params} }}',
                             [shape])
    x = rand(*shape)
    want = np.stack([caffe_im2col(item, kernel, stride, pad, dilation) for item in x.numpy()])
    assert tops == [want.shape]
    np.testing.assert_array_equal(run(layer, x)[0], want)
    assert gradcheck(layer, [x])


def test_im2col_channel_axis_and_errors():
    layer, tops = make_layer('name: "i" type: "Im2col" convolution_param { kernel_size: 2 '
                             'axis: 2 }', [(2, 3, 4, 5)])
    assert tops == [(2, 3, 8, 4)]                   # 6 items of [4, 5]: 4*2 rows, 4 columns
    x = rand(2, 3, 4, 5)
    want = np.stack([caffe_im2col(item, (2,), (1,), (0,), (1,))
                     for item in x.numpy().reshape(6, 4, 5)]).reshape(2, 3, 8, 4)
    np.testing.assert_array_equal(run(layer, x)[0], want)
    with pytest.raises(UserError, match=r"layer 'i' \(Im2col\).*no spatial axis"):
        make_layer('name: "i" type: "Im2col" convolution_param { kernel_size: 2 }', [(2, 3)])
    with pytest.raises(UserError, match="kernel is required"):
        make_layer('name: "i" type: "Im2col"', [(2, 3, 4, 4)])
    with pytest.raises(UserError, match="too small"):
        make_layer('name: "i" type: "Im2col" convolution_param { kernel_size: 5 }',
                   [(2, 3, 4, 4)])


# ---------------------------------------------------------------- MVN

def mvn(x, across, variance, eps):
    n = x.shape[0]
    rows = x.reshape(n if across else n * x.shape[1], -1)
    centred = rows - rows.mean(1, keepdims=True)
    if variance:
        centred = centred / (np.sqrt((centred ** 2).mean(1, keepdims=True)) + eps)
    return centred


@pytest.mark.parametrize("across", [False, True])
@pytest.mark.parametrize("variance", [False, True])
def test_mvn(across, variance):
    text = (f'name: "m" type: "MVN" mvn_param {{ across_channels: {str(across).lower()} '
            f'normalize_variance: {str(variance).lower()} eps: 0.25 }}')
    layer, tops = make_layer(text, [(2, 3, 2, 4)])
    x = rand(2, 3, 2, 4) * 2 + 1
    eps = float(np.float32(0.25))
    want = mvn(x.numpy(), across, variance, eps).reshape(2, 3, 2, 4)
    np.testing.assert_allclose(run(layer, x)[0], want, rtol=1e-12, atol=1e-12)
    default, _ = make_layer(text.replace("eps: 0.25", ""), [(2, 3, 2, 4)])
    assert gradcheck(default, [x])


def test_mvn_backward_is_caffes_formula_with_eps_in_the_spread():
    layer, _ = make_layer('name: "m" type: "MVN" mvn_param { eps: 0.5 }', [(2, 2, 3)])
    x = (rand(2, 2, 3) * 2).requires_grad_(True)
    r = rand(2, 2, 3, 1, seed=4)
    (layer.forward([x])[0] * r).sum().backward()
    rows, dy = x.detach().numpy().reshape(4, 3), r.numpy().reshape(4, 3)
    centred = rows - rows.mean(1, keepdims=True)
    spread = np.sqrt((centred ** 2).mean(1, keepdims=True)) + 0.5
    y = centred / spread
    want = (dy - dy.mean(1, keepdims=True) - y * (y * dy).mean(1, keepdims=True)) / spread
    np.testing.assert_allclose(x.grad.numpy().reshape(4, 3), want, rtol=1e-12)


def test_mvn_in_place_backward_is_caffes_shared_buffer_result():
    # Caffe's steps with one diff buffer: D = y * sum(y * dy); D += sum(D); then
    # axpby(1, D, -1/dim, D), which OpenBLAS computes as -2/dim * D; / spread.
    layer, _ = make_layer('name: "m" type: "MVN" bottom: "x" top: "x" mvn_param { eps: 0.5 }',
                          [(2, 2, 3)])
    x = (rand(2, 2, 3) * 2).requires_grad_(True)
    r = rand(2, 2, 3, 1, seed=4)
    (layer.forward([x])[0] * r).sum().backward()
    rows, dy = x.detach().numpy().reshape(4, 3), r.numpy().reshape(4, 3)
    centred = rows - rows.mean(1, keepdims=True)
    spread = np.sqrt((centred ** 2).mean(1, keepdims=True)) + 0.5
    y = centred / spread
    buffer = y * (y * dy).sum(1, keepdims=True)
    buffer = buffer + buffer.sum(1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy().reshape(4, 3), buffer * (-2 / 3) / spread,
                               rtol=1e-12)


def test_mvn_top_is_four_axes_and_five_are_refused():
    layer, tops = make_layer('name: "m" type: "MVN" mvn_param { across_channels: true }',
                             [(3, 4)])
    assert tops == [(3, 4, 1, 1)]
    x = rand(3, 4)
    np.testing.assert_allclose(run(layer, x)[0].reshape(3, 4), mvn(x.numpy(), True, True, 1e-9),
                               rtol=1e-6)
    with pytest.raises(UserError, match=r"layer 'm' \(MVN\).*at most 4 axes"):
        make_layer('name: "m" type: "MVN"', [(1, 2, 3, 4, 5)])


# ---------------------------------------------------------------- Parameter

def test_parameter_blob_is_its_top_and_learns_from_its_diff():
    layer, tops = make_layer('name: "p" type: "Parameter" parameter_param { shape { dim: 2 '
                             'dim: 3 } }', [])
    assert tops == [(2, 3)] and layer.blobs[0].shape == (2, 3) and not layer.blobs[0].any()
    assert layer.forward([])[0] is layer.blobs[0]
    net = Net(net_param('''
        layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 2 dim: 3 } } }
        layer { name: "r" type: "Reduction" bottom: "p" top: "r" loss_weight: 0.5
                reduction_param { operation: SUMSQ } }
    '''))
    (param,) = net.learnable_params
    value = rand(2, 3).float()
    param.data.copy_(value)
    loss = net.forward_backward()
    assert loss == pytest.approx(0.5 * float((value.double() ** 2).sum()), rel=1e-6)
    torch.testing.assert_close(param.diff, value, rtol=1e-6, atol=1e-7)   # 0.5 * 2 * p
    with pytest.raises(UserError, match="takes 0 bottom"):
        Net(net_param('''
            layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }
            layer { name: "p" type: "Parameter" bottom: "x" top: "p" }'''))


# ---------------------------------------------------------------- Reduction

@pytest.mark.parametrize("op,func", [
    ("SUM", lambda r: r.sum(-1)), ("ASUM", lambda r: np.abs(r).sum(-1)),
    ("SUMSQ", lambda r: (r ** 2).sum(-1)), ("MEAN", lambda r: r.mean(-1)),
])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_reduction(op, func, axis):
    shape = (2, 3, 4)
    text = (f'name: "r" type: "Reduction" reduction_param {{ operation: {op} axis: {axis} '
            'coeff: -1.5 }')
    layer, tops = make_layer(text, [shape])
    a = axis % 3
    assert tops == [shape[:a]]
    x = rand(*shape)
    want = -1.5 * func(x.numpy().reshape(*shape[:a], -1))
    np.testing.assert_allclose(run(layer, x)[0], want, rtol=1e-12)
    assert gradcheck(layer, [x])


def test_reduction_defaults_to_a_scalar_sum_and_asum_gradient_at_zero_is_zero():
    layer, tops = make_layer('name: "r" type: "Reduction"', [(2, 3)])
    assert tops == [()]
    x = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.0, -0.25]], dtype=torch.float64)
    assert run(layer, x)[0] == pytest.approx(-0.75)
    layer, _ = make_layer('name: "r" type: "Reduction" reduction_param { operation: ASUM }',
                          [(2, 3)])
    xg = x.clone().requires_grad_(True)
    layer.forward([xg])[0].backward()
    assert xg.grad.tolist() == [[1.0, -1.0, 0.0], [1.0, 0.0, -1.0]]   # sign(0) = 0


# ---------------------------------------------------------------- SPP

def spp_windows(size, bins):
    kernel = -(-size // bins)
    pad = (kernel * bins - size + 1) // 2
    out = int(np.ceil((size + 2 * pad - kernel) / kernel)) + 1
    if pad and (out - 1) * kernel >= size + pad:
        out -= 1
    return [(i * kernel - pad, i * kernel - pad + kernel) for i in range(out)], size + pad


def spp(x, height, method):
    n, c, h, w = x.shape
    levels = []
    for level in range(height):
        rows, h_end = spp_windows(h, 2 ** level)
        cols, w_end = spp_windows(w, 2 ** level)
        out = np.zeros((n, c, len(rows), len(cols)))
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                cells = x[:, :, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
                if method == "MAX":
                    out[:, :, i, j] = cells.max((2, 3))
                else:   # the divisor counts padding up to size + pad
                    area = (min(r1, h_end) - r0) * (min(c1, w_end) - c0)
                    out[:, :, i, j] = cells.sum((2, 3)) / area
        levels.append(out)
    if height == 1:
        return levels[0]
    return np.concatenate([y.reshape(n, -1) for y in levels], 1)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("height,shape,top", [
    (1, (2, 3, 5, 4), (2, 3, 1, 1)),
    (2, (1, 2, 5, 7), (1, 2 * (1 + 4))),
    (3, (2, 2, 9, 8), (2, 2 * (1 + 4 + 16))),
])
def test_spp_pyramid(method, height, shape, top):
    layer, tops = make_layer(f'name: "s" type: "SPP" spp_param {{ pyramid_height: {height} '
                             f'pool: {method} }}', [shape])
    assert tops == [top]
    x = rand(*shape)
    np.testing.assert_allclose(run(layer, x)[0], spp(x.numpy(), height, method), rtol=1e-12)
    assert gradcheck(layer, [x])


def test_spp_errors():
    with pytest.raises(UserError, match=r"layer 's' \(SPP\).*pyramid_height"):
        make_layer('name: "s" type: "SPP"', [(1, 1, 4, 4)])
    with pytest.raises(UserError, match=r"pyramid level 2 \(4x4 bins\) of a 3x8 input"):
        make_layer('name: "s" type: "SPP" spp_param { pyramid_height: 3 }', [(1, 1, 3, 8)])
    with pytest.raises(UserError, match="STOCHASTIC"):
        make_layer('name: "s" type: "SPP" spp_param { pyramid_height: 1 pool: STOCHASTIC }',
                   [(1, 1, 4, 4)])
    with pytest.raises(UserError, match="4 axes"):
        make_layer('name: "s" type: "SPP" spp_param { pyramid_height: 1 }', [(1, 4, 4)])


# ---------------------------------------------------------------- Tile

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_tile_repeats_the_block_from_axis_on(axis):
    layer, tops = make_layer(f'name: "t" type: "Tile" tile_param {{ axis: {axis} tiles: 3 }}',
                             [(2, 3, 2)])
    x = rand(2, 3, 2)
    want = np.concatenate([x.numpy()] * 3, axis=axis)
    assert tops == [want.shape]
    np.testing.assert_array_equal(run(layer, x)[0], want)
    assert gradcheck(layer, [x])


def test_tile_errors():
    with pytest.raises(UserError, match=r"layer 't' \(Tile\).*tiles: N.*required"):
        make_layer('name: "t" type: "Tile"', [(2, 3)])
    with pytest.raises(UserError, match="tiles must be > 0"):
        make_layer('name: "t" type: "Tile" tile_param { tiles: 0 }', [(2, 3)])
    with pytest.raises(UserError, match="axis 2 is out of range"):
        make_layer('name: "t" type: "Tile" tile_param { axis: 2 tiles: 2 }', [(2, 3)])
