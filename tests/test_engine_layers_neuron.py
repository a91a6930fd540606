"""The element-wise layers added for issue 12 (BNLL, Clip, Exp, Log, Swish,
Threshold) against Caffe's formulas worked out here with numpy, their gradients
against finite differences, Caffe's in-place backward, and their errors."""
import math

import numpy as np
import pytest
import torch

from bnface_caffe.engine import Net
from bnface_caffe.errors import UserError
from engine_util import make_layer, net_param, rand
from test_engine_layers import gradcheck

X = np.array([[-60.0, -3.0, -0.5, 0.0], [0.25, 1.0, 2.5, 60.0]])


def forward(text, x):
    layer, tops = make_layer(text, [x.shape])
    assert tops == [tuple(x.shape)]
    return layer, layer.forward([torch.tensor(x)])[0].detach().numpy()


def input_grad(text, x, seed=3):
    """d(sum(r * top))/dx for a fixed random r, through the layer's backward."""
    layer, _ = make_layer(text, [x.shape])
    xt = torch.tensor(x, requires_grad=True)
    r = rand(*x.shape, seed=seed)
    (layer.forward([xt])[0] * r).sum().backward()
    return xt.grad.numpy(), r.numpy()


# ---------------------------------------------------------------- BNLL

def test_bnll_is_softplus_written_both_ways_round():
    _, y = forward('name: "b" type: "BNLL"', X)
    want = np.where(X > 0, X + np.log(1 + np.exp(-X)), np.log(1 + np.exp(X)))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-300)
    assert y[1, 3] == 60.0 and y[0, 0] == pytest.approx(math.exp(-60), rel=1e-12)


def test_bnll_gradient():
    layer, _ = make_layer('name: "b" type: "BNLL"', [(3, 4)])
    assert gradcheck(layer, [rand(3, 4) * 3])
    grad, r = input_grad('name: "b" type: "BNLL"', X)
    e = np.exp(np.minimum(X, 50))          # Caffe clips the exponent at 50
    np.testing.assert_allclose(grad, r * e / (e + 1), rtol=1e-12)


# ---------------------------------------------------------------- Clip

def test_clip_forward_and_gradient_window_is_closed():
    text = 'name: "c" type: "Clip" clip_param { min: -0.5 max: 1 }'
    _, y = forward(text, X)
    np.testing.assert_array_equal(y, np.maximum(-0.5, np.minimum(X, 1)))
    grad, r = input_grad(text, X)
    inside = (X >= -0.5) & (X <= 1)        # both ends pass the gradient (x = -0.5 and 1)
    np.testing.assert_array_equal(grad, r * inside)
    assert inside.sum() == 4
    layer, _ = make_layer(text, [(3, 4)])
    assert gradcheck(layer, [rand(3, 4)])


def test_clip_min_above_max_gives_min_like_caffe():
    _, y = forward('name: "c" type: "Clip" clip_param { min: 2 max: 1 }', X)
    assert (y == 2).all()


def test_clip_in_place_backward_reads_the_clipped_top():
    # In place, Caffe's backward tests the overwritten bottom (the clipped value),
    # which always lies within [min, max]: every gradient passes.
    grad, r = input_grad('name: "c" type: "Clip" bottom: "x" top: "x" '
                         'clip_param { min: -0.5 max: 1 }', X)
    np.testing.assert_array_equal(grad, r)


def test_clip_needs_min_and_max():
    with pytest.raises(UserError, match=r"layer 'c' \(Clip\).*both min and max"):
        make_layer('name: "c" type: "Clip" clip_param { min: 0 }', [(2,)])


# ---------------------------------------------------------------- Exp

@pytest.mark.parametrize("params,func", [
    ("", lambda x: np.exp(x)),
    ("base: 2", lambda x: 2.0 ** x),
    ("base: 2 scale: 0.5 shift: 1", lambda x: 2.0 ** (1 + 0.5 * x)),
    ("scale: -1 shift: 0.25", lambda x: np.exp(0.25 - x)),
    ("base: 1 scale: 3", lambda x: np.ones_like(x)),
])
def test_exp_is_base_to_the_shifted_scaled_input(params, func):
    text = f'name: "e" type: "Exp" exp_param {{ {params} }}'
    x = X / 20                               # keep 2^x and e^x in range
    _, y = forward(text, x)
    np.testing.assert_allclose(y, func(x), rtol=1e-6)
    layer, _ = make_layer(text, [(3, 4)])
    assert gradcheck(layer, [rand(3, 4)])


@pytest.mark.parametrize("base", [0, -2])
def test_exp_and_log_refuse_a_non_positive_base(base):
    for kind in ("Exp", "Log"):
        with pytest.raises(UserError, match=rf"layer 'n' \({kind}\).*strictly positive"):
            make_layer(f'name: "n" type: "{kind}" {kind.lower()}_param {{ base: {base} }}',
                       [(2,)])


# ---------------------------------------------------------------- Log

@pytest.mark.parametrize("params,func", [
    ("", lambda x: np.log(x)),
    ("base: 10", lambda x: np.log10(x)),
    ("base: 2 scale: 3 shift: 0.5", lambda x: np.log2(0.5 + 3 * x)),
])
def test_log_is_the_log_in_base_of_the_shifted_scaled_input(params, func):
    text = f'name: "l" type: "Log" log_param {{ {params} }}'
    x = np.abs(X) / 7 + 0.1
    _, y = forward(text, x)
    np.testing.assert_allclose(y, func(x), rtol=1e-6)
    layer, _ = make_layer(text, [(3, 4)])
    assert gradcheck(layer, [rand(3, 4).abs() + 0.2])


def test_log_base_one_is_refused_and_in_place_backward_is_caffes_aliased_diff():
    with pytest.raises(UserError, match="base other than 1"):
        make_layer('name: "l" type: "Log" log_param { base: 1 }', [(2,)])
    # In place Caffe computes scale/ln(base)/(scale*x + shift) from the overwritten
    # bottom (the top) into the shared diff, then multiplies it by the diff, itself.
    x = np.abs(X) / 7 + 0.1
    grad, r = input_grad('name: "l" type: "Log" bottom: "x" top: "x" log_param { base: 2 '
                         'scale: 3 shift: 0.5 }', x)
    top = np.log2(0.5 + 3 * x)
    scale = np.float64(np.float32(3 / np.float32(math.log(2))))
    np.testing.assert_allclose(grad, (scale / (3 * top + 0.5)) ** 2, rtol=1e-6)


def test_bnll_in_place_backward_reads_the_top():
    grad, r = input_grad('name: "b" type: "BNLL" bottom: "x" top: "x"', X)
    top = np.logaddexp(0, X)
    e = np.exp(np.minimum(top, 50))
    np.testing.assert_allclose(grad, r * e / (e + 1), rtol=1e-12)


# ---------------------------------------------------------------- Swish

@pytest.mark.parametrize("beta", [1.0, 0.5, -2.0])
def test_swish(beta):
    text = f'name: "s" type: "Swish" swish_param {{ beta: {beta} }}'
    _, y = forward(text, X / 10)
    x = X / 10
    np.testing.assert_allclose(y, x / (1 + np.exp(-beta * x)), rtol=1e-12)
    layer, _ = make_layer(text, [(3, 4)])
    assert gradcheck(layer, [rand(3, 4)])
    # Caffe's backward: beta*y + sigmoid(beta*x) * (1 - beta*y)
    grad, r = input_grad(text, x)
    sig = 1 / (1 + np.exp(-beta * x))
    yy = x * sig
    np.testing.assert_allclose(grad, r * (beta * yy + sig * (1 - beta * yy)), rtol=1e-10)


# ---------------------------------------------------------------- Threshold

def test_threshold_is_strictly_greater():
    _, y = forward('name: "t" type: "Threshold" threshold_param { threshold: 0.25 }', X)
    np.testing.assert_array_equal(y, (X > 0.25).astype(float))
    assert y[1, 0] == 0                     # x == threshold gives 0
    _, y = forward('name: "t" type: "Threshold"', X)
    np.testing.assert_array_equal(y, (X > 0).astype(float))


def test_threshold_has_no_backward():
    layer, _ = make_layer('name: "t" type: "Threshold"', [(2, 4)])
    x = torch.tensor(X, requires_grad=True)
    y = layer.forward([x])[0]
    with pytest.raises(UserError, match=r"layer 't' \(Threshold\).*no backward"):
        y.sum().backward()
    # without a gradient to produce, it just runs
    assert layer.forward([torch.tensor(X)])[0].requires_grad is False


def test_threshold_feeding_a_loss_stops_backward_with_one_clear_error():
    net = Net(net_param('''
        layer { name: "in" type: "Input" top: "x" top: "label"
                input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc"
                inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
        layer { name: "t" type: "Threshold" bottom: "fc" top: "t" }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "t" bottom: "label" top: "loss" }
    '''))
    net.set_input("x", rand(2, 3).float())
    net.forward()
    with pytest.raises(UserError, match=r"layer 't' \(Threshold\)"):
        net.backward()
