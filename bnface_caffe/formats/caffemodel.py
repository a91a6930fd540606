"""`.caffemodel` weights: a binary NetParameter whose layers carry their blobs.

`read` is the one way in, for the engine, the training driver and the pycaffe backend, with
every refusal in one place (a missing or empty file, a directory, bytes that are not a
NetParameter, a model without a single blob). An HDF5 model (.caffemodel.h5, told apart by
its content as Caffe does) is read by formats/hdf5.py instead. `write` is Net::ToProto's output
serialised atomically. `weight_paths` splits --weights' comma-separated list and checks each
file before any net is built.
"""
import os

from ..errors import UserError
from ..proto import caffe_pb2
from . import hdf5, prototxt


def check_path(path):
    """Refuse what cannot be a usable binary caffemodel, before reading it."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such weights file (.caffemodel files, comma-separated)")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, expected a .caffemodel file")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path}: the file is empty (0 bytes); was the snapshot cut short? "
                        "Use another snapshot")


def read(path):
    """The NetParameter in a .caffemodel (not yet upgraded: the Net upgrades what it reads)."""
    check_path(path)
    if hdf5.is_hdf5(path):
        raise UserError(f"{path}: is an HDF5 .caffemodel.h5, not a binary .caffemodel "
                        "(Net.copy_trained_layers_from_file reads both)")
    param = prototxt.read_binary(path, caffe_pb2.NetParameter)
    layers = list(param.layer) + list(param.layers)
    if not any(len(layer.blobs) for layer in layers):
        what = f"{len(layers)} layer(s) but no weights" if layers else "no layers"
        raise UserError(f"{path}: holds {what}; is it a .caffemodel written by training "
                        "(not a net prototxt)?")
    return param


def write(net_parameter, path):
    prototxt.write_binary(net_parameter, path)


def weight_paths(weights):
    """--weights 'a.caffemodel,b.caffemodel' → checked paths (Caffe's comma-separated list)."""
    paths = [p.strip() for p in str(weights).split(",") if p.strip()]
    if not paths:
        raise UserError(f"--weights {weights!r}: give one or more .caffemodel files, "
                        "comma-separated")
    for path in paths:
        check_path(path)
    return paths


def check_resume_or_finetune(snapshot, weights):
    """caffe train's rule: resume (--snapshot) or fine-tune (--weights), never both."""
    if snapshot and weights:
        raise UserError("give --snapshot to resume training or --weights to fine-tune, not both")
