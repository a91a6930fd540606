"""Net: set-up log, state filtering, splits, shapes, loss weights, backward rules,
parameter sharing, upgrades, the Data layer, and the paper's generated nets."""
import numpy as np
import pytest
import torch

from bnface_caffe.engine import Net
from bnface_caffe.engine.timing import layerwise_pass
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from engine_util import captured_log, messages, net_param

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST

TINY = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 1 dim: 6 dim: 6 } shape { dim: 2 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" }
"""

# Net::Init's messages for TINY, worked out from net.cpp and insert_splits.cpp (splits
# right after the producer, named blob_layer_topindex_split; memory = running sum of
# top counts x 4 bytes; backward analysis from the last layer). Real Caffe 1.0
# prints exactly these lines for this net.
TINY_SETUP = """\
Creating layer data
Creating Layer data
data -> data
data -> label
Setting up data
Top shape: 2 1 6 6 (72)
Top shape: 2 (2)
Memory required for data: 296
Creating layer label_data_1_split
Creating Layer label_data_1_split
label_data_1_split <- label
label_data_1_split -> label_data_1_split_0
label_data_1_split -> label_data_1_split_1
Setting up label_data_1_split
Top shape: 2 (2)
Top shape: 2 (2)
Memory required for data: 312
Creating layer conv
Creating Layer conv
conv <- data
conv -> conv
Setting up conv
Top shape: 2 3 4 4 (96)
Memory required for data: 696
Creating layer relu
Creating Layer relu
relu <- conv
relu -> conv (in-place)
Setting up relu
Top shape: 2 3 4 4 (96)
Memory required for data: 1080
Creating layer pool
Creating Layer pool
pool <- conv
pool -> pool
Setting up pool
Top shape: 2 3 2 2 (24)
Memory required for data: 1176
Creating layer fc
Creating Layer fc
fc <- pool
fc -> fc
Setting up fc
Top shape: 2 5 (10)
Memory required for data: 1216
Creating layer fc_fc_0_split
Creating Layer fc_fc_0_split
fc_fc_0_split <- fc
fc_fc_0_split -> fc_fc_0_split_0
fc_fc_0_split -> fc_fc_0_split_1
Setting up fc_fc_0_split
Top shape: 2 5 (10)
Top shape: 2 5 (10)
Memory required for data: 1296
Creating layer loss
Creating Layer loss
loss <- fc_fc_0_split_0
loss <- label_data_1_split_0
loss -> loss
Creating layer loss
Setting up loss
Top shape: (1)
    with loss weight 1
Memory required for data: 1300
Creating layer acc
Creating Layer acc
acc <- fc_fc_0_split_1
acc <- label_data_1_split_1
acc -> acc
Setting up acc
Top shape: (1)
Memory required for data: 1304
acc does not need backward computation.
loss needs backward computation.
fc_fc_0_split needs backward computation.
fc needs backward computation.
pool needs backward computation.
relu needs backward computation.
conv needs backward computation.
label_data_1_split does not need backward computation.
data does not need backward computation.
This network produces output acc
This network produces output loss
Network initialization done."""


def build(text, phase=TRAIN, **kw):
    logger, buffer = captured_log()
    net = Net(net_param(text), phase=phase, logger=logger, **kw)
    return net, messages(buffer)


def test_setup_log_is_caffes_line_for_line():
    net, lines = build(TINY)
    start = lines.index("Creating layer data")
    assert lines[start:] == TINY_SETUP.splitlines()
    assert net.output_names == ["acc", "loss"]               # alphabetical
    assert net.loss_weights == {"acc": 0.0, "loss": 1.0}
    assert [n.layer.name for n in net.nodes] == [
        "data", "label_data_1_split", "conv", "relu", "pool", "fc", "fc_fc_0_split", "loss", "acc"]
    assert any(line.startswith("Numerics: faithful") for line in lines)


def test_forward_backward_match_a_hand_written_torch_computation():
    torch.manual_seed(0)
    net, _ = build(TINY)
    x = torch.randn(2, 1, 6, 6)
    labels = torch.tensor([1.0, 3.0])
    net.set_input("data", x)
    net.set_input("label", labels)
    loss = net.forward_backward()
    w, b, wf, bf = (p.data.clone().double().requires_grad_(True) for p in net.learnable_params)
    h = torch.nn.functional.conv2d(x.double(), w, b).relu()
    h = torch.nn.functional.max_pool2d(h, 2, 2, ceil_mode=True)
    scores = h.reshape(2, -1) @ wf.t() + bf
    want = torch.nn.functional.cross_entropy(scores, labels.long())
    want.backward()
    assert loss == pytest.approx(want.item(), rel=1e-5)
    for p, ref in zip(net.learnable_params, (w, b, wf, bf)):
        assert torch.allclose(p.diff.double(), ref.grad, atol=1e-5)
    acc = (scores.argmax(1) == labels.long()).double().mean().item()
    assert dict(net.outputs())["acc"] == pytest.approx(acc)
    # diffs add up across passes (iter_size), clear_param_diffs zeroes them
    first = [p.diff.clone() for p in net.learnable_params]
    net.forward_backward()
    for p, d in zip(net.learnable_params, first):
        assert torch.allclose(p.diff, 2 * d)
    net.clear_param_diffs()
    assert all(not p.diff.any() for p in net.learnable_params)


def test_a_net_without_learnable_parameters_runs_and_clears_nothing():
    # Input -> EuclideanLoss: no parameter anywhere, as Caffe's loss-layer tests build it.
    # loss = sum((a - b)^2) / (2N); d loss / d a = (a - b) / N; clearing no diffs is a no-op.
    net, _ = build("""
layer { name: "in" type: "Input" top: "a" top: "b"
  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss" }
""")
    assert net.learnable_params == []
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
    b = torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 0.5]])
    net.set_input("a", a)
    net.set_input("b", b)
    net.clear_param_diffs()
    assert net.forward_backward() == pytest.approx((1 + 4 + 1 + 4) / (2 * 2))
    net.clear_param_diffs()


def test_layerwise_timing_pass_gives_the_same_gradients():
    text = TINY.replace('layer { name: "relu"', '''
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv"
  batch_norm_param { use_global_stats: true } }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu"''')
    net, _ = build(text)
    assert net.nodes[3].layer.scale_layer is net.nodes[4].layer       # BN folded the Scale
    torch.manual_seed(1)
    net.set_input("data", torch.randn(2, 1, 6, 6))
    net.set_input("label", torch.tensor([0.0, 4.0]))
    net.forward_backward()
    whole = [p.diff.clone() for p in net.learnable_params]
    net.clear_param_diffs()
    n = len(net.nodes)
    layerwise_pass(net, [0.0] * n, [0.0] * n)
    for p, d in zip(net.learnable_params, whole):
        assert torch.allclose(p.diff, d, atol=1e-6)


def test_batchnorm_scale_folding_changes_nothing_but_speed():
    middle = """
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "T"
  scale_param { bias_term: true filler { type: "gaussian" } bias_filler { type: "gaussian" } } }
layer { name: "relu" type: "ReLU" bottom: "T" top: "T" }
layer { name: "pool" type: "Pooling" bottom: "T" top: "pool\""""
    head, tail = TINY.split('layer { name: "relu"')
    tail = tail.split('top: "pool"', 1)[1]
    unfolded_text = head + middle + tail               # Scale not in-place: not folded
    folded_text = unfolded_text.replace('"T"', '"conv"')
    results = []
    for text in (unfolded_text, folded_text):
        torch.manual_seed(3)
        net, _ = build(text)
        net.set_input("data", torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(4)))
        net.set_input("label", torch.tensor([2.0, 1.0]))
        loss = net.forward_backward()
        results.append((net, loss))
    (plain, loss_a), (folded, loss_b) = results
    assert not plain.nodes[4].layer.folded and folded.nodes[4].layer.folded
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for p, q in zip(plain.learnable_params, folded.learnable_params):
        assert torch.allclose(p.data, q.data) and torch.allclose(p.diff, q.diff, atol=1e-5)


def test_state_filtering_phase_level_stage():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "train_only" type: "ReLU" bottom: "x" top: "a" include { phase: TRAIN } }
layer { name: "test_only" type: "ReLU" bottom: "x" top: "b" include { phase: TEST } }
layer { name: "deep" type: "ReLU" bottom: "x" top: "c" include { min_level: 2 } }
layer { name: "staged" type: "ReLU" bottom: "x" top: "d" include { stage: "s1" stage: "s2" } }
layer { name: "not_s1" type: "ReLU" bottom: "x" top: "e" exclude { stage: "s1" } }
"""
    names = lambda net: [n.layer.name for n in net.nodes]  # noqa: E731
    net, lines = build(text, TRAIN)
    assert names(net) == ["in", "x_in_0_split", "train_only", "not_s1"]
    assert "The NetState phase (0) differed from the phase (1) specified by a rule in layer " \
           "test_only" in lines
    net, _ = build(text, TEST, level=2, stages=["s1", "s2"])
    assert names(net) == ["in", "x_in_0_split", "test_only", "deep", "staged"]
    assert all(n.layer.phase == TEST for n in net.nodes)
    with pytest.raises(UserError, match="both include and exclude"):
        build(text.replace('include { phase: TRAIN }',
                           'include { phase: TRAIN } exclude { phase: TEST }'))


def test_shape_and_wiring_mismatches_are_one_line_errors_naming_the_layer():
    pool_7x7_on_6x6 = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 dim: 6 dim: 6 } } }
layer { name: "pool5" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: AVE kernel_size: 7 } }
"""
    with pytest.raises(UserError) as err:
        build(pool_7x7_on_6x6)
    assert "layer 'pool5' (Pooling)" in str(err.value) and "6x6" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="layer 'r' reads bottom 'nope'.*no earlier layer"):
        build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
              'layer { name: "r" type: "ReLU" bottom: "nope" top: "y" }')
    with pytest.raises(UserError, match="layer 'r2'.*'y' is produced by multiple sources"):
        build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
              'layer { name: "r" type: "ReLU" bottom: "x" top: "y" }\n'
              'layer { name: "r2" type: "ReLU" bottom: "x" top: "y" }')
    with pytest.raises(UserError, match="layer 'c'.*unknown layer type 'Conv'.*Convolution"):
        build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
              'layer { name: "c" type: "Conv" bottom: "x" top: "y" }')
    with pytest.raises(UserError, match="layer 'loss'.*loss_weight"):
        build(TINY.replace('top: "loss" }', 'top: "loss" top: "prob" }'))
    with pytest.raises(UserError, match="layer 'fc'.*too many param"):
        build(TINY.replace('top: "fc"\n', 'top: "fc" param {} param {} param {}\n'))
    with pytest.raises(UserError, match="layer 'f'.*in-place"):
        build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }'
              '\nlayer { name: "f" type: "Flatten" bottom: "x" top: "x" }')
    with pytest.raises(UserError, match="layer 'r'.*takes 1 bottom"):
        build('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
              'layer { name: "r" type: "ReLU" bottom: "x" bottom: "x" top: "y" }')


def test_reshape_reinfers_shapes_and_refuses_a_changed_inner_product_input():
    net, _ = build(TINY, TEST)
    net.reshape({"data": (7, 1, 6, 6), "label": (7,)})
    assert net.shapes["fc"] == (7, 5) and net.shapes["conv"] == (7, 3, 4, 4)
    net.set_input("data", np.zeros((7, 1, 6, 6), np.float32))
    with pytest.raises(UserError, match="input 'data' must have shape 7 1 6 6"):
        net.set_input("data", np.zeros((2, 1, 6, 6), np.float32))
    with pytest.raises(UserError, match=r"layer 'fc'.*27 features.*expect 12"):
        net.reshape({"data": (7, 1, 8, 8)})


def test_loss_weights_propagate_down_and_lr_mult_zero():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 3 dim: 4 } } }
layer { name: "a" type: "InnerProduct" bottom: "x" top: "a"
  inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
layer { name: "b" type: "InnerProduct" bottom: "a" top: "b" loss_weight: 0.5
  param { lr_mult: 0 } param { lr_mult: 2 decay_mult: 0 }
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
"""
    net, lines = build(text)
    assert "    with loss weight 0.5" in lines
    x = torch.randn(3, 4)
    net.set_input("x", x)
    loss = net.forward_backward()
    a_w, a_b, b_w, b_b = net.learnable_params
    assert (b_w.lr_mult, b_w.decay_mult, b_b.lr_mult, b_b.decay_mult) == (0, 1, 2, 0)
    out = x @ a_w.data.t() + a_b.data
    y = out @ b_w.data.t() + b_b.data
    assert loss == pytest.approx(0.5 * y.sum().item(), rel=1e-5)
    assert not b_w.diff.any()                          # lr_mult 0: no gradient computed
    assert torch.allclose(b_b.diff, torch.full((2,), 0.5 * 3))
    assert torch.allclose(a_w.diff, (0.5 * b_w.data.sum(0)).reshape(4, 1) * x.sum(0))
    # propagate_down: false on b's bottom keeps the gradient from a
    net, _ = build(text.replace('loss_weight: 0.5', 'loss_weight: 0.5 propagate_down: false'))
    net.set_input("x", x)
    net.forward_backward()
    assert not net.learnable_params[0].diff.any()
    assert net.learnable_params[3].diff.any()


def test_parameter_sharing_by_name():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "y1" param { name: "w" lr_mult: 3 }
  inner_product_param { num_output: 2 bias_term: false weight_filler { type: "gaussian" } } }
layer { name: "ip2" type: "InnerProduct" bottom: "x" top: "y2" param { name: "w" }
  inner_product_param { num_output: 2 bias_term: false weight_filler { type: "gaussian" } } }
layer { name: "sum" type: "Eltwise" bottom: "y1" bottom: "y2" top: "s" loss_weight: 1 }
"""
    net, lines = build(text)
    assert "Sharing parameters 'w' owned by layer 'ip1', param index 0" in lines
    assert len(net.learnable_params) == 1 and net.learnable_params[0].lr_mult == 3
    assert net.nodes[2].layer.blobs[0] is net.nodes[3].layer.blobs[0]
    x = torch.randn(2, 3)
    net.set_input("x", x)
    net.forward_backward()
    # both uses add their gradient: d/dW sum(xW^T) twice
    assert torch.allclose(net.learnable_params[0].diff, 2 * x.sum(0).expand(2, 3))
    with pytest.raises(UserError, match="mismatched lr_mult"):
        build(text.replace('param { name: "w" }', 'param { name: "w" lr_mult: 1 }'))
    with pytest.raises(UserError, match="shape mismatch"):
        build(text.replace('num_output: 2 bias_term: false weight_filler { type: "gaussian" } } }\n'
                           'layer { name: "sum"', 'num_output: 3 bias_term: false } }\n'
                           'layer { name: "sum"').replace('bottom: "y2" top: "s"',
                                                          'bottom: "y1" top: "s"'))


def test_split_gradients_add_and_loss_weight_moves_to_split_top_0():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" loss_weight: 2
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
layer { name: "r" type: "ReLU" bottom: "y" top: "z" loss_weight: 1 }
"""
    net, lines = build(text)
    split = net.nodes[2]
    assert split.layer.name == "y_ip_0_split" and split.loss_weights == [2.0, 0.0]
    assert net.nodes[1].loss_weights == [0.0]          # the producer's weight moved
    assert net.nodes[3].bottoms == ["y_ip_0_split_1"]
    x = torch.randn(2, 3)
    net.set_input("x", x)
    loss = net.forward_backward()
    w, b = (p.data for p in net.learnable_params)
    y = x @ w.t() + b
    assert loss == pytest.approx((2 * y.sum() + y.relu().sum()).item(), rel=1e-5)
    assert torch.allclose(net.learnable_params[1].diff, (2 + (y > 0).float()).sum(0))


def test_upgrades_v1_layers_input_dim_and_v0():
    v1 = """
name: "old"
input: "data" input_dim: 1 input_dim: 2 input_dim: 5 input_dim: 5
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" blobs_lr: 1 blobs_lr: 2
  weight_decay: 1 weight_decay: 0 convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "prob" type: SOFTMAX bottom: "conv" top: "prob" }
"""
    net, lines = build(v1, TEST)
    assert [n.layer.type for n in net.nodes] == ["Input", "Convolution", "ReLU", "Softmax"]
    assert net.nodes[0].layer.name == "input" and net.shapes["data"] == (1, 2, 5, 5)
    conv = net.learnable_params
    assert [(p.lr_mult, p.decay_mult) for p in conv] == [(1, 1), (2, 0)]
    assert any("deprecated V1LayerParameter" in line for line in lines)
    assert any("deprecated input fields" in line for line in lines)
    v0 = """
name: "v0"
input: "data" input_dim: 1 input_dim: 1 input_dim: 6 input_dim: 6
layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "data" top: "pad1" }
layers { layer { name: "conv1" type: "conv" num_output: 2 kernelsize: 3 stride: 1 }
  bottom: "pad1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 2 stride: 2 }
  bottom: "conv1" top: "pool1" }
"""
    net, lines = build(v0, TEST)
    assert [n.layer.name for n in net.nodes] == ["input", "conv1", "pool1"]
    assert net.nodes[1].bottoms == ["data"] and net.shapes["conv1"] == (1, 2, 6, 6)
    assert list(net.nodes[1].layer.param.convolution_param.pad) == [1]
    mixed = v1 + 'layer { name: "x" type: "ReLU" bottom: "prob" top: "prob" }'
    with pytest.raises(UserError, match="mixes 'layer' and legacy 'layers'"):
        build(mixed)


def test_old_batchnorm_params_are_upgraded_and_blobs_stay_out_of_learning():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 4 dim: 2 } } }
layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x"
  param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 } }
"""
    net, lines = build(text)
    assert any("Attempting to upgrade batch norm layers" in line for line in lines)
    assert [(p.lr_mult, p.decay_mult) for p in net.learnable_params] == [(0, 0)] * 3
    assert all(not p.leaf.requires_grad for p in net.learnable_params)


def test_share_trained_layers_with_a_test_net_sees_batchnorm_statistics():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 8 dim: 2 } } }
layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" }
layer { name: "ip" type: "InnerProduct" bottom: "y" top: "z" loss_weight: 1
  inner_product_param { num_output: 1 weight_filler { type: "gaussian" } } }
"""
    train, _ = build(text, TRAIN)
    test, _ = build(text, TEST)
    test.share_trained_layers_with(train)
    x = torch.randn(8, 2) * 3 + 1
    train.set_input("x", x)
    train.forward_backward()
    test.set_input("x", x)
    test.forward()
    mean, var = x.mean(0), x.var(0)          # blob2 = 1 after one pass: exact statistics
    want = (x - mean) / torch.sqrt(var + 1e-5)
    assert torch.allclose(torch.from_numpy(test.blob("y")), want, atol=1e-5)
    assert test.nodes[1].layer.blobs[0] is train.nodes[1].layer.blobs[0]
    with torch.no_grad():
        train.learnable_params[3].data.add_(1)          # an update shows in the test net
    assert torch.equal(test.learnable_params[3].data, train.learnable_params[3].data)


def test_to_proto_holds_every_layer_with_caffes_additions():
    net, _ = build(TINY.replace('layer { name: "relu"', 'layer { name: "bn" type: "BatchNorm" '
                                'bottom: "conv" top: "conv" }\nlayer { name: "relu"'))
    proto = net.to_proto()
    names = [l.name for l in proto.layer]
    assert names == [n.layer.name for n in net.nodes]
    by_name = {l.name: l for l in proto.layer}
    assert list(by_name["loss"].loss_weight) == [1.0]           # LossLayer's default
    assert [p.lr_mult for p in by_name["bn"].param] == [0, 0, 0]
    assert all(l.phase == TRAIN for l in proto.layer)
    assert by_name["fc_fc_0_split"].type == "Split" and not len(by_name["fc_fc_0_split"].blobs)
    assert [tuple(b.shape.dim) for b in by_name["bn"].blobs] == [(3,), (3,), (1,)]
    assert not any(len(b.diff) for l in proto.layer for b in l.blobs)
    assert all(len(b.diff) == len(b.data) for l in net.to_proto(write_diff=True).layer
               for b in l.blobs)


def test_data_layer_reads_an_lmdb_in_key_order_and_transforms(tmp_path):
    import lmdb
    images = np.arange(5 * 1 * 4 * 4, dtype=np.uint8).reshape(5, 1, 4, 4) * 3
    env = lmdb.open(str(tmp_path / "db"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i, img in enumerate(images):
            d = caffe_pb2.Datum(channels=1, height=4, width=4, data=img.tobytes(), label=i * 10)
            txn.put(f"{i:08d}".encode(), d.SerializeToString())
    env.close()
    mean = caffe_pb2.BlobProto(num=1, channels=1, height=4, width=4)
    mean.data.extend(np.full(16, 2.0, np.float32))
    (tmp_path / "mean.binaryproto").write_bytes(mean.SerializeToString())
    text = f"""
layer {{ name: "data" type: "Data" top: "data" top: "label"
  transform_param {{ scale: 0.5 mean_file: "{tmp_path / 'mean.binaryproto'}" crop_size: 2 }}
  data_param {{ source: "{tmp_path / 'db'}" batch_size: 3 backend: LMDB }} }}
"""
    net, lines = build(text, TEST)
    assert "output data size: 3,1,2,2" in lines
    assert net.shapes == {"data": (3, 1, 2, 2), "label": (3,)}
    net.forward()
    data, label = net.blob("data"), net.blob("label")
    want = (images[:3, :, 1:3, 1:3].astype(np.float32) - 2) * 0.5   # TEST: centre crop
    np.testing.assert_array_equal(data, want)
    np.testing.assert_array_equal(label, [0, 10, 20])
    net.forward()                                      # wraps: records 3, 4, 0
    np.testing.assert_array_equal(net.blob("label"), [30, 40, 0])
    thread = net.nodes[0].layer.prefetcher.thread
    net.close()
    assert not thread.is_alive()


def test_data_layer_train_crop_and_mirror_are_windows_of_the_image(tmp_path):
    import lmdb
    img = np.arange(36, dtype=np.uint8).reshape(1, 6, 6)
    env = lmdb.open(str(tmp_path / "db"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        d = caffe_pb2.Datum(channels=1, height=6, width=6, data=img.tobytes(), label=1)
        txn.put(b"0", d.SerializeToString())
    env.close()
    text = f"""
layer {{ name: "data" type: "Data" top: "data" transform_param {{ crop_size: 3 mirror: true }}
  data_param {{ source: "{tmp_path / 'db'}" batch_size: 40 backend: LMDB }} }}
"""
    torch.manual_seed(0)
    net, _ = build(text, TRAIN)
    net.forward()
    seen_offsets, flips = set(), 0
    for crop in net.blob("data")[:, 0]:
        flipped = crop[0, 0] > crop[0, -1]
        flips += bool(flipped)
        c = crop[:, ::-1] if flipped else crop
        top, left = divmod(int(c[0, 0]), 6)
        np.testing.assert_array_equal(c, img[0, top:top + 3, left:left + 3])
        seen_offsets.add((top, left))
    assert 5 < flips < 35 and len(seen_offsets) > 6


def test_data_layer_bad_source_is_one_line():
    text = ('layer { name: "data" type: "Data" top: "data" '
            'data_param { source: "/nonexistent/lmdb" batch_size: 2 backend: LMDB } }')
    with pytest.raises(UserError) as err:
        build(text)
    assert "/nonexistent/lmdb" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("bn", [False, True])
def test_the_papers_train_nets_train_step(bn, tmp_path):
    from bnface_caffe.architectures import NetOptions, build_net
    p = build_net(NetOptions(bn=bn, num_classes=10))
    layers = [l for l in p.layer if l.type != "Data"]
    del p.layer[:]
    data = p.layer.add(name="data", type="Input", top=["data", "label"])
    data.input_param.shape.add(dim=[4, 1, 50, 50])
    data.input_param.shape.add(dim=[4])
    p.layer.extend(layers)
    logger, buffer = captured_log()
    torch.manual_seed(0)
    net = Net(p, phase=TRAIN, logger=logger)
    shapes = [line for line in messages(buffer) if line.startswith("Top shape")]
    # 50 -> 25 -> 13 -> 7 -> 1 (Caffe's ceil-mode pooling)
    for want in ("Top shape: 4 64 25 25 (160000)", "Top shape: 4 128 13 13 (86528)",
                 "Top shape: 4 192 7 7 (37632)", "Top shape: 4 320 1 1 (1280)"):
        assert want in shapes
    assert shapes[-1] == "Top shape: (1)"
    assert net.output_names == ["loss"]                  # accuracy layers are TEST-only
    net.set_input("data", torch.rand(4, 1, 50, 50))
    net.set_input("label", torch.tensor([0.0, 3.0, 9.0, 3.0]))
    loss = net.forward_backward()
    assert 0 < loss < 10
    assert all(torch.isfinite(p.diff).all() for p in net.learnable_params)
    learned = [p for p in net.learnable_params if p.lr_mult]
    assert all(p.diff.abs().sum() > 0 for p in learned)
    if bn:
        stats = [n.layer.blobs[2].item() for n in net.nodes if n.layer.type == "BatchNorm"]
        assert stats == [1.0] * 4


@pytest.mark.parametrize("bf16", ["1", "0"])
def test_fast_mode_is_announced_and_stays_close_to_faithful(bf16, monkeypatch):
    # BNFACE_CPU_BF16=0 stands for a CPU without bf16 units: fast mode then stays float32 and
    # says so in its one Numerics line.
    from bnface_caffe.engine import precision
    monkeypatch.setenv(precision.CPU_BF16_SWITCH, bf16)
    uses_bf16 = precision.uses_bf16(True, "cpu")
    assert uses_bf16 == (bf16 == "1" and precision.cpu_has_bf16())
    results = []
    for fast in (False, True):
        torch.manual_seed(5)
        net, lines = build(TINY, fast=fast)
        net.set_input("data", torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(6)))
        net.set_input("label", torch.tensor([1.0, 2.0]))
        results.append((net.forward_backward(), [p.diff.clone() for p in net.learnable_params]))
        header = [line for line in lines if line.startswith("Numerics:")]
        assert len(header) == 1 and (("FAST" in header[0]) == fast)
        if fast:
            assert ("bf16 autocast, channels-last" in header[0]) == uses_bf16
            assert ("float32: bf16 autocast off by BNFACE_CPU_BF16=0" in header[0]) == (bf16 == "0")
    (loss_a, diffs_a), (loss_b, diffs_b) = results
    # bf16 keeps 8 bits of mantissa: a relative error of 2^-8 per rounding
    rel, atol = (2e-2, 1e-2) if uses_bf16 else (1e-3, 1e-3)
    assert loss_b == pytest.approx(loss_a, rel=rel)
    for a, b in zip(diffs_a, diffs_b):
        assert torch.allclose(a, b, atol=atol, rtol=10 * rel)
    assert torch.are_deterministic_algorithms_enabled() is False   # fast mode ran last
    build(TINY)[0].forward()
    assert torch.are_deterministic_algorithms_enabled() is True    # faithful re-applies


def test_permissive_sharing_views_the_owners_memory():
    text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 6 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "y1" loss_weight: 1 param { name: "w" }
  inner_product_param { num_output: 2 bias_term: false weight_filler { type: "gaussian" } } }
layer { name: "r" type: "Reshape" bottom: "x" top: "x3" reshape_param { shape { dim: 0 dim: 3 dim: 2 } } }
layer { name: "ip2" type: "InnerProduct" bottom: "x3" top: "y2" loss_weight: 1
  param { name: "w" share_mode: PERMISSIVE }
  inner_product_param { num_output: 6 bias_term: false axis: 2 } }
"""
    net, _ = build(text)
    (w,) = net.learnable_params                       # one owner, 12 numbers
    ip2 = [n for n in net.nodes if n.layer.name == "ip2"][0].layer
    assert ip2.blobs[0].shape == (6, 2) and ip2.blobs[0].data_ptr() == w.data.data_ptr()
    x = torch.randn(2, 6)
    net.set_input("x", x)
    net.forward_backward()
    # d/dW of sum(x W^T) + sum(x3 V^T), V = the same 12 numbers viewed 6x2
    g1 = x.sum(0).expand(2, 6)
    g2 = x.reshape(2, 3, 2).sum((0, 1)).expand(6, 2).reshape(2, 6)
    assert torch.allclose(w.diff, g1 + g2, atol=1e-5)


def test_transformer_mean_value_then_scale_in_float32():
    from bnface_caffe.engine.transform import Transformer
    p = caffe_pb2.TransformationParameter(scale=0.1, mean_value=[10, 20, 30])
    images = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2) * 7
    out = Transformer(p, TEST, "t", seed=0)(images)
    want = (images.astype(np.float32) - np.float32([10, 20, 30]).reshape(1, 3, 1, 1)) \
        * np.float32(0.1)
    assert out.dtype == np.float32 and np.array_equal(out, want)
    one = Transformer(caffe_pb2.TransformationParameter(mean_value=[5]), TEST, "t", seed=0)
    assert np.array_equal(one(images), images.astype(np.float32) - 5)    # one value, all channels
    with pytest.raises(UserError, match="1 mean_value or one per channel"):
        Transformer(caffe_pb2.TransformationParameter(mean_value=[1, 2]), TEST, "t")(images)
    with pytest.raises(UserError, match="mean_file or mean_value, not both"):
        Transformer(caffe_pb2.TransformationParameter(mean_value=[1], mean_file="m"), TEST, "t")
    with pytest.raises(UserError, match="crop_size 3 is larger"):
        Transformer(caffe_pb2.TransformationParameter(crop_size=3), TRAIN, "t")(images)
