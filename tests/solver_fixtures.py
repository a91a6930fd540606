"""Small, fast training set-ups for the solver / driver tests: a learnable toy LMDB, a
little net (optionally with BatchNorm+Scale), and a solver prototxt around them."""
import os

import numpy as np

from bnface_caffe.formats.datum import encode_raw
from bnface_caffe.formats.lmdb_io import LmdbWriter

CLASSES = 4
SIDE = 8


def make_lmdb(path, records, seed):
    """`records` 1×8×8 images whose label decides which quadrant is bright."""
    rng = np.random.default_rng(seed)
    with LmdbWriter(str(path)) as db:
        for i in range(records):
            label = i % CLASSES
            image = rng.integers(0, 80, (SIDE, SIDE), dtype=np.uint8)
            r, c = divmod(label, 2)
            image[r * 4:(r + 1) * 4, c * 4:(c + 1) * 4] += 150
            db.put(f"{i:08d}", encode_raw(image, label))
    return str(path)


def net_text(train_lmdb, test_lmdb, batch=8, test_batch=10, bn=True):
    bn_layers = """
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
""" if bn else ""
    conv_bias = "bias_term: false" if bn else 'bias_filler { type: "constant" value: 0.1 }'
    conv_params = ("param { lr_mult: 1 decay_mult: 1 }" if bn else
                   "param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }")
    return f"""name: "toy"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{train_lmdb}" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{test_lmdb}" batch_size: {test_batch} backend: LMDB }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1" {conv_params}
  convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 {conv_bias}
    weight_filler {{ type: "xavier" }} }} }}
{bn_layers}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 0 }}
  inner_product_param {{ num_output: {CLASSES} weight_filler {{ type: "xavier" }}
    bias_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
layer {{ name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy"
  include {{ phase: TEST }} }}
"""


SOLVER = """net: "net.prototxt"
test_iter: 2
test_interval: 5
base_lr: 0.05
lr_policy: "multistep"
gamma: 0.5
stepvalue: 6
stepvalue: 12
stepvalue: 12
display: 1
max_iter: 20
momentum: 0.9
weight_decay: 0.0005
snapshot: 10
snapshot_prefix: "snap/toy"
solver_mode: CPU
random_seed: 7
"""


def solver_text(overrides=None, solver=SOLVER):
    """SOLVER with some fields replaced, e.g. {"max_iter": 8, "average_loss": 3}."""
    from bnface_caffe.formats import prototxt
    from bnface_caffe.proto import caffe_pb2
    param = prototxt.parse_text(solver, caffe_pb2.SolverParameter)
    for field, value in (overrides or {}).items():
        if isinstance(value, (list, tuple)):
            param.ClearField(field)
            getattr(param, field).extend(value)
        else:
            setattr(param, field, value)
    return prototxt.format_text(param)


def make_setup(folder, overrides=None, train_records=40, batch=8, bn=True, solver=SOLVER,
               name="solver.prototxt"):
    """Write LMDBs (once), net.prototxt and a solver into `folder`; returns the solver path.
    40 records / batch 8 = 5 iterations per pass, so a resume at 10 or 20 reads what an
    uninterrupted run reads (Caffe does not restore the data cursor)."""
    folder = str(folder)
    if not os.path.exists(os.path.join(folder, "train_lmdb")):
        make_lmdb(os.path.join(folder, "train_lmdb"), train_records, seed=1)
        make_lmdb(os.path.join(folder, "test_lmdb"), 20, seed=2)
    with open(os.path.join(folder, "net.prototxt"), "w") as f:
        f.write(net_text("train_lmdb", "test_lmdb", batch=batch, bn=bn))
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(solver_text(overrides, solver))
    return path
