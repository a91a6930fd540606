"""Snapshots: `<prefix>_iter_N.caffemodel`, `.resume.json` (ours) and `.solverstate`.

Written so that at any instant the newest complete set is loadable: each file goes to a
temporary name, is fsynced, renamed and its folder fsynced (formats/prototxt.py), in the
order weights → sidecar → state. The `.solverstate` names the weights, so it comes last: a
set is complete exactly when its `.solverstate` exists, and a crash at any moment leaves
either the previous complete set or the new one (plus, at worst, files of the new one that
no state names yet, which `--resume` skips). An older set of the same iteration loses its
state first, so an old state never pairs with new weights. A write that fails (disk full,
I/O error) removes what it wrote of the new set and ends the run with SnapshotFailed,
naming the newest complete snapshot left.

`newest_complete` finds the set `--resume` continues from; `prune` keeps the newest N
(--keep-snapshots); `restore` is SGDSolver::RestoreSolverStateFromBinaryProto (the sidecar
is engine/resume.py's). The file formats are in formats/.

Test hook: BNFACE_TEST_SNAPSHOT_PAUSE=SECONDS sleeps before and after each rename, so a test
can kill the process at a chosen point of a snapshot.
"""
import os
import re
import time

import torch

from ..errors import RunFailed, UserError
from ..formats import caffemodel, prototxt, resume_state, solver_log, solverstate

KINDS = ("caffemodel", "resume.json", "solverstate")
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
    model_path, state_path = solverstate.snapshot_paths(prefix, solver.iter)
    side_path = resume_state.path_for(state_path)
    pause = _test_pause()
    written = []
    try:
        prototxt.remove(state_path)
        solver_log.snapshotting_model(log, model_path)
        caffemodel.write(net.to_proto(write_diff=snapshot_diff), model_path, pause)
        written.append(model_path)
        pause()
        state_bytes = solverstate.make(solver.iter, model_path, solver.current_step,
                                       solver.history).SerializeToString()
        if sidecar is not None:
            document = dict(sidecar, iter=solver.iter, solverstate=os.path.basename(state_path),
                            solverstate_sha256=resume_state.sha256_hex(state_bytes))
            resume_state.write(document, side_path, pause)
            written.append(side_path)
            pause()
        else:
            prototxt.remove(side_path)
        solver_log.snapshotting_state(log, state_path)
        prototxt.write_bytes(state_path, state_bytes, pause)
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
    pattern = re.compile(re.escape(base) + r"_iter_(\d+)\.(caffemodel|resume\.json|solverstate)")
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
    try:
        state = solverstate.read(state_path)
        solverstate.history_arrays(state, state_path)
        caffemodel.read(solverstate.learned_net_path(state, state_path))
    except UserError as err:
        return str(err)
    return None


def newest_complete(prefix, log=None):
    """The `.solverstate` of the newest complete set of `prefix`, or None. With a `log`, each
    set passed over gets a line saying why."""
    files = snapshot_files(prefix)
    for iteration in sorted(files, reverse=True):
        kinds = files[iteration]
        if "solverstate" not in kinds:
            if log is not None:
                solver_log.skipping_snapshot(log, ", ".join(sorted(kinds.values())),
                                             "no .solverstate (a snapshot cut short)")
            continue
        why = incomplete_reason(kinds["solverstate"])
        if why is None:
            return kinds["solverstate"]
        if log is not None:
            solver_log.skipping_snapshot(log, kinds["solverstate"], why)
    return None


def prune(prefix, keep, current_iter, log):
    """Keep the set of `current_iter` and the keep-1 newest complete sets before it; delete
    the older sets and leftovers of cut-short ones (state first, so a set being deleted is
    never taken for complete). Sets after `current_iter` (another run's) are left alone."""
    files = snapshot_files(prefix)
    older = sorted((it for it in files if it < current_iter), reverse=True)
    complete = [it for it in older if "solverstate" in files[it]]
    kept = set(complete[:max(keep - 1, 0)])
    for it in older:
        if it in kept:
            continue
        kinds = files[it]
        for kind in reversed(KINDS):   # solverstate, sidecar, weights
            if kind in kinds:
                prototxt.remove(kinds[kind])
        solver_log.removed_snapshot(log, kinds.get("solverstate", kinds[sorted(kinds)[0]]), keep)


def remove_temporaries(prefix, log):
    """Delete the temporary files of snapshots cut short (call it holding the prefix's lock)."""
    folder, base = _folder_and_base(prefix)
    pattern = re.compile(r"\.tmp-.*-" + re.escape(base)
                         + r"_iter_\d+\.(caffemodel|resume\.json|solverstate)")
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
    engine/resume.py.)"""
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
