"""Snapshots and restore: `<prefix>_iter_N.caffemodel` + `<prefix>_iter_N.solverstate`, or
with snapshot_format: HDF5 `.caffemodel.h5` + `.solverstate.h5` (formats/hdf5.py).

Solver::Snapshot writes the net's weights, then the solver state naming them; both files go
through a temporary name and a rename, model first, so a crash at any moment leaves either
the previous complete pair or the new one. The file formats are in formats/.
"""
import torch

from ..errors import UserError
from ..formats import caffemodel, hdf5, solver_log, solverstate
from ..proto import caffe_pb2
from ..shapes import shape_string
from . import net_weights


def write_snapshot(solver, net, prefix, snapshot_diff=False, log=None):
    """Write the pair for the solver's current iter; returns (model path, state path)."""
    log = log if log is not None else net.log
    if solver.param.snapshot_format == caffe_pb2.SolverParameter.HDF5:
        model_path, state_path = solverstate.snapshot_paths(prefix, solver.iter, hdf5=True)
        solver_log.snapshotting_model_hdf5(log, model_path)
        net_weights.to_hdf5(net, model_path, snapshot_diff)
        solver_log.snapshotting_state_hdf5(log, state_path)
        hdf5.write_solverstate(state_path, solver.iter, model_path, solver.current_step,
                               [h.detach().float().cpu().numpy() for h in solver.history])
        return model_path, state_path
    model_path, state_path = solverstate.snapshot_paths(prefix, solver.iter)
    solver_log.snapshotting_model(log, model_path)
    caffemodel.write(net.to_proto(write_diff=snapshot_diff), model_path)
    state = solverstate.make(solver.iter, model_path, solver.current_step, solver.history)
    solver_log.snapshotting_state(log, state_path)
    solverstate.write(state, state_path)
    return model_path, state_path


def restore(solver, net, path, log=None):
    """SGDSolver::RestoreSolverStateFromBinaryProto: iter, weights, current_step, history.
    (As in Caffe, the data cursor, the RNG and the smoothed-loss buffer are not restored.)
    A name ending in .h5 is an HDF5 state (RestoreSolverStateFromHDF5)."""
    log = log if log is not None else net.log
    if str(path).endswith(".h5"):
        return _restore_hdf5(solver, net, path)
    state = solverstate.read(path)
    solver.iter = state.iter
    if state.HasField("learned_net"):
        model_path = solverstate.learned_net_path(state, path)
        net.copy_trained_layers_from(caffemodel.read(model_path), model_path)
    solver.current_step = state.current_step
    if len(state.history) != len(solver.history):
        raise UserError(f"{path}: {len(state.history)} history blobs, but this solver "
                        f"({solver.param.type} on this net) keeps {len(solver.history)}; "
                        "is it the same net and solver type?")
    solver_log.restoring_history(log)
    for i, (array, h) in enumerate(zip(solverstate.history_arrays(state, path), solver.history)):
        if array.size != h.numel():
            raise UserError(f"{path}: history blob {i} has shape {array.shape}, the net's "
                            f"parameter has {tuple(h.shape)}; is it the same net?")
        h.copy_(torch.from_numpy(array.reshape(tuple(h.shape))))


def _restore_hdf5(solver, net, path):
    """SGDSolver::RestoreSolverStateFromHDF5: iter, weights (binary or HDF5, by content),
    current_step, history of exactly the parameters' shapes (no "restoring history" line)."""
    iteration, learned, step, history = hdf5.read_solverstate(path, net.log)
    solver.iter = iteration
    if learned is not None:
        model_path = solverstate.learned_net_path(caffe_pb2.SolverState(learned_net=learned), path)
        net.copy_trained_layers_from_file(model_path)
    solver.current_step = step
    if len(history) != len(solver.history):
        raise UserError(f"{path}: {len(history)} history blobs, but this solver "
                        f"({solver.param.type} on this net) keeps {len(solver.history)}; "
                        "incorrect length of history blobs (is it the same net and solver type?)")
    for i, (array, h) in enumerate(zip(history, solver.history)):
        if array.shape != tuple(h.shape):
            raise UserError(f"{path}: cannot load history blob {i} from hdf5; shape mismatch, "
                            f"source shape {shape_string(array.shape)}, target shape "
                            f"{shape_string(tuple(h.shape))}")
        h.copy_(torch.from_numpy(array))


def load_weights(nets, weights, log):
    """--weights / the solver's `weights`: comma-separated caffemodels copied by layer name
    into the train net and every test net (Caffe's LoadNetWeights, "Finetuning from")."""
    paths = caffemodel.weight_paths(weights)
    for net in nets:
        for path in paths:
            solver_log.finetuning_from(log, path)
            net.copy_trained_layers_from_file(path)   # binary or HDF5, by content
