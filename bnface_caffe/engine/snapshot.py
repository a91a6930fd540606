"""Snapshots and restore: `<prefix>_iter_N.caffemodel` + `<prefix>_iter_N.solverstate`.

Solver::Snapshot writes the net's weights, then the solver state naming them; both files go
through a temporary name and a rename, model first, so a crash at any moment leaves either
the previous complete pair or the new one. The file formats are in formats/.
"""
import torch

from ..errors import UserError
from ..formats import caffemodel, solver_log, solverstate


def write_snapshot(solver, net, prefix, snapshot_diff=False, log=None):
    """Write the pair for the solver's current iter; returns (model path, state path)."""
    log = log if log is not None else net.log
    model_path, state_path = solverstate.snapshot_paths(prefix, solver.iter)
    solver_log.snapshotting_model(log, model_path)
    caffemodel.write(net.to_proto(write_diff=snapshot_diff), model_path)
    state = solverstate.make(solver.iter, model_path, solver.current_step, solver.history)
    solver_log.snapshotting_state(log, state_path)
    solverstate.write(state, state_path)
    return model_path, state_path


def restore(solver, net, path, log=None):
    """SGDSolver::RestoreSolverStateFromBinaryProto: iter, weights, current_step, history.
    (As in Caffe, the data cursor, the RNG and the smoothed-loss buffer are not restored.)"""
    log = log if log is not None else net.log
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


def load_weights(nets, weights, log):
    """--weights / the solver's `weights`: comma-separated caffemodels copied by layer name
    into the train net and every test net (Caffe's LoadNetWeights, "Finetuning from")."""
    paths = caffemodel.weight_paths(weights)
    for net in nets:
        for path in paths:
            solver_log.finetuning_from(log, path)
            net.copy_trained_layers_from(caffemodel.read(path), path)
