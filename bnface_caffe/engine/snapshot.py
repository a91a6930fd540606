"""Snapshots and restore: `<prefix>_iter_N.caffemodel` + `<prefix>_iter_N.solverstate`
(with snapshot_format: HDF5, `.caffemodel.h5` + `.solverstate.h5`: hdf5_snapshot.py).

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
from ..glog import log
from ..proto import caffe_pb2
from . import hdf5_snapshot, trainlog
from .blobs import array_to_proto, proto_to_array


def snapshot_paths(prefix, iteration, hdf5=False):
    base = f"{prefix}_iter_{iteration}"
    if hdf5:
        return base + ".caffemodel.h5", base + ".solverstate.h5"
    return base + ".caffemodel", base + ".solverstate"


def write_snapshot(solver, net, prefix, snapshot_diff=False):
    """Write the pair for the solver's current iter; returns (model path, state path)."""
    param = getattr(solver, "param", None)
    if param is not None and param.snapshot_format == caffe_pb2.SolverParameter.HDF5:
        model_path, state_path = snapshot_paths(prefix, solver.iter, hdf5=True)
        log.info("solver.cpp:474", f"Snapshotting to HDF5 file {model_path}")
        hdf5_snapshot.write_caffemodel(net, model_path, snapshot_diff)
        log.info("sgd_solver.cpp:296", f"Snapshotting solver state to HDF5 file {state_path}")
        hdf5_snapshot.write_state(solver, state_path, model_path)
        return model_path, state_path
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
    (As in Caffe, the data cursor, the RNG and the smoothed-loss buffer are not restored.)
    A name ending in .h5 is an HDF5 state (RestoreSolverStateFromHDF5)."""
    if path.endswith(".h5"):
        if not os.path.exists(path):
            raise UserError(f"{path}: no such solver state file (give the .solverstate.h5 "
                            "written by a snapshot)")
        hdf5_snapshot.restore(solver, net, path, lambda learned: learned_net_path(
            caffe_pb2.SolverState(learned_net=learned), path))
        return
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
            if hdf5_snapshot.is_hdf5(path):     # Caffe tells the formats apart by content
                hdf5_snapshot.copy_trained_layers(net, path)
            else:
                net.copy_trained_layers_from(prototxt.read_binary(path, caffe_pb2.NetParameter))
