"""caffe.Net on the engine (bnface_caffe/pycaffe/net.py, layerwise.py): blobs as numpy views
of persistent memory, forward/backward layer by layer (also from/to a layer) against
computations by hand, Caffe's names and their order, net surgery, save + reload (read back by
OpenCV's Caffe importer too), and bad input as one clear error of pycaffe's exception type."""
import numpy as np
import pytest

import bnface_caffe.pycaffe as caffe
from bnface_caffe.errors import UserError
from pycaffe_util import HAND_NET, caffe_modules_restored, write  # noqa: F401

X = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]], np.float32)
W1 = np.array([[0.2, -0.1, 0.4], [0.3, 0.5, -0.2]], np.float32)
B1 = np.array([0.1, -0.3], np.float32)
W2 = np.array([[0.7, -1.3]], np.float32)
B2 = np.array([0.05], np.float32)


@pytest.fixture
def net(tmp_path):
    net = caffe.Net(write(tmp_path, "hand.prototxt", HAND_NET), caffe.TEST)
    for (name, i), value in {("ip", 0): W1, ("ip", 1): B1, ("ip2", 0): W2, ("ip2", 1): B2}.items():
        net.params[name][i].data[...] = value
    return net


def by_hand(x, w1=W1, b1=B1, w2=W2, b2=B2, g=None):
    x = x.astype(np.float64)
    pre = x @ w1.T + b1
    h = np.maximum(pre, 0)
    out = h @ w2.T + b2
    if g is None:
        return h, out
    dh = (g @ w2) * (pre > 0)
    return h, out, {"data": dh @ w1, "ip": dh, "W1": dh.T @ x, "b1": dh.sum(0),
                    "W2": g.T @ h, "b2": g.sum(0)}


def test_written_data_feeds_forward_and_outputs_are_the_blobs(net):
    net.blobs["data"].data[...] = X
    out = net.forward()
    _, want = by_hand(X)
    assert np.allclose(out["out"], want, atol=1e-6)
    assert np.shares_memory(out["out"], net.blobs["out"].data)   # views, as pycaffe's
    assert np.allclose(net.blobs["ip"].data, by_hand(X)[0], atol=1e-6)   # in-place: ReLU'd
    out2 = net.forward(data=2 * X)                                    # kwargs: the inputs
    assert np.allclose(out2["out"], by_hand(2 * X)[1], atol=1e-5)


def test_backward_gradients_match_the_hand_gradient_and_params_accumulate(net):
    g = np.array([[1.0], [-2.0]], np.float32)
    net.forward(data=X)
    diffs = net.backward(out=g)
    _, _, want = by_hand(X, g=g.astype(np.float64))
    assert set(diffs) == {"data"}
    assert np.allclose(diffs["data"], want["data"], atol=1e-6)
    assert np.allclose(net.blobs["ip"].diff, want["ip"], atol=1e-6)   # ReLU's bottom diff
    for (name, i), key in {("ip", 0): "W1", ("ip", 1): "b1", ("ip2", 0): "W2",
                           ("ip2", 1): "b2"}.items():
        assert np.allclose(net.params[name][i].diff, want[key], atol=1e-6), key
    net.backward()                    # top diffs as left: parameter diffs add up, Caffe's way
    assert np.allclose(net.params["ip"][0].diff, 2 * want["W1"], atol=1e-6)
    assert np.allclose(net.blobs["data"].diff, want["data"], atol=1e-6)   # bottoms overwrite
    net.clear_param_diffs()
    assert not net.params["ip"][0].diff.any()


def test_forward_from_and_to_a_layer_reads_what_the_blobs_hold(net):
    net.blobs["data"].data[...] = X
    out = net.forward(end="ip")
    assert set(out) == {"ip"}
    pre = X @ W1.T + B1
    assert np.allclose(out["ip"], pre, atol=1e-6)                     # before the ReLU
    assert not net.blobs["out"].data.any()                             # not run yet
    net.blobs["ip"].data[...] = [[1.0, 2.0], [-1.0, 3.0]]             # what the next layer reads
    out = net.forward(start="relu", blobs=["ip"])
    h = np.maximum([[1.0, 2.0], [-1.0, 3.0]], 0)
    assert np.allclose(out["out"], h @ W2.T + B2, atol=1e-6)
    assert np.allclose(out["ip"], h)


def test_backward_from_and_to_a_layer_uses_the_diffs_written(net):
    net.forward(data=X)
    net.blobs["out"].diff[...] = [[3.0], [1.0]]
    diffs = net.backward(start="ip2", end="ip2")
    assert set(diffs) == {"ip"}
    assert np.allclose(diffs["ip"], np.array([[3.0], [1.0]]) @ W2, atol=1e-6)
    assert not net.blobs["data"].diff.any()                           # ip was not run
    net.blobs["ip"].diff[...] = [[1.0, 0.0], [0.0, 1.0]]              # our own diff for ip
    diffs = net.backward(start="relu", diffs=["ip"])
    pre = X @ W1.T + B1
    dpre = np.eye(2) * (pre > 0)
    assert np.allclose(diffs["data"], dpre @ W1, atol=1e-6)
    assert np.allclose(diffs["ip"], dpre, atol=1e-6)


def test_net_surgery_changes_the_next_forward(net):
    net.params["ip2"][0].data[...] *= 0.5
    net.layers[1].blobs[1].data[...] = 0                              # the same memory
    assert not net.params["ip"][1].data.any()
    out = net.forward(data=X)
    assert np.allclose(out["out"], by_hand(X, b1=0 * B1, w2=0.5 * W2)[1], atol=1e-6)


def test_save_then_reload_and_read_back_with_opencv(net, tmp_path):
    cv2 = pytest.importorskip("cv2")
    net.params["ip"][0].data[0, 0] = 2.5
    want = net.forward(data=X)["out"].copy()
    model = str(tmp_path / "saved.caffemodel")
    net.save(model)
    again = caffe.Net(str(tmp_path / "hand.prototxt"), caffe.TEST, weights=model)
    assert np.array_equal(again.forward(data=X)["out"], want)
    old = caffe.Net(str(tmp_path / "hand.prototxt"), model, caffe.TEST)   # the old constructor
    assert np.array_equal(old.params["ip"][0].data, net.params["ip"][0].data)
    reader = cv2.dnn.readNetFromCaffe(str(tmp_path / "hand.prototxt"), model)
    reader.setInput(X)
    assert np.allclose(reader.forward("ip2").reshape(want.shape), want, atol=1e-5)


def test_names_and_order_are_caffes(tmp_path):
    net = caffe.Net(write(tmp_path, "names.prototxt", """name: "names"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 4 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" }
"""), caffe.TEST)
    assert list(net.blobs) == ["data", "label", "label_data_1_split_0", "label_data_1_split_1",
                               "ip", "ip_ip_0_split_0", "ip_ip_0_split_1", "ip_ip_0_split_2",
                               "(automatic)", "prob", "acc"]
    assert list(net._layer_names) == ["data", "label_data_1_split", "ip", "ip_ip_0_split",
                                      "loss", "prob", "acc"]
    assert [layer.type for layer in net.layers] == ["Input", "Split", "InnerProduct", "Split",
                                                    "SoftmaxWithLoss", "Softmax", "Accuracy"]
    assert net.inputs == ["data", "label"] and net.outputs == ["acc", "prob"]
    assert [k for k, w in net.blob_loss_weights.items() if w] == ["(automatic)"]
    assert net.top_names["loss"] == ["(automatic)"]
    assert net.bottom_names["acc"] == ["ip_ip_0_split_2", "label_data_1_split_1"]
    assert list(net.params) == ["ip"] and [list(b.shape) for b in net.params["ip"]] == [[4, 3], [4]]
    assert list(net.layer_dict) == list(net._layer_names)
    assert net.blobs["(automatic)"].diff == 1.0       # a loss top's diff is its loss weight
    assert sorted(net.forward()) == ["acc", "prob"]


def test_reshape_to_another_batch_and_forward_all(net):
    net.blobs["data"].reshape(5, 3)
    net.reshape()
    assert [b.shape for b in net.blobs.values()] == [[5, 3], [5, 2], [5, 1]]
    many = np.vstack([X, 2 * X, X[:1]])                               # 5 rows
    assert np.allclose(net.forward(data=many)["out"], by_hand(many)[1], atol=1e-5)
    net.blobs["data"].reshape(2, 3)
    net.reshape()
    out = net.forward_all(data=many, blobs=["ip"])                    # 3 batches, last padded
    assert out["out"].shape == (5, 1) and out["ip"].shape == (5, 2)
    assert np.allclose(out["out"], by_hand(many)[1], atol=1e-5)


@pytest.mark.parametrize("call, kind, fragment", [
    (lambda n: n.forward(end="nope"), ValueError, "no layer named 'nope'"),
    (lambda n: n.forward(blobs=["nope"]), KeyError, "no blob named 'nope'"),
    (lambda n: n.forward(data=np.zeros((2, 4), np.float32)), ValueError, "shape (2, 4)"),
    (lambda n: n.forward(data=np.zeros((3, 3), np.float32)), Exception, "not batch sized"),
    (lambda n: n.forward(other=X), Exception, "do not match the net's inputs (data)"),
    (lambda n: n.backward(start="relu", end="nope"), ValueError, "no layer named 'nope'"),
    (lambda n: n._forward(0, 9), IndexError, "layer indices go from 0 to 3"),
    (lambda n: n.params["ip"][0].reshape(3, 3), UserError, "not supported"),
    (lambda n: n.set_input_arrays(X, np.zeros(2)), RuntimeError, "first layer is a MemoryData"),
])
def test_bad_calls_raise_pycaffes_exception_type_as_one_line(net, call, kind, fragment):
    with pytest.raises(kind) as err:
        call(net)
    assert isinstance(err.value, UserError)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_construction(tmp_path):
    with pytest.raises(RuntimeError, match="Could not open file .*missing.prototxt"):
        caffe.Net(str(tmp_path / "missing.prototxt"), caffe.TEST)
    path = write(tmp_path, "hand.prototxt", HAND_NET)
    with pytest.raises(TypeError, match="phase"):
        caffe.Net(path, 7)
    with pytest.raises(TypeError, match="needs the network file and the phase"):
        caffe.Net(path)


PY_LAYERS = '''
import caffe


class Times(caffe.Layer):
    def setup(self, bottom, top):
        self.k = float(self.param_str)
        self.blobs.add_blob(1)
        self.blobs[0].data[0] = self.phase

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.k * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[0] += 1
        bottom[0].diff[...] = self.k * top[0].diff
'''


def test_python_layers_compute_on_the_nets_blobs(tmp_path, monkeypatch, caffe_modules_restored):
    write(tmp_path, "times_mod.py", PY_LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(tmp_path, "py.prototxt", """name: "py"
force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "t10" type: "Python" bottom: "data" top: "a"
  python_param { module: "times_mod" layer: "Times" param_str: "10" } }
layer { name: "t2" type: "Python" bottom: "a" top: "a"
  python_param { module: "times_mod" layer: "Times" param_str: "-2" } }
""")
    for phase in (caffe.TRAIN, caffe.TEST):
        net = caffe.Net(path, phase)
        assert net.params["t10"][0].data[0] == phase            # self.phase, own blob
    net.blobs["data"].data[...] = X
    assert np.allclose(net.forward()["a"], -20 * X)
    net.blobs["a"].diff[...] = 1
    assert np.allclose(net.backward()["data"], -20 * np.ones_like(X))
    assert net.params["t2"][0].diff[0] == 1 and net.layers[1].blobs[0].diff[0] == 1
    assert net.layers[1].type == "Python"
    model = str(tmp_path / "py.caffemodel")
    net.params["t2"][0].data[0] = 4
    net.save(model)
    other = caffe.Net(path, caffe.TEST, weights=model)
    assert other.params["t2"][0].data[0] == 4


def test_views_stay_right_with_separate_host_copies(tmp_path, monkeypatch):
    """As on a GPU: every blob keeps a host copy apart from the memory the net computes with
    (forced here on the CPU), and .data/.diff still read and write what the net uses."""
    from bnface_caffe.engine.blob import Storage
    monkeypatch.setattr(Storage, "host_copies_on_cpu", True)
    net = caffe.Net(write(tmp_path, "hand.prototxt", HAND_NET), caffe.TEST)
    for (name, i), value in {("ip", 0): W1, ("ip", 1): B1, ("ip2", 0): W2, ("ip2", 1): B2}.items():
        net.params[name][i].data[...] = value
    data = net.params["ip"][0].data
    assert not np.shares_memory(data, net._engine.nodes[1].layer.blobs[0].detach().numpy())
    net.blobs["data"].data[...] = X
    assert np.allclose(net.forward()["out"], by_hand(X)[1], atol=1e-6)
    g = np.array([[1.0], [-2.0]], np.float32)
    net.blobs["out"].diff[...] = g
    _, _, want = by_hand(X, g=g.astype(np.float64))
    assert np.allclose(net.backward()["data"], want["data"], atol=1e-6)
    assert np.allclose(net.params["ip"][0].diff, want["W1"], atol=1e-6)
    net.params["ip2"][0].data[...] *= 0.5                  # surgery through a fresh .data
    assert np.allclose(net.forward(data=X)["out"], by_hand(X, w2=0.5 * W2)[1], atol=1e-6)
