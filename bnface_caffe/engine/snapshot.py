"""Snapshots and restore: `<prefix>_iter_N.caffemodel` + `<prefix>_iter_N.solverstate`.

The caffemodel is Net::ToProto (a NetParameter with every layer's blobs); the solverstate is
a SolverState: iter, learned_net (the caffemodel's path as written), current_step, and the
history blobs in learnable-param order (shape + float data, as Blob::ToProto without diff).
Both are written to a temporary name and renamed, model first: a crash at any moment leaves
either the previous complete pair or the new one.
"""
import os

import torch

from .. import prototxt
from ..errors import UserError
from ..proto import caffe_pb2
from . import trainlog
from .blobs import array_to_proto, proto_to_array


def snapshot_paths(prefix, iteration):
    base = f"{prefix}_iter_{iteration}"
    return base + ".caffemodel", base + ".solverstate"


def write_snapshot(solver, net, prefix, snapshot_diff=False):
    """Write the pair for the solver's current iter; returns (model path, state path)."""
    model_path, state_path = snapshot_paths(prefix, solver.iter)
    trainlog.snapshotting_model(model_path)
    prototxt.write_binary(net.to_proto(write_diff=snapshot_diff), model_path)
    state = caffe_pb2.SolverState(iter=solver.iter, learned_net=model_path,
                                  current_step=solver.current_step)
    state.history.extend(array_to_proto(h) for h in solver.history)
    trainlog.snapshotting_state(state_path)
    prototxt.write_binary(state, state_path)
    return model_path, state_path


def read_state(path):
    if not os.path.exists(path):
        raise UserError(f"{path}: no such solver state file (give the .solverstate written "
                        "by a snapshot)")
    if path.endswith(".h5"):
        raise UserError(f"{path}: HDF5 solver states are not supported; resume from a "
                        ".solverstate (snapshot_format: BINARYPROTO)")
    return prototxt.read_binary(path, caffe_pb2.SolverState)


def learned_net_path(state, state_path):
    """The caffemodel a state points to. Caffe opens the path as written (relative to where
    it runs); if that is gone we also look beside the .solverstate, so a moved run resumes."""
    path = state.learned_net
    if os.path.exists(path):
        return path
    beside = os.path.join(os.path.dirname(os.path.abspath(state_path)), os.path.basename(path))
    if os.path.exists(beside):
        return beside
    raise UserError(f"{state_path}: its learned_net \"{path}\" does not exist (nor beside the "
                    ".solverstate)")


def restore(solver, net, path):
    """SGDSolver::RestoreSolverStateFromBinaryProto: iter, weights, current_step, history.
    (As in Caffe, the data cursor, the RNG and the smoothed-loss buffer are not restored.)"""
    state = read_state(path)
    solver.iter = state.iter
    if state.HasField("learned_net"):
        model_path = learned_net_path(state, path)
        net.copy_trained_layers_from(prototxt.read_binary(model_path, caffe_pb2.NetParameter))
    solver.current_step = state.current_step
    if len(state.history) != len(solver.history):
        raise UserError(f"{path}: {len(state.history)} history blobs, but this solver "
                        f"({solver.param.type} on this net) keeps {len(solver.history)}; "
                        "is it the same net and solver type?")
    trainlog.restoring_history()
    for i, (blob, h) in enumerate(zip(state.history, solver.history)):
        try:
            array = proto_to_array(blob)
        except ValueError as err:
            raise UserError(f"{path}: history blob {i}: {err}") from None
        if array.size != h.numel():
            raise UserError(f"{path}: history blob {i} has shape {array.shape}, the net's "
                            f"parameter has {tuple(h.shape)}; is it the same net?")
        h.copy_(torch.from_numpy(array.reshape(tuple(h.shape))))


def load_weights(nets, weights):
    """--weights / the solver's `weights`: comma-separated caffemodels copied by layer name
    into the train net and every test net (Caffe's LoadNetWeights, "Finetuning from")."""
    for net in nets:
        for path in (p.strip() for p in weights.split(",")):
            trainlog.finetuning_from(path)
            if not os.path.exists(path):
                raise UserError(f"{path}: no such weights file (--weights takes .caffemodel files, "
                                "comma-separated)")
            net.copy_trained_layers_from(prototxt.read_binary(path, caffe_pb2.NetParameter))
