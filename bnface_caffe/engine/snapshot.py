"""Snapshots: `<prefix>_iter_N.caffemodel`, `.resume.json` (ours) and `.solverstate` (with
snapshot_format: HDF5, `.caffemodel.h5` and `.solverstate.h5`: formats/hdf5.py).

Written so that at any instant the newest complete set is loadable: each file goes to a
temporary name, is fsynced, renamed and its folder fsynced (formats/prototxt.py, hdf5.py), in
the order weights → sidecar → state. The state names the weights, so it comes last: a set is
complete exactly when its state exists, and a crash at any moment leaves either the previous
complete set or the new one (plus, at worst, files of the new one that no state names yet,
which `--resume` skips). An older set of the same iteration loses its state first, so an old
state never pairs with new weights. A write that fails (disk full, I/O error) removes what it
wrote of the new set and ends the run with SnapshotFailed, naming the newest complete
snapshot left.

`newest_complete` finds the set `--resume` continues from; `prune` keeps the newest N
(--keep-snapshots); `restore` is SGDSolver::RestoreSolverStateFrom{BinaryProto,HDF5} (the
sidecar is engine/resume.py's). The file formats are in formats/.

Test hook: BNFACE_TEST_SNAPSHOT_PAUSE=SECONDS sleeps before and after each rename, so a test
can kill the process at a chosen point of a snapshot.
"""
import os
import re
import time

import torch

from ..errors import RunFailed, UserError
from ..formats import caffemodel, hdf5, prototxt, resume_state, solver_log, solverstate
from ..formats.glog import Glog
from ..proto import caffe_pb2
from ..shapes import shape_string
from . import net_weights

# the files of a set, in the order a snapshot writes them (prune deletes in reverse)
KINDS = ("caffemodel", "caffemodel.h5", "resume.json", "solverstate", "solverstate.h5")
STATES = ("solverstate", "solverstate.h5")
_KIND_PATTERN = r"(caffemodel|caffemodel\.h5|resume\.json|solverstate|solverstate\.h5)"
PAUSE_VARIABLE = "BNFACE_TEST_SNAPSHOT_PAUSE"


class SnapshotFailed(RunFailed):
    """A snapshot could not be written; the previous complete one is intact."""


def _test_pause():
    seconds = float(os.environ.get(PAUSE_VARIABLE, "0") or 0)

    def pause(*_):
        if seconds > 0:
            time.sleep(seconds)
    return pause


def write_snapshot(solver, net, prefix, snapshot_diff=False, log=None, sidecar=None):
    """Write the set for the solver's current iter; returns (model path, state path).
    `sidecar`: the resume document (engine/resume.to_document) or None for Caffe's pair only."""
    log = log if log is not None else net.log
    as_hdf5 = solver.param.snapshot_format == caffe_pb2.SolverParameter.HDF5
    model_path, state_path = solverstate.snapshot_paths(prefix, solver.iter, hdf5=as_hdf5)
    side_path = resume_state.path_for(state_path)
    pause = _test_pause()
    written = []

    def sidecar_then_state(state_tmp):
        """Runs once the state is on disk under its temporary name: the sidecar (with the
        state's hash) is renamed into place before the state is."""
        if sidecar is not None:
            with open(state_tmp, "rb") as f:
                digest = resume_state.sha256_hex(f.read())
            document = dict(sidecar, iter=solver.iter, solverstate=os.path.basename(state_path),
                            solverstate_sha256=digest)
            resume_state.write(document, side_path, pause)
            written.append(side_path)
        else:
            prototxt.remove(side_path)
        pause()
        pause()

    try:
        prototxt.remove(state_path)
        if as_hdf5:
            solver_log.snapshotting_model_hdf5(log, model_path)
            net_weights.to_hdf5(net, model_path, snapshot_diff, pause)
        else:
            solver_log.snapshotting_model(log, model_path)
            caffemodel.write(net.to_proto(write_diff=snapshot_diff), model_path, pause)
        written.append(model_path)
        pause()
        if as_hdf5:
            solver_log.snapshotting_state_hdf5(log, state_path)
            hdf5.write_solverstate(state_path, solver.iter, model_path, solver.current_step,
                                   [h.detach().float().cpu().numpy() for h in solver.history],
                                   sidecar_then_state)
        else:
            solver_log.snapshotting_state(log, state_path)
            state = solverstate.make(solver.iter, model_path, solver.current_step, solver.history)
            solverstate.write(state, state_path, sidecar_then_state)
        pause()
    except UserError as err:
        for path in written:
            try:
                prototxt.remove(path)
            except UserError:
                pass
        newest = newest_complete(prefix)
        left = (f"the newest complete snapshot is {newest} (resume with --snapshot {newest} or "
                "--resume)" if newest else "there is no earlier complete snapshot")
        raise SnapshotFailed(f"snapshot at iteration {solver.iter} failed: {err}; {left}") from None
    return model_path, state_path


# -- the sets on disk ------------------------------------------------------------------------
def _folder_and_base(prefix):
    return os.path.dirname(prefix), os.path.basename(prefix)


def snapshot_files(prefix):
    """{iteration: {kind: path}} for the snapshot files of `prefix` (kinds: KINDS)."""
    folder, base = _folder_and_base(prefix)
    pattern = re.compile(re.escape(base) + r"_iter_(\d+)\." + _KIND_PATTERN)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return {}
    found = {}
    for name in names:
        m = pattern.fullmatch(name)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = os.path.join(folder, name)
    return found


def incomplete_reason(state_path):
    """None when the state and the weights it names load, else what is wrong."""
    silent = Glog.silent()
    try:
        if state_path.endswith(".h5"):
            learned = hdf5.read_solverstate(state_path, silent)[1]
            state = caffe_pb2.SolverState(learned_net=learned or "")
        else:
            state = solverstate.read(state_path)
            solverstate.history_arrays(state, state_path)
        if state.learned_net:
            model = solverstate.learned_net_path(state, state_path)
            if hdf5.is_hdf5(model):
                hdf5.read_caffemodel(model, silent)
            else:
                caffemodel.read(model)
    except UserError as err:
        return str(err)
    return None


def _state_of(kinds):
    return next((kinds[k] for k in STATES if k in kinds), None)


def newest_complete(prefix, log=None):
    """The state file of the newest complete set of `prefix`, or None. With a `log`, each
    set passed over gets a line saying why."""
    files = snapshot_files(prefix)
    for iteration in sorted(files, reverse=True):
        kinds = files[iteration]
        state = _state_of(kinds)
        if state is None:
            if log is not None:
                solver_log.skipping_snapshot(log, ", ".join(sorted(kinds.values())),
                                             "no .solverstate (a snapshot cut short)")
            continue
        why = incomplete_reason(state)
        if why is None:
            return state
        if log is not None:
            solver_log.skipping_snapshot(log, state, why)
    return None


def prune(prefix, keep, current_iter, log):
    """Keep the set of `current_iter` and the keep-1 newest complete sets before it; delete
    the older sets and leftovers of cut-short ones (state first, so a set being deleted is
    never taken for complete). Sets after `current_iter` (another run's) are left alone."""
    files = snapshot_files(prefix)
    older = sorted((it for it in files if it < current_iter), reverse=True)
    complete = [it for it in older if _state_of(files[it]) is not None]
    kept = set(complete[:max(keep - 1, 0)])
    for it in older:
        if it in kept:
            continue
        kinds = files[it]
        for kind in reversed(KINDS):   # states, sidecar, weights
            if kind in kinds:
                prototxt.remove(kinds[kind])
        solver_log.removed_snapshot(log, _state_of(kinds) or kinds[sorted(kinds)[0]], keep)


def remove_temporaries(prefix, log):
    """Delete the temporary files of snapshots cut short (call it holding the prefix's lock)."""
    folder, base = _folder_and_base(prefix)
    pattern = re.compile(r"\.tmp-.*-" + re.escape(base) + r"_iter_\d+\." + _KIND_PATTERN)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return
    for name in names:
        if pattern.fullmatch(name):
            path = os.path.join(folder, name)
            prototxt.remove(path)
            solver_log.removed_temporary(log, path)


# -- restore -----------------------------------------------------------------------------------
def restore(solver, net, path, log=None):
    """SGDSolver::RestoreSolverStateFromBinaryProto: iter, weights, current_step, history.
    (As in Caffe; the data cursor, the RNG and the smoothed-loss buffer are the sidecar's,
    engine/resume.py.) A name ending in .h5 is an HDF5 state (RestoreSolverStateFromHDF5).
    """
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
