"""The training loop, as Caffe's Solver::Solve / Step / Test sequence it: it only sequences.

Per iteration (it = updates done so far): zero the diffs → test if it % test_interval == 0
(at 0 only with test_initialization) → iter_size × forward/backward → smoothed loss →
display → [all-reduce the gradients across ranks] → update (solver.py) → snapshot every
`snapshot` updates, or on a signal's request → stop on request. After max_iter: the final
snapshot, one forward-only train pass for the last display, the final test, "Optimization
Done.". Tests average every output element over test_iter batches (float32 sums) with the
test net sharing the train net's weights.

Not in Caffe: a non-finite training loss stops the run (after a snapshot of the weights
before the bad update) with TrainingDiverged, instead of training on with NaNs; a record
that cannot be decoded stops it the same way (BadRecord, naming the LMDB and key), so the
run resumes once the data is fixed. Each snapshot also gets the resume sidecar (the random
states, data positions and loss window, engine/resume.py), captured at the start of every
iteration so that a snapshot taken in the middle of one describes its start;
`keep_snapshots` prunes the older sets after each snapshot.
"""
from contextlib import contextmanager
import math
import time

import numpy as np

from ..errors import RunFailed
from ..formats import solver_log
from . import resume
from .data_reader import BadRecord
from .signals import NONE, SNAPSHOT, STOP, NoSignals
from .snapshot import prune, write_snapshot

f32 = np.float32


class TrainingDiverged(RunFailed):
    """The training loss became NaN or infinite."""


class SingleProcess:
    """The world of one process: no collectives."""
    size, rank, is_root = 1, 0, True


class Loop:
    def __init__(self, solver, net, test_nets=(), actions=None, world=None, observer=None,
                 log=None, keep_snapshots=0):
        self.solver, self.net, self.test_nets = solver, net, list(test_nets)
        self.log = log if log is not None else net.log
        self.param = solver.param
        self.actions = actions or NoSignals()
        self.world = world or SingleProcess()
        self.observer = observer
        self.requested_early_exit = False
        self.losses, self.smoothed_loss = [], f32(0)
        self.window_start = solver.iter     # the iteration the ring of losses counts from
        self.restored_window = None         # (losses, smoothed, start) from a resume sidecar
        self.iterations_last = 0   # Caffe never initialises it; its first rate is meaningless
        self.last_snapshot = None
        self.keep_snapshots = keep_snapshots
        # The sidecar describes one process; the state at the current iteration's start:
        self.exact = self.world.size == 1
        self.mark, self.mid_iteration = None, False
        self.data_layers = None             # resume.data_layers(self), found once
        self.callbacks = []        # Solver::add_callback: objects with on_start, on_gradients_ready

    def restore_window(self, losses, smoothed_loss, start_iter):
        """The smoothed-loss window of an interrupted run (the next step continues it)."""
        self.restored_window = (list(losses), f32(smoothed_loss), int(start_iter))

    def begin_iteration(self):
        """Remember the state at the start of an iteration, before its test: a snapshot
        taken before the update (signal while testing, divergence, bad record) records it."""
        if self.exact:
            self.mark = self.capture()
        self.mid_iteration = True

    def capture(self):
        if self.data_layers is None:
            self.data_layers = resume.data_layers(self)
        return resume.capture(self, self.data_layers)

    @contextmanager
    def stopping_on_bad_records(self):
        try:
            yield
        except BadRecord as err:
            self.stop_bad_record(err)

    # -- Solve ---------------------------------------------------------------------------
    def solve(self, restore=None):
        """Train to max_iter from the solver's current iter. Returns False if stopped early.
        `restore()`, if given, runs after the "Solving" lines (Solver::Solve(resume_file))."""
        p, root = self.param, self.world.is_root
        if root:
            solver_log.solving(self.log, self.net.name, p.lr_policy)
        if restore is not None:
            restore()
        self.requested_early_exit = False
        self.step(p.max_iter - self.solver.iter)
        it = self.solver.iter
        if p.snapshot_after_train and (not p.snapshot or it % p.snapshot != 0):
            self.snapshot()
        if self.requested_early_exit:
            if root:
                solver_log.stopped_early(self.log)
            return False
        self.begin_iteration()
        with self.stopping_on_bad_records():
            if root and p.display and it % p.display == 0:
                loss = f32(self.net.forward())      # forward only: the weights are final
                self.update_smoothed_loss(loss, self.window_start)
                solver_log.final_loss(self.log, it, self.smoothed_loss)
            if root and p.test_interval and it % p.test_interval == 0:
                self.test_all()
        if root:
            solver_log.optimization_done(self.log)
        return True

    # -- Step ----------------------------------------------------------------------------
    def step(self, iters):
        p, solver, net, root = self.param, self.solver, self.net, self.world.is_root
        start_iter = solver.iter
        stop_iter = start_iter + iters
        if self.restored_window is not None:
            self.losses, self.smoothed_loss, self.window_start = self.restored_window
            self.restored_window = None
        else:
            self.losses, self.smoothed_loss, self.window_start = [], f32(0), start_iter
        timer = time.perf_counter()
        while solver.iter < stop_iter:
            it = solver.iter
            self.begin_iteration()
            net.clear_param_diffs()
            with self.stopping_on_bad_records():
                if (p.test_interval and it % p.test_interval == 0
                        and (it > 0 or p.test_initialization)):
                    if root:
                        self.test_all()
                    if self.world.size > 1:   # a stop requested while testing reaches every rank
                        self.requested_early_exit = self.world.broadcast_flag(
                            self.requested_early_exit)
                    if self.requested_early_exit:
                        break
                for callback in self.callbacks:
                    callback.on_start()
                display_now = bool(p.display) and it % p.display == 0
                loss = f32(0)
                for _ in range(p.iter_size):
                    loss += f32(net.forward_backward())
                loss /= f32(p.iter_size)
            self.update_smoothed_loss(loss, self.window_start)
            if display_now and root:
                # Caffe's CPU Timer counts whole milliseconds, in a float.
                lapse = f32(int((time.perf_counter() - timer) * 1000) / 1000)
                per_s = f32(it - self.iterations_last) / (lapse if lapse else f32(1))
                solver_log.iteration(self.log, it, per_s, lapse, p.display, self.smoothed_loss)
                timer, self.iterations_last = time.perf_counter(), it
                self.log_outputs(net, lambda *a: solver_log.train_output(self.log, *a))
            for callback in self.callbacks:
                callback.on_gradients_ready()
            diverged = not math.isfinite(loss)
            if self.world.size > 1:
                # Gradients are summed across ranks and divided by their number (Caffe's NCCL
                # on_gradients_ready); the divergence flag and rank 0's signal ride along.
                action = self.actions.requested_action() if root else NONE
                diverged, action = self.world.allreduce_gradients(solver.diffs, diverged, action)
            if diverged:
                self.stop_diverged(it, loss)
            solver.apply_update(display_now and root)
            self.mid_iteration = False     # the state now is the next iteration's start
            if self.world.size == 1:
                action = self.actions.requested_action()
            if (p.snapshot and solver.iter % p.snapshot == 0) or action == SNAPSHOT:
                self.snapshot()
            if self.observer:
                self.observer.iteration(solver.iter, float(loss))
            if action == STOP:
                self.requested_early_exit = True
                break

    def update_smoothed_loss(self, loss, start_iter):
        """Caffe's incremental float32 running mean over the last average_loss losses."""
        average = self.param.average_loss
        if len(self.losses) < average:
            self.losses.append(loss)
            n = len(self.losses)
            self.smoothed_loss = f32((self.smoothed_loss * f32(n - 1) + loss) / f32(n))
        else:
            idx = (self.solver.iter - start_iter) % average
            self.smoothed_loss = f32(self.smoothed_loss + (loss - self.losses[idx]) / f32(average))
            self.losses[idx] = loss

    @staticmethod
    def log_outputs(net, line):
        """One line per element of each output blob, outputs in alphabetical order."""
        k = 0
        for name, values in net.outputs():
            weight = f32(net.loss_weights.get(name, 0))
            for value in np.asarray(values, dtype=np.float32).reshape(-1):
                line(k, name, value, weight)
                k += 1

    # -- Test ----------------------------------------------------------------------------
    def test_all(self):
        for i in range(len(self.test_nets)):
            if self.requested_early_exit:
                break
            self.test(i)

    def test(self, i):
        test_net, batches = self.test_nets[i], self.param.test_iter[i]
        solver_log.testing(self.log, self.solver.iter, i)
        test_net.share_trained_layers_with(self.net)
        sums, names, loss = None, [], f32(0)
        for _ in range(batches):
            self.handle_requests_while_testing()
            if self.requested_early_exit:
                break
            batch_loss = test_net.forward()
            if self.param.test_compute_loss:
                loss += f32(batch_loss)
            outputs = test_net.outputs()
            values = np.concatenate([np.asarray(v, dtype=np.float32).reshape(-1)
                                     for _, v in outputs]) if outputs else np.zeros(0, np.float32)
            if sums is None:
                sums = values.copy()
                names = [name for name, v in outputs for _ in range(np.size(v))]
            else:
                sums += values
        if self.requested_early_exit:
            solver_log.test_interrupted(self.log)
            return
        if self.param.test_compute_loss:
            solver_log.test_loss(self.log, f32(loss / f32(batches)))
        means = [] if sums is None else sums / f32(batches)
        for k, (name, mean) in enumerate(zip(names, means)):
            solver_log.test_output(self.log, k, name, mean, f32(test_net.loss_weights.get(name, 0)))
        if self.observer:
            self.observer.tested(i, dict(zip(names, (float(m) for m in means))))

    def handle_requests_while_testing(self):
        action = self.actions.requested_action()
        while action != NONE:
            if action == SNAPSHOT:
                self.snapshot()
            elif action == STOP:
                self.requested_early_exit = True
            action = self.actions.requested_action()

    # -- Snapshot and divergence -----------------------------------------------------------
    def snapshot(self):
        if self.world.is_root:
            sidecar = None
            if self.exact:
                state = self.mark if self.mid_iteration else self.capture()
                sidecar = resume.to_document(state)
            self.last_snapshot = write_snapshot(self.solver, self.net, self.param.snapshot_prefix,
                                                self.param.snapshot_diff, self.log, sidecar)
            if self.keep_snapshots:
                prune(self.param.snapshot_prefix, self.keep_snapshots, self.solver.iter, self.log)
        return self.last_snapshot

    def stop_bad_record(self, err):
        """A record could not be read: snapshot the state at this iteration's start (the
        update was not applied) and stop, so the run resumes once the data is fixed."""
        it, where = self.solver.iter, ""
        if self.world.is_root:
            _, state = self.snapshot()
            where = (f"; the run's state at iteration {it} is in {state}: fix the data, then "
                     f"resume with --snapshot {state} (or --resume)")
        raise BadRecord(f"{err}{where}") from None

    def stop_diverged(self, it, loss):
        where = ""
        if self.world.is_root:
            solver_log.diverged(self.log, it, loss)
            model, state = self.snapshot()
            where = f"; the weights that gave it are in {model} (resume with --snapshot {state})"
        raise TrainingDiverged(
            f"iteration {it}: the training loss is {'not finite' if math.isfinite(loss) else loss}"
            f"{' on another rank' if math.isfinite(loss) else ''}{where}; lower base_lr, or "
            "check the data and the net")
