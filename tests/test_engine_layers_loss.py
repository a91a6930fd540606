"""The loss layers of engine/layers/loss.py against Caffe's formulas worked out here in
numpy, their gradients against finite differences (float64) or, where Caffe's
Backward_cpu is not the exact derivative, against Caffe's backward formula."""
import numpy as np
import pytest
import torch

from bnface_caffe.cli import time_net
from bnface_caffe.engine import Net
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import make_layer, net_param, rand

NORM = caffe_pb2.LossParameter


def gradcheck(layer, inputs, wrt):
    """Finite differences of the layer's loss (top 0) w.r.t. the inputs listed in `wrt`."""
    inputs = [x.detach().clone().requires_grad_(i in wrt) for i, x in enumerate(inputs)]

    def f(*args):
        full = list(inputs)
        for i, a in zip(wrt, args):
            full[i] = a
        return layer.forward(full)[0]

    return torch.autograd.gradcheck(f, [inputs[i] for i in wrt], eps=1e-6, atol=1e-7, rtol=1e-5)


def grads(layer, inputs, wrt, top_diff=1.0):
    """The engine's gradients of top 0 seeded with `top_diff` (Caffe's loss weight)."""
    inputs = [x.detach().clone().requires_grad_(i in wrt) for i, x in enumerate(inputs)]
    loss = layer.forward(inputs)[0]
    loss.backward(torch.tensor(top_diff, dtype=loss.dtype))
    return float(loss.detach()), [inputs[i].grad.numpy() for i in wrt]


# ---------------------------------------------------------------- ContrastiveLoss

def contrastive_case():
    a = np.array([[0.1, 0.2, -0.3], [0.5, -0.4, 0.2], [0.0, 0.3, 0.1], [1.0, 1.0, 1.0]])
    b = np.array([[0.3, 0.1, 0.1], [0.1, 0.2, 0.4], [0.9, -0.5, 0.4], [0.9, 1.1, 0.8]])
    label = np.array([1.0, 0.0, 0.7, 0.0])   # 0.7 is 0 as an int: dissimilar
    return a, b, label


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_forward_both_forms(legacy):
    a, b, label = contrastive_case()
    margin = 0.8
    layer, tops = make_layer(f'name: "c" type: "ContrastiveLoss" contrastive_loss_param '
                             f'{{ margin: {margin} legacy_version: {str(legacy).lower()} }}',
                             [(4, 3, 1, 1), (4, 3, 1, 1), (4, 1, 1, 1)])
    assert tops == [()]
    d2 = ((a - b) ** 2).sum(1)
    expected = 0.0
    for i in range(4):
        if int(label[i]):
            expected += d2[i]
        elif legacy:
            expected += max(np.float32(margin) - d2[i], 0)
        else:
            expected += max(np.float32(margin) - np.sqrt(d2[i]), 0) ** 2
    expected /= 4 * 2
    x = [torch.tensor(v).reshape(s) for v, s in
         ((a, (4, 3, 1, 1)), (b, (4, 3, 1, 1)), (label, (4, 1, 1, 1)))]
    assert float(layer.forward(x)[0]) == pytest.approx(expected, rel=1e-12)


def caffe_contrastive_backward(a, b, label, margin, legacy, top_diff):
    """contrastive_loss_layer.cpp Backward_cpu, written out for bottom 0 (bottom 1: minus)."""
    n = a.shape[0]
    alpha = top_diff / n
    out = np.zeros_like(a)
    for j in range(n):
        diff = a[j] - b[j]
        d2 = diff @ diff
        if int(label[j]):
            out[j] = alpha * diff
            continue
        if legacy:
            mdist, beta = margin - d2, -alpha
        else:
            dist = np.sqrt(d2)
            mdist = margin - dist
            beta = -alpha * mdist / (dist + 1e-4)
        out[j] = beta * diff if mdist > 0 else 0
    return out


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_backward_is_caffes(legacy):
    a, b, label = contrastive_case()
    margin = float(np.float32(0.8))
    layer, _ = make_layer(f'name: "c" type: "ContrastiveLoss" contrastive_loss_param '
                          f'{{ margin: 0.8 legacy_version: {str(legacy).lower()} }}',
                          [(4, 3), (4, 3), (4,)])
    x = [torch.tensor(a), torch.tensor(b), torch.tensor(label)]
    _, (ga, gb) = grads(layer, x, (0, 1), top_diff=0.7)
    want = caffe_contrastive_backward(a, b, label, margin, legacy, 0.7)
    np.testing.assert_allclose(ga, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, -want, rtol=1e-12, atol=1e-15)
    if legacy:   # the legacy form's gradient is the exact derivative
        assert gradcheck(layer, x, (0, 1))
    else:        # ... the other one differs from it only through the + 1e-4
        fd = torch.autograd.functional.jacobian(
            lambda t: layer.forward([t, x[1], x[2]])[0], x[0]).numpy() * 0.7
        np.testing.assert_allclose(ga, fd, rtol=1e-3)


def test_contrastive_shape_checks_and_label_gets_no_gradient():
    with pytest.raises(UserError, match="same channels"):
        make_layer('name: "c" type: "ContrastiveLoss"', [(4, 3), (4, 2), (4,)])
    with pytest.raises(UserError, match="height and width 1"):
        make_layer('name: "c" type: "ContrastiveLoss"', [(4, 3, 2, 1), (4, 3, 2, 1), (4,)])
    with pytest.raises(UserError, match="one label per pair"):
        make_layer('name: "c" type: "ContrastiveLoss"', [(4, 3), (4, 3), (3,)])
    with pytest.raises(UserError, match="'c' \\(ContrastiveLoss\\).*more than 4 axes"):
        make_layer('name: "c" type: "ContrastiveLoss"', [(4, 3, 1, 1, 1), (4, 3), (4,)])
    layer, _ = make_layer('name: "c" type: "ContrastiveLoss"', [(4, 3), (4, 3), (4,)])
    assert layer.allow_force_backward(1) and not layer.allow_force_backward(2)
    a, b, label = contrastive_case()
    lab = torch.tensor(label, requires_grad=True)
    a = torch.tensor(a, requires_grad=True)
    layer.forward([a, torch.tensor(b), lab])[0].backward()
    assert a.grad is not None and lab.grad is None


# ---------------------------------------------------------------- EuclideanLoss

def test_euclidean_forward_gradients_and_dimension_check():
    layer, tops = make_layer('name: "e" type: "EuclideanLoss"', [(3, 2, 2), (3, 4)])
    assert tops == [()]
    a, b = rand(3, 2, 2, seed=1), rand(3, 4, seed=2)
    want = ((a.numpy().reshape(3, 4) - b.numpy()) ** 2).sum() / 3 / 2
    assert float(layer.forward([a, b])[0]) == pytest.approx(want, rel=1e-12)
    assert gradcheck(layer, [a, b], (0, 1))
    _, (ga, gb) = grads(layer, [a, b], (0, 1), top_diff=2.0)
    np.testing.assert_allclose(ga.reshape(3, 4), 2.0 * (a.numpy().reshape(3, 4) - b.numpy()) / 3)
    np.testing.assert_allclose(gb, -ga.reshape(3, 4))
    assert layer.allow_force_backward(1)
    with pytest.raises(UserError, match="'e' \\(EuclideanLoss\\): inputs must have the same dim"):
        make_layer('name: "e" type: "EuclideanLoss"', [(3, 4), (3, 5)])
    with pytest.raises(UserError, match="same first dimension"):
        make_layer('name: "e" type: "EuclideanLoss"', [(3, 4), (2, 6)])


# ---------------------------------------------------------------- HingeLoss

@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_hinge_forward_and_gradient(norm):
    layer, _ = make_layer(f'name: "h" type: "HingeLoss" hinge_loss_param {{ norm: {norm} }}',
                          [(4, 5), (4,)])
    x = rand(4, 5, seed=3) * 1.3
    label = torch.tensor([0.0, 4.0, 2.0, 2.9])    # 2.9 is class 2 (static_cast<int>)
    t = x.numpy().copy()
    for i, c in enumerate([0, 4, 2, 2]):
        t[i, c] *= -1
    m = np.maximum(0, 1 + t)
    want = (m.sum() if norm == "L1" else (m * m).sum()) / 4
    assert float(layer.forward([x, label])[0]) == pytest.approx(want, rel=1e-12)
    assert gradcheck(layer, [x, label], (0,))
    assert not layer.allow_force_backward(1)
    assert "cannot backpropagate to label inputs" in layer.backward_refused(1)


def test_hinge_label_out_of_range_is_one_clear_error():
    layer, _ = make_layer('name: "h" type: "HingeLoss"', [(2, 3), (2,)])
    with pytest.raises(UserError, match="'h' \\(HingeLoss\\): label 3 is out of range for 3"):
        layer.forward([rand(2, 3), torch.tensor([0.0, 3.0])])


# ---------------------------------------------------------------- InfogainLoss

def softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def infogain_expected(x, labels, H, ignore=None, norm=NORM.VALID):
    """Loss over axis 1 of an (N, C, S) input, Caffe's loop."""
    p = softmax(x, 1)
    loss, valid = 0.0, 0
    for i in range(x.shape[0]):
        for j in range(x.shape[2]):
            y = int(labels[i, j])
            if ignore is not None and y == ignore:
                continue
            loss -= sum(H[y, l] * np.log(max(p[i, l, j], 1e-20)) for l in range(x.shape[1]))
            valid += 1
    n = {NORM.FULL: x.shape[0] * x.shape[2], NORM.VALID: valid, NORM.BATCH_SIZE: x.shape[0],
         NORM.NONE: 1}[norm]
    return loss / max(1, n)


def write_blobproto(path, array):
    from bnface_caffe.formats import prototxt
    from bnface_caffe.formats.blobproto import array_to_proto
    prototxt.write_binary(array_to_proto(array.astype(np.float32)), str(path))


@pytest.mark.parametrize("norm,ignore", [(NORM.VALID, None), (NORM.VALID, 2), (NORM.FULL, 2),
                                         (NORM.BATCH_SIZE, None), (NORM.NONE, 1)])
def test_infogain_from_file_forward_gradient_and_softmax_top(tmp_path, norm, ignore):
    H = np.array([[1.0, 0.2, 0.0], [0.1, 2.0, 0.3], [0.0, 0.5, 1.5]], np.float32)
    write_blobproto(tmp_path / "H.binaryproto", H.reshape(1, 1, 3, 3))
    ign = f"ignore_label: {ignore}" if ignore is not None else ""
    layer, tops = make_layer(
        f'name: "ig" type: "InfogainLoss" top: "loss" top: "prob" '
        f'infogain_loss_param {{ source: "{tmp_path}/H.binaryproto" }} '
        f'loss_param {{ normalization: {caffe_pb2.LossParameter.NormalizationMode.Name(norm)} {ign} }}', [(2, 3, 2), (2, 2)])
    assert tops == [(), (2, 3, 2)]
    x = rand(2, 3, 2, seed=5)
    labels = torch.tensor([[0.0, 2.0], [1.0, 2.0]])
    loss, prob = layer.forward([x, labels])
    want = infogain_expected(x.numpy(), labels.numpy(), H.astype(np.float64), ignore, norm)
    assert float(loss) == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(prob.detach().numpy(), softmax(x.numpy(), 1), rtol=1e-12)
    assert gradcheck(layer, [x, labels], (0,))


def test_infogain_third_bottom_and_caffes_gradient_past_the_log_clamp():
    layer, _ = make_layer('name: "ig" type: "InfogainLoss"', [(2, 3), (2,), (3, 3)])
    H = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.0, 3.0]], dtype=torch.float64)
    x = torch.tensor([[0.0, 60.0, 1.0], [2.0, -1.0, 0.5]], dtype=torch.float64)
    labels = torch.tensor([0.0, 2.0])
    x[0, 0] = -60.0      # p[0][0] ~ 1e-52 < 1e-20: the log is clamped, Caffe's gradient is not
    _, (g,) = grads(layer, [x, labels, H], (0,), top_diff=1.0)
    p = softmax(x.numpy(), 1)
    Hn = H.numpy()
    want = np.stack([p[i] * Hn[y].sum() - Hn[y] for i, y in enumerate([0, 2])]) / 2
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-300)
    assert "infogain inputs" in layer.backward_refused(2)
    assert "label inputs" in layer.backward_refused(1)


def test_infogain_errors_are_one_line():
    with pytest.raises(UserError, match="'ig' \\(InfogainLoss\\): the infogain matrix is missing"):
        make_layer('name: "ig" type: "InfogainLoss"', [(2, 3), (2,)])
    with pytest.raises(UserError, match="normalize.*deprecated"):
        make_layer('name: "ig" type: "InfogainLoss" loss_param { normalize: true }',
                   [(2, 3), (2,), (3, 3)])
    with pytest.raises(UserError, match="must be 3x3 for 3 classes"):
        make_layer('name: "ig" type: "InfogainLoss"', [(2, 3), (2,), (2, 2)])
    with pytest.raises(UserError, match="number of labels"):
        make_layer('name: "ig" type: "InfogainLoss"', [(2, 3, 2), (2,), (3, 3)])
    with pytest.raises(UserError, match="missing.binaryproto"):
        make_layer('name: "ig" type: "InfogainLoss" infogain_loss_param { source: '
                   '"missing.binaryproto" }', [(2, 3), (2,)])


# ---------------------------------------------------------------- MultinomialLogisticLoss

def test_multinomial_logistic_forward_gradient_and_clamp():
    layer, _ = make_layer('name: "m" type: "MultinomialLogisticLoss"', [(3, 4), (3, 1, 1, 1)])
    p = torch.softmax(rand(3, 4, seed=9), 1)
    labels = torch.tensor([3.0, 0.0, 1.0]).reshape(3, 1, 1, 1)
    want = -np.log(p.numpy()[[0, 1, 2], [3, 0, 1]]).sum() / 3
    assert float(layer.forward([p, labels])[0]) == pytest.approx(want, rel=1e-12)
    assert gradcheck(layer, [p, labels], (0,))
    zero = p.clone()
    zero[1, 0] = 0.0     # clamped to 1e-20 (a float) in the log and in the gradient
    _, (g,) = grads(layer, [zero, labels], (0,), top_diff=2.0)
    assert g[1, 0] == pytest.approx(-2.0 / 3 / float(np.float32(1e-20)), rel=1e-12)
    assert np.count_nonzero(g) == 3
    with pytest.raises(UserError, match="N x 1 x 1 x 1"):
        make_layer('name: "m" type: "MultinomialLogisticLoss"', [(3, 4), (3, 2)])


# ---------------------------------------------------------------- SigmoidCrossEntropyLoss

@pytest.mark.parametrize("spec,norm", [("", NORM.BATCH_SIZE),
                                       ("normalization: FULL", NORM.FULL),
                                       ("normalization: VALID ignore_label: -1", NORM.VALID),
                                       ("normalization: NONE ignore_label: -1", NORM.NONE),
                                       ("normalize: true", NORM.VALID),
                                       ("normalize: false ignore_label: -1", NORM.BATCH_SIZE)])
def test_sigmoid_cross_entropy_normalization_and_ignore_label(spec, norm):
    layer, tops = make_layer(f'name: "s" type: "SigmoidCrossEntropyLoss" loss_param {{ {spec} }}',
                             [(2, 3, 2), (2, 6)])
    assert tops == [()]
    x = rand(2, 3, 2, seed=11) * 3
    target = torch.tensor([[1.0, 0.0, 0.3, -1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 1.0, 0.8, 0.0]])
    ignore = "ignore_label" in spec
    xs, t = x.numpy().reshape(2, 6), target.numpy()
    s = 1 / (1 + np.exp(-xs))
    per = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    valid = (t.astype(int) != -1) if ignore else np.ones_like(t, bool)
    n = {NORM.FULL: 12, NORM.VALID: valid.sum(), NORM.BATCH_SIZE: 2, NORM.NONE: 1}[norm]
    want = per[valid].sum() / n
    assert float(layer.forward([x, target])[0]) == pytest.approx(want, rel=1e-10)
    _, (g,) = grads(layer, [x, target], (0,))
    np.testing.assert_allclose(g.reshape(2, 6), np.where(valid, s - t, 0) / n, rtol=1e-10)
    assert gradcheck(layer, [x, target], (0,))


def test_sigmoid_cross_entropy_is_stable_for_large_inputs_and_checks_count():
    layer, _ = make_layer('name: "s" type: "SigmoidCrossEntropyLoss"', [(1, 2), (1, 2)])
    loss = layer.forward([torch.tensor([[800.0, -800.0]]), torch.tensor([[0.0, 1.0]])])[0]
    assert float(loss) == pytest.approx(1600.0)
    with pytest.raises(UserError, match="same count"):
        make_layer('name: "s" type: "SigmoidCrossEntropyLoss"', [(2, 3), (2, 2)])


# ---------------------------------------------------------------- in a Net

NET = """
name: "losses"
layer { name: "in" type: "Input" top: "x" top: "y" top: "label" top: "H"
  input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 3 } shape { dim: 4 }
                shape { dim: 3 dim: 3 } } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "fc_y" type: "InnerProduct" bottom: "y" top: "fc_y"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
"""


def test_losses_in_a_net_and_label_gradients_refused_at_setup():
    tail = ('layer { name: "hinge" type: "HingeLoss" bottom: "fc" bottom: "label" top: "h" }\n'
            'layer { name: "ig" type: "InfogainLoss" bottom: "fc" bottom: "label" bottom: "H" '
            'top: "ig" }\n'
            'layer { name: "eu" type: "EuclideanLoss" bottom: "fc" bottom: "fc_y" top: "eu" '
            'loss_weight: 0.5 }\n'
            'layer { name: "con" type: "ContrastiveLoss" bottom: "fc" bottom: "fc_y" '
            'bottom: "label" top: "con" }\n')
    net = Net(net_param(NET + tail))
    assert net.loss_weights == {"con": 1.0, "eu": 0.5, "h": 1.0, "ig": 1.0}
    net.set_input("label", np.array([0, 1, 2, 1], np.float32))
    net.set_input("x", np.random.default_rng(0).standard_normal((4, 3)))
    net.set_input("y", np.random.default_rng(1).standard_normal((4, 3)))
    net.set_input("H", np.eye(3, dtype=np.float32))
    loss = net.forward_backward()
    values = dict(net.outputs())
    assert loss == pytest.approx(values["con"] + 0.5 * values["eu"] + values["h"] + values["ig"],
                                 rel=1e-6)
    assert all(np.abs(p.diff.numpy()).sum() > 0 for p in net.learnable_params)
    # a label computed by a learnable layer: Caffe would LOG(FATAL) in Backward
    bad = 'layer { name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "fc" bottom: "fc_y" }\n'
    with pytest.raises(UserError, match="'sce' \\(SigmoidCrossEntropyLoss\\): bottom 1 \\('fc_y'"
                                        "\\) needs a gradient, but SigmoidCrossEntropyLoss "
                                        "cannot backpropagate to label inputs"):
        Net(net_param(NET + bad))
    Net(net_param(NET + bad), phase=caffe_pb2.TEST)    # never runs backward: allowed
    forced = 'force_backward: true\n' + NET + (
        'layer { name: "ig" type: "InfogainLoss" bottom: "fc" bottom: "label" bottom: "H" }\n')
    with pytest.raises(UserError, match="cannot backpropagate to infogain inputs"):
        Net(net_param(forced))
    explicit = NET + ('layer { name: "m" type: "MultinomialLogisticLoss" bottom: "fc" '
                      'bottom: "label" propagate_down: true propagate_down: true }\n')
    with pytest.raises(UserError, match="MultinomialLogisticLoss cannot backpropagate"):
        Net(net_param(explicit))


def test_time_net_prints_caffes_top_shapes_for_the_losses(tmp_path, capsys):
    write_blobproto(tmp_path / "H.binaryproto", np.eye(3))
    text = NET + f"""
layer {{ name: "hinge" type: "HingeLoss" bottom: "fc" bottom: "label" top: "hinge" }}
layer {{ name: "ig" type: "InfogainLoss" bottom: "fc" bottom: "label" top: "ig" top: "prob"
  loss_weight: 1 loss_weight: 0 infogain_loss_param {{ source: "{tmp_path}/H.binaryproto" }} }}
layer {{ name: "mlr" type: "MultinomialLogisticLoss" bottom: "prob" bottom: "label" top: "mlr" }}
layer {{ name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "fc" bottom: "y" top: "sce" }}
layer {{ name: "eu" type: "EuclideanLoss" bottom: "fc" bottom: "fc_y" top: "eu" }}
layer {{ name: "con" type: "ContrastiveLoss" bottom: "fc" bottom: "fc_y" bottom: "label" top: "con" }}
"""
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    assert time_net.main([str(path), "--iterations", "1"]) == 0
    messages = [line.split("] ", 1)[1] for line in capsys.readouterr().err.splitlines()
                if "] " in line]
    shapes = [m for m in messages if m.startswith("Top shape:")]
    # in, fc, fc_y, the splits of fc / fc_y / label / prob, then the six losses (two tops for ig)
    loss_shapes = ["Top shape: (1)", "Top shape: (1)", "Top shape: 4 3 (12)", "Top shape: (1)",
                   "Top shape: (1)", "Top shape: (1)", "Top shape: (1)"]
    assert shapes[-7:] == loss_shapes
    assert shapes[:6] == ["Top shape: 4 3 (12)", "Top shape: 4 3 (12)", "Top shape: 4 (4)",
                          "Top shape: 3 3 (9)", "Top shape: 4 3 (12)", "Top shape: 4 3 (12)"]
    assert messages.count("    with loss weight 1") == 6
