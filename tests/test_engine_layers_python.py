"""The "Python" layer type (engine/layers/python.py) inside the engine's own Net and Solver:
forward and backward against gradients worked out by hand, a layer's own learned parameter,
a Python data layer, a Python loss with loss_weight, and every failure as one clear line."""
import sys

import numpy as np
import pytest
import torch

from bnface_caffe.engine import Net
from bnface_caffe.engine.solver import Solver
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import net_param
from pycaffe_util import caffe_modules_restored  # noqa: F401 (a fixture)

LAYERS = '''
import numpy as np
import caffe


class Square(caffe.Layer):
    """y = x * x."""
    def setup(self, bottom, top):
        self.seen = (self.param_str, self.phase)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data ** 2

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 2 * bottom[0].data * top[0].diff


class Gain(caffe.Layer):
    """y = g * x with one learned g per column (its own parameter blob)."""
    def setup(self, bottom, top):
        self.blobs.add_blob(bottom[0].data.shape[1])
        self.blobs[0].data[...] = np.linspace(0.5, -1.0, bottom[0].data.shape[1])

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[...] += (top[0].diff * bottom[0].data).sum(0)
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * self.blobs[0].data


class Rows(caffe.Layer):
    """A data layer: rows 0.., 1.., ... of a fixed table, one batch of 2 per forward."""
    def setup(self, bottom, top):
        self.table = np.arange(12, dtype=np.float32).reshape(4, 3)
        self.pos = 0

    def reshape(self, bottom, top):
        top[0].reshape(2, 3)

    def forward(self, bottom, top):
        top[0].data[...] = self.table[[self.pos % 4, (self.pos + 1) % 4]]
        self.pos += 2

    def backward(self, top, propagate_down, bottom):
        pass


class HalfSumSquares(caffe.Layer):
    """loss = 0.5 * sum(x^2); backward scales by the top's diff (the loss weight)."""
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(1)

    def forward(self, bottom, top):
        top[0].data[0] = 0.5 * np.sum(bottom[0].data ** 2)

    def backward(self, top, propagate_down, bottom):
        self.top_diff = float(top[0].diff[0])
        bottom[0].diff[...] = bottom[0].data * top[0].diff[0]


class Fails(caffe.Layer):
    def setup(self, bottom, top):
        if self.param_str == "setup":
            raise ValueError("bad param_str")

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        raise KeyError("no gradient here")


class NotALayer:
    def __init__(self, param):
        pass
'''


@pytest.fixture(autouse=True)
def layers_module(tmp_path, monkeypatch, caffe_modules_restored):
    """pylayers_t.py on sys.path; `import caffe` aliases removed again afterwards."""
    (tmp_path / "pylayers_t.py").write_text(LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("pylayers_t", None)


def python_layer(name, cls, bottoms, tops, extra=""):
    b = "".join(f' bottom: "{x}"' for x in bottoms)
    t = "".join(f' top: "{x}"' for x in tops)
    return (f'layer {{ name: "{name}" type: "Python"{b}{t} python_param {{ module: "pylayers_t" '
            f'layer: "{cls}" {extra} }} }}')


def build(text, phase=caffe_pb2.TRAIN):
    return Net(net_param(text), phase=phase)


X = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]])
W = np.array([[0.2, -0.1, 0.4], [0.3, 0.5, -0.2]])


def ip_net(middle):
    return f'''name: "t"
layer {{ name: "in" type: "Input" top: "x" top: "label"
  input_param {{ shape {{ dim: 2 dim: 3 }} shape {{ dim: 2 }} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "z"
  inner_product_param {{ num_output: 2 bias_term: false }} }}
{middle}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "y" bottom: "label" top: "loss" }}
'''


def test_square_layer_forward_and_backward_match_the_hand_gradient():
    net = build(ip_net(python_layer("sq", "Square", ["z"], ["y"], 'param_str: "hello"')))
    net.learnable_params[0].data.copy_(torch.tensor(W))
    net.set_input("x", X)
    net.set_input("label", np.array([1.0, 0.0]))
    loss = net.forward_backward()
    # by hand, float64: z = X W^T, y = z^2, softmax loss averaged over the 2 rows
    z = X @ W.T
    y = z ** 2
    p = np.exp(y - y.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = [1, 0]
    want = -np.mean(np.log(p[[0, 1], labels]))
    dy = p.copy()
    dy[[0, 1], labels] -= 1
    dy /= 2
    dz = dy * 2 * z
    dw = dz.T @ X
    assert loss == pytest.approx(want, rel=1e-5)
    assert np.allclose(net.learnable_params[0].diff.numpy(), dw, rtol=1e-5, atol=1e-7)
    layer = net.nodes[2].layer
    assert layer.py.seen == ("hello", caffe_pb2.TRAIN)


def test_own_parameter_is_learned_by_the_solver():
    net = build(ip_net(python_layer("gain", "Gain", ["z"], ["y"])))
    assert [p.layer_name for p in net.learnable_params] == ["ip", "gain"]
    net.learnable_params[0].data.copy_(torch.tensor(W))
    net.set_input("x", X)
    net.set_input("label", np.array([0.0, 1.0]))
    net.forward_backward()
    z = X @ W.T
    gain = np.array([0.5, -1.0])
    assert np.allclose(net.learnable_params[1].data.numpy(), gain)
    y = z * gain
    p = np.exp(y - y.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dy = p.copy()
    dy[[0, 1], [0, 1]] -= 1
    dy /= 2
    dgain = (dy * z).sum(0)
    assert np.allclose(net.learnable_params[1].diff.numpy(), dgain, rtol=1e-5, atol=1e-7)
    param = caffe_pb2.SolverParameter(base_lr=1.0, lr_policy="fixed", type="SGD")
    Solver(param, net).apply_update()
    assert np.allclose(net.learnable_params[1].data.numpy(), gain - dgain, rtol=1e-5, atol=1e-7)


def test_data_layer_and_loss_weight():
    text = f'''name: "d"
{python_layer("rows", "Rows", [], ["x"])}
layer {{ name: "loss" type: "Python" bottom: "x" top: "loss" loss_weight: 3
  python_param {{ module: "pylayers_t" layer: "HalfSumSquares" }} }}
'''
    net = build(text)
    loss = net.forward()
    first = np.arange(6).reshape(2, 3)
    assert loss == pytest.approx(3 * 0.5 * (first ** 2).sum())
    assert net.blob("x").tolist() == first.tolist()
    assert net.forward() == pytest.approx(3 * 0.5 * (np.arange(6, 12) ** 2).sum())


def test_python_loss_sees_the_loss_weight_as_its_top_diff():
    text = '''name: "l"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "z"
  inner_product_param { num_output: 2 bias_term: false } }
layer { name: "loss" type: "Python" bottom: "z" top: "loss" loss_weight: 2
  python_param { module: "pylayers_t" layer: "HalfSumSquares" } }
'''
    net = build(text)
    net.learnable_params[0].data.copy_(torch.tensor(W))
    net.set_input("x", X)
    loss = net.forward_backward()
    z = X @ W.T
    assert loss == pytest.approx(2 * 0.5 * (z ** 2).sum(), rel=1e-5)
    assert net.nodes[2].layer.py.top_diff == 2.0
    assert np.allclose(net.learnable_params[0].diff.numpy(), 2 * z.T @ X, rtol=1e-5)


@pytest.mark.parametrize("cls, extra, kind, fragments", [
    ("Nope", "", UserError, ["layer 'p' (Python pylayers_t.Nope)", "has no class 'Nope'"]),
    ("NotALayer", "", UserError, ["not a subclass of caffe.Layer"]),
    ("Fails", 'param_str: "setup"', ValueError,
     ["layer 'p' (Python pylayers_t.Fails)", "setup() raised ValueError: bad param_str"]),
])
def test_set_up_failures_are_one_line(cls, extra, kind, fragments):
    text = f'''name: "e"
layer {{ name: "in" type: "Input" top: "x" input_param {{ shape {{ dim: 2 dim: 3 }} }} }}
{python_layer("p", cls, ["x"], ["y"], extra)}
'''
    with pytest.raises(kind) as err:
        build(text)
    assert isinstance(err.value, UserError)
    assert "\n" not in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_missing_module_names_it_and_the_way_caffe_finds_modules():
    text = '''name: "m"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }
layer { name: "p" type: "Python" bottom: "x" top: "y"
  python_param { module: "no_such_module_here" layer: "L" } }
'''
    with pytest.raises(UserError, match="cannot import module 'no_such_module_here'.*PYTHONPATH"):
        build(text)


def test_exception_in_backward_keeps_its_type_and_names_the_layer():
    net = build(ip_net(python_layer("f", "Fails", ["z"], ["y"])))
    net.set_input("label", np.array([0.0, 1.0]))
    net.forward()
    with pytest.raises(KeyError) as err:
        net.forward_backward()
    assert isinstance(err.value, UserError)
    assert "layer 'f' (Python pylayers_t.Fails): backward() raised KeyError" in str(err.value)
