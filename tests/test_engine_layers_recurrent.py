"""LSTMUnit, LSTM and RNN against the recurrences computed by hand in numpy, their
gradients in float64, and Caffe's parameter layout through a .caffemodel."""
import numpy as np
import pytest
import torch

from bnface_caffe.formats import caffemodel, prototxt
from bnface_caffe.cli import time_net
from bnface_caffe.engine import Net
from bnface_caffe.engine.layers import LAYERS
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log, make_layer, messages, net_param, rand


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_lstm(x, cont, W_xc, b_c, W_hc, h0=None, c0=None, W_static=None, x_static=None):
    """h (T, N, H), h_T, c_T of Caffe's LSTM: gates i, f, o, g in that order."""
    T, N = cont.shape
    H = W_hc.shape[1]
    h = np.zeros((N, H)) if h0 is None else h0
    c = np.zeros((N, H)) if c0 is None else c0
    out = []
    for t in range(T):
        m = cont[t][:, None]
        gates = x[t] @ W_xc.T + b_c + (m * h) @ W_hc.T
        if W_static is not None:
            gates = gates + x_static @ W_static.T
        i, f, o, g = (gates[:, k * H:(k + 1) * H] for k in range(4))
        c = m * sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out), h, c


def numpy_rnn(x, cont, W_xh, b_h, W_hh, W_ho, b_o, h0=None, W_static=None, x_static=None):
    T, N = cont.shape
    h = np.zeros((N, W_hh.shape[0])) if h0 is None else h0
    out = []
    for t in range(T):
        pre = x[t] @ W_xh.T + b_h + (cont[t][:, None] * h) @ W_hh.T
        if W_static is not None:
            pre = pre + x_static @ W_static.T
        h = np.tanh(pre)
        out.append(np.tanh(h @ W_ho.T + b_o))
    return np.stack(out), h


def gradcheck(layer, inputs, wrt, blobs=True):
    """Finite differences of sum(r * top 0) w.r.t. inputs[wrt] and (optionally) the blobs."""
    inputs = [x.detach().clone().requires_grad_(i in wrt) for i, x in enumerate(inputs)]
    leaves = [b.detach().clone().requires_grad_(True) for b in layer.blobs] if blobs else []
    original = list(layer.blobs)
    weight = []

    def f(*args):
        full = list(inputs)
        for i, a in zip(wrt, args):
            full[i] = a
        if blobs:
            layer.blobs = list(args[len(wrt):])
        layer.state = None       # each evaluation starts from a zero state
        out = layer.forward(full)[0]
        if not weight:
            weight.append(rand(*out.shape, seed=7))
        return (out * weight[0]).sum()

    try:
        return torch.autograd.gradcheck(f, [inputs[i] for i in wrt] + leaves, eps=1e-6,
                                        atol=1e-7, rtol=1e-5)
    finally:
        layer.blobs = original


# ---------------------------------------------------------------- LSTMUnit

def test_lstm_unit_forward_and_gradient():
    layer, tops = make_layer('name: "u" type: "LSTMUnit"', [(1, 3, 2), (1, 3, 8), (1, 3)])
    assert tops == [(1, 3, 2), (1, 3, 2)]
    c_prev, gates = rand(1, 3, 2, seed=1), rand(1, 3, 8, seed=2)
    cont = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    c, h = layer.forward([c_prev, gates, cont])
    g = gates.numpy()[0]
    i, f, o, gg = sigmoid(g[:, 0:2]), sigmoid(g[:, 2:4]), sigmoid(g[:, 4:6]), np.tanh(g[:, 6:8])
    want_c = cont.numpy()[0][:, None] * f * c_prev.numpy()[0] + i * gg
    np.testing.assert_allclose(c.detach().numpy()[0], want_c, rtol=1e-12)
    np.testing.assert_allclose(h.detach().numpy()[0], o * np.tanh(want_c), rtol=1e-12)
    for top in (0, 1):
        def f_(cp, gt, top=top):
            out = layer.forward([cp, gt, cont])[top]
            return (out * rand(*out.shape, seed=3 + top)).sum()
        assert torch.autograd.gradcheck(f_, (c_prev.clone().requires_grad_(True),
                                             gates.clone().requires_grad_(True)),
                                        eps=1e-6, atol=1e-7, rtol=1e-5)


def test_lstm_unit_backward_uses_caffes_forget_term_for_fractional_cont():
    layer, _ = make_layer('name: "u" type: "LSTMUnit"', [(1, 1, 1), (1, 1, 4), (1, 1)])
    c_prev = torch.tensor([[[0.7]]], dtype=torch.float64)
    gates = torch.tensor([[[0.1, 0.4, -0.3, 0.2]]], dtype=torch.float64, requires_grad=True)
    cont = torch.tensor([[0.5]], dtype=torch.float64)
    c, _ = layer.forward([c_prev, gates, cont])
    c.backward(torch.ones_like(c))
    f = 0.5 * sigmoid(0.4)
    assert float(gates.grad[0, 0, 1]) == pytest.approx(0.7 * f * (1 - f), rel=1e-12)


def test_lstm_unit_checks_and_refuses_cont_gradient():
    with pytest.raises(UserError, match="'u' \\(LSTMUnit\\): the gate input has 6 channels"):
        make_layer('name: "u" type: "LSTMUnit"', [(1, 3, 2), (1, 3, 6), (1, 3)])
    with pytest.raises(UserError, match="bottom 2 is 3 \\(3\\)"):
        make_layer('name: "u" type: "LSTMUnit"', [(1, 3, 2), (1, 3, 8), (3,)])
    with pytest.raises(UserError, match="bottom 1 is 2 3 8"):
        make_layer('name: "u" type: "LSTMUnit"', [(1, 3, 2), (2, 3, 8), (1, 3)])
    layer, _ = make_layer('name: "u" type: "LSTMUnit"', [(1, 3, 2), (1, 3, 8), (1, 3)])
    assert not layer.allow_force_backward(2) and "sequence indicators" in layer.backward_refused(2)


# ---------------------------------------------------------------- LSTM

LSTM = ('name: "lstm" type: "LSTM" recurrent_param { num_output: 3 '
        'weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } '
        '%s }')


def test_lstm_three_steps_by_hand_with_a_sequence_restart():
    layer, tops = make_layer(LSTM % "", [(3, 2, 4), (3, 2)])
    assert tops == [(3, 2, 3)]
    assert [tuple(b.shape) for b in layer.blobs] == [(12, 4), (12,), (12, 3)]
    x = rand(3, 2, 4, seed=1)
    cont = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    W_xc, b_c, W_hc = (b.detach().numpy() for b in layer.blobs)
    want, h_T, c_T = numpy_lstm(x.numpy(), cont.numpy(), W_xc, b_c, W_hc)
    np.testing.assert_allclose(layer.forward([x, cont])[0].detach().numpy(), want, rtol=1e-10)
    # the next forward starts from this one's final state (cont 1 at t = 0 keeps it)
    cont2 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    want2, _, _ = numpy_lstm(x.numpy(), cont2.numpy(), W_xc, b_c, W_hc, h_T, c_T)
    np.testing.assert_allclose(layer.forward([x, cont2])[0].detach().numpy(), want2, rtol=1e-10)
    assert gradcheck(layer, [x, cont], (0,))


def test_lstm_expose_hidden_and_static_input():
    layer, tops = make_layer(LSTM % "expose_hidden: true",
                             [(3, 2, 4), (3, 2), (2, 5), (1, 2, 3), (1, 2, 3)])
    assert tops == [(3, 2, 3), (1, 2, 3), (1, 2, 3)]
    assert [tuple(b.shape) for b in layer.blobs] == [(12, 4), (12,), (12, 5), (12, 3)]
    x, xs = rand(3, 2, 4, seed=1), rand(2, 5, seed=2)
    h0, c0 = rand(1, 2, 3, seed=3), rand(1, 2, 3, seed=4)
    cont = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    W_xc, b_c, W_s, W_hc = (b.detach().numpy() for b in layer.blobs)
    want, h_T, c_T = numpy_lstm(x.numpy(), cont.numpy(), W_xc, b_c, W_hc, h0.numpy()[0],
                                c0.numpy()[0], W_s, xs.numpy())
    h, hT, cT = layer.forward([x, cont, xs, h0, c0])
    np.testing.assert_allclose(h.detach().numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(hT.numpy()[0], h_T, rtol=1e-10)
    np.testing.assert_allclose(cT.numpy()[0], c_T, rtol=1e-10)
    assert not hT.requires_grad and not cT.requires_grad      # Caffe shares no diff there
    h0g = h0.clone().requires_grad_(True)
    layer.forward([x, cont, xs, h0g, c0])[0].sum().backward()
    assert h0g.grad is None
    assert gradcheck(layer, [x, cont, xs, h0, c0], (0, 2))


def test_lstm_shape_and_parameter_errors():
    with pytest.raises(UserError, match="'lstm' \\(LSTM\\): num_output must be positive"):
        make_layer('name: "lstm" type: "LSTM"', [(3, 2, 4), (3, 2)])
    with pytest.raises(UserError, match="bottom 1 \\(cont\\) is 3 1 \\(3\\)"):
        make_layer(LSTM % "", [(3, 2, 4), (3, 1)])
    with pytest.raises(UserError, match="at least 2 axes"):
        make_layer(LSTM % "", [(3,), (3, 2)])
    with pytest.raises(UserError, match="static input 3 5 \\(15\\) must have N = 2"):
        make_layer(LSTM % "", [(3, 2, 4), (3, 2), (3, 5)])
    with pytest.raises(UserError, match="shape mismatch - recurrent input 'c_0'"):
        make_layer(LSTM % "expose_hidden: true", [(3, 2, 4), (3, 2), (1, 2, 3), (1, 2, 4)])
    layer, _ = make_layer(LSTM % "", [(3, 2, 4), (3, 2)])
    with pytest.raises(UserError, match="input number of timesteps changed: 4"):
        layer.reshape([(4, 2, 4), (4, 2)])
    assert layer.reshape([(3, 5, 4), (3, 5)]) == [(3, 5, 3)]     # N may change
    assert not layer.allow_force_backward(1) and "cont" in layer.backward_refused(1)


# ---------------------------------------------------------------- RNN

RNN = ('name: "rnn" type: "RNN" recurrent_param { num_output: 3 '
       'weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } '
       '%s }')


def test_rnn_three_steps_by_hand_with_static_input_and_gradients():
    layer, tops = make_layer(RNN % "", [(3, 2, 4), (3, 2), (2, 5)])
    assert tops == [(3, 2, 3)]
    assert [tuple(b.shape) for b in layer.blobs] == [(3, 4), (3,), (3, 5), (3, 3), (3, 3), (3,)]
    x, xs = rand(3, 2, 4, seed=5), rand(2, 5, seed=6)
    cont = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    W_xh, b_h, W_s, W_hh, W_ho, b_o = (b.detach().numpy() for b in layer.blobs)
    want, _ = numpy_rnn(x.numpy(), cont.numpy(), W_xh, b_h, W_hh, W_ho, b_o,
                        W_static=W_s, x_static=xs.numpy())
    np.testing.assert_allclose(layer.forward([x, cont, xs])[0].detach().numpy(), want,
                               rtol=1e-10)
    assert gradcheck(layer, [x, cont, xs], (0, 2))


def test_rnn_expose_hidden():
    layer, tops = make_layer(RNN % "expose_hidden: true", [(2, 1, 2), (2, 1), (1, 1, 3)])
    assert tops == [(2, 1, 3), (1, 1, 3)]
    x, h0 = rand(2, 1, 2, seed=8), rand(1, 1, 3, seed=9)
    cont = torch.ones(2, 1, dtype=torch.float64)
    blobs = [b.detach().numpy() for b in layer.blobs]
    want, h_T = numpy_rnn(x.numpy(), cont.numpy(), *blobs, h0=h0.numpy()[0])
    o, hT = layer.forward([x, cont, h0])
    np.testing.assert_allclose(o.detach().numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(hT.numpy()[0], h_T, rtol=1e-10)


# ---------------------------------------------------------------- in a Net

NET = """
name: "seq"
layer { name: "in" type: "Input" top: "x" top: "cont"
  input_param { shape { dim: 2 dim: 1 dim: 3 } shape { dim: 2 dim: 1 } } }
layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
  recurrent_param { num_output: 2 weight_filler { type: "uniform" min: -1 max: 1 }
                    bias_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "rnn" type: "RNN" bottom: "h" bottom: "cont" top: "o"
  recurrent_param { num_output: 2 weight_filler { type: "uniform" min: -1 max: 1 }
                    bias_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "o" bottom: "h" top: "loss" }
"""


def test_caffe_layout_lstm_and_rnn_caffemodel_loads_and_round_trips(tmp_path):
    """A caffemodel written here field by field with Caffe's blob layout loads into the
    Net, computes the hand recurrence, and our own caffemodel carries the same blobs."""
    rng = np.random.default_rng(0)
    shapes = {"lstm": [(8, 3), (8,), (8, 2)], "rnn": [(2, 2), (2,), (2, 2), (2, 2), (2,)]}
    values = {k: [rng.uniform(-1, 1, s).astype(np.float32) for s in v] for k, v in shapes.items()}
    model = caffe_pb2.NetParameter(name="seq")
    for name, arrays in values.items():
        lp = model.layer.add(name=name, type=name.upper())
        for a in arrays:
            blob = lp.blobs.add()
            blob.shape.dim.extend(a.shape)
            blob.data.extend(a.ravel().tolist())
    path = tmp_path / "caffe_layout.caffemodel"
    prototxt.write_binary(model, str(path))
    net = Net(net_param(NET))
    net.copy_trained_layers_from_file(str(path))
    x = rng.standard_normal((2, 1, 3)).astype(np.float32)
    cont = np.array([[0.0], [1.0]], np.float32)
    net.set_input("x", x)
    net.set_input("cont", cont)
    net.forward()
    h, _, _ = numpy_lstm(x.astype(np.float64), cont, *values["lstm"])
    o, _ = numpy_rnn(h, cont, *values["rnn"])
    np.testing.assert_allclose(net.blob("h"), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.blob("o"), o, rtol=1e-5, atol=1e-6)
    ours = tmp_path / "ours.caffemodel"
    caffemodel.write(net.to_proto(), str(ours))
    saved = {lp.name: lp for lp in caffemodel.read(str(ours)).layer}
    for name, arrays in values.items():
        blobs = saved[name].blobs
        assert [tuple(b.shape.dim) for b in blobs] == [a.shape for a in arrays]
        for b, a in zip(blobs, arrays):
            np.testing.assert_array_equal(np.asarray(b.data, np.float32), a.ravel())
    assert [(p.layer_name, p.index) for p in net.learnable_params] == \
        [("lstm", 0), ("lstm", 1), ("lstm", 2)] + [("rnn", i) for i in range(5)]


def test_net_training_gradients_reach_every_recurrent_blob_and_cont_is_refused():
    net = Net(net_param(NET))
    net.set_input("x", np.ones((2, 1, 3), np.float32))
    net.set_input("cont", np.array([[0.0], [1.0]], np.float32))
    net.forward_backward()
    assert all(float(p.diff.abs().sum()) > 0 for p in net.learnable_params)
    bad = NET.replace('bottom: "h" bottom: "cont" top: "o"',
                      'bottom: "h" bottom: "cont" top: "o" propagate_down: true '
                      'propagate_down: true')
    with pytest.raises(UserError, match="RNN cannot backpropagate to sequence indicators"):
        Net(net_param(bad))


def test_setup_logs_caffes_lines_and_the_unrolled_nets_top_shapes():
    logger, buffer = captured_log()
    Net(net_param(NET), logger=logger)
    lines = messages(buffer)
    assert ("Initializing recurrent layer: assuming input batch contains 2 timesteps of 1 "
            "independent streams.") in lines
    adding = [m for m in lines if m.startswith("Adding parameter")]
    assert adding == ["Adding parameter 0: W_xc", "Adding parameter 1: b_c",
                      "Adding parameter 2: W_hc", "Adding parameter 0: W_xh",
                      "Adding parameter 1: b_h", "Adding parameter 2: W_hh",
                      "Adding parameter 3: W_ho", "Adding parameter 4: b_o"]
    start = lines.index("Creating Layer lstm")
    end = lines.index("Creating Layer rnn")
    shapes = [m[len("Top shape: "):] for m in lines[start:end] if m.startswith("Top shape:")]
    # FillUnrolledNet's layers for T = 2, N = 1, H = 2, inputs 3, in Caffe's order, with the
    # splits Net inserts (cont_t feeds the Scale and the unit, h_1 the next Scale and Concat)
    assert shapes == [
        "2 1 3 (6)", "2 1 (2)",                    # lstm_ (Input x, cont)
        "1 1 2 (2)", "1 1 2 (2)",                  # lstm_ (Input c_0, h_0)
        "1 1 (1)", "1 1 (1)",                      # lstm_cont_slice
        "1 1 (1)", "1 1 (1)", "1 1 (1)", "1 1 (1)",  # cont_1 / cont_2 splits
        "2 1 8 (16)",                              # lstm_x_transform
        "1 1 8 (8)", "1 1 8 (8)",                  # lstm_W_xc_x_slice
        "1 1 2 (2)", "1 1 8 (8)", "1 1 8 (8)",     # h_conted_0, transform_1, gate_input_1
        "1 1 2 (2)", "1 1 2 (2)",                  # unit_1
        "1 1 2 (2)", "1 1 2 (2)",                  # h_1 split
        "1 1 2 (2)", "1 1 8 (8)", "1 1 8 (8)",     # h_conted_1, transform_2, gate_input_2
        "1 1 2 (2)", "1 1 2 (2)",                  # unit_2
        "1 1 2 (2)",                               # c_T (Split)
        "2 1 2 (4)",                               # h_concat
        "(1)",                                     # h_pseudoloss
        "2 1 2 (4)",                               # the LSTM layer's own top
        "2 1 2 (4)", "2 1 2 (4)"]                  # the split of h (RNN and loss read it)
    assert "Sharing parameters 'W_hc' owned by layer 'lstm_transform_1', param index 0" in lines
    # the unrolled net logs what Caffe's does: no second "Numerics" line of the engine's own
    assert not any(m.startswith("Numerics:") for m in lines[start:end])


def test_time_net_on_recurrent_layers(tmp_path, capsys):
    path = tmp_path / "seq.prototxt"
    path.write_text(NET)
    assert time_net.main([str(path), "--iterations", "1"]) == 0
    err = capsys.readouterr().err
    shapes = [line.split("] Top shape: ", 1)[1] for line in err.splitlines()
              if "] Top shape:" in line]
    # in and the split of cont (4), the LSTM's unrolled net (28, listed in the test above)
    # and top, the split of h,
    # then the RNN's unrolled net for T = 2, N = 1, H = 2 in FillUnrolledNet's order, its
    # top, and the loss
    rnn = (["2 1 2 (4)", "2 1 (2)", "1 1 2 (2)", "1 1 (1)", "1 1 (1)", "2 1 2 (4)",
            "1 1 2 (2)", "1 1 2 (2)"]            # Inputs, cont_slice, x_transform, x slice
           + ["1 1 2 (2)"] * 8                   # t = 1: conted, W_hh, sum, tanh, h_1 split x2,
                                                 #        W_ho, tanh
           + ["1 1 2 (2)"] * 6                   # t = 2: the same without a split
           + ["2 1 2 (4)", "(1)"])               # o_concat, o_pseudoloss
    assert shapes[:4] == ["2 1 3 (6)", "2 1 (2)", "2 1 (2)", "2 1 (2)"]   # in, cont split
    assert shapes[32:35] == ["2 1 2 (4)"] * 3     # the LSTM's top, the split of h
    assert shapes[35:] == rnn + ["2 1 2 (4)", "(1)"]


def test_reduction_stand_in_only_for_the_pseudo_loss():
    if LAYERS["Reduction"].__module__.endswith("recurrent"):
        with pytest.raises(UserError, match="pseudo-loss form of Reduction"):
            make_layer('name: "r" type: "Reduction" reduction_param { operation: MEAN }', [(2, 3)])
        layer, tops = make_layer('name: "r" type: "Reduction"', [(2, 3)])
        assert tops == [()] and float(layer.forward([torch.ones(2, 3)])[0]) == 6.0
