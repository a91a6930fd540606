"""The solver: Caffe's SGDSolver family, which only updates weights.

It owns what a .solverstate holds (iter, current_step, the history blobs) and does
ApplyUpdate: learning rate → optional lr line → clip → per parameter normalize, regularize,
compute the update value → w −= value → ++iter. Plain SGD (the paper's solver) does the
regularize/update/apply steps in one fused pass per parameter (updates.fused_sgd); Param.diff then
keeps the gradient instead of the update value (nothing reads it before the next clear, and a
solver with snapshot_diff takes the step-by-step path). Sequencing (tests, display, snapshots,
signals) lives in loop.py; the formulas in updates.py; the lr policies in schedules.py.
"""
import numpy as np
import torch

from .. import schedules
from ..formats import solver_log
from . import updates

f32 = np.float32


class Solver:
    def __init__(self, param, net, log=None, fused=True):
        updates.check_solver_constants(param)
        self.param = param
        self.net = net
        self.log = log if log is not None else net.log
        self.params = list(net.learnable_params)
        # Per-param scalars as float32 products, as Caffe computes them (Dtype·float).
        self.lr_mults = [f32(p.lr_mult) for p in self.params]
        self.local_decays = [float(f32(param.weight_decay) * f32(p.decay_mult))
                             for p in self.params]
        sets = updates.history_sets(param.type)
        self.history = [torch.zeros_like(p.data) for _ in range(sets) for p in self.params]
        self.iter = 0
        self.current_step = 0
        # SGD in one fused kernel per parameter group (updates.fused_sgd) unless told not to
        self.fused = fused and updates.fused_sgd_available(param, self.datas + self.history)

    # Read through the Param objects each time: the net may swap a tensor (e.g. on load).
    @property
    def datas(self):
        return [p.data for p in self.params]

    @property
    def diffs(self):
        return [p.diff for p in self.params]

    def learning_rate(self):
        """Caffe's GetLearningRate for the current iter; logs multistep's step changes."""
        rate, step = schedules.lr_at(self.param, self.iter, self.current_step)
        if self.param.lr_policy == "multistep" and step != self.current_step:
            solver_log.multistep_status(self.log, self.iter, step)
        self.current_step = step
        return rate

    def apply_update(self, display_now=False):
        """One weight update from the accumulated diffs; returns the rate it used."""
        rate = self.learning_rate()
        if display_now:
            solver_log.lr_line(self.log, self.iter, rate)
        datas, diffs = self.datas, self.diffs
        if not datas:   # nothing to learn: Caffe's loops run zero times (foreach kernels refuse [])
            self.iter += 1
            return rate
        clipped = updates.clip_gradients(diffs, self.param.clip_gradients)
        if clipped:
            solver_log.clipping(self.log, *clipped, self.param.clip_gradients)
        updates.normalize(diffs, self.param.iter_size)
        local_rates = [float(f32(rate) * m) for m in self.lr_mults]
        if self.fused:
            updates.fused_sgd(datas, diffs, self.history, local_rates, self.local_decays,
                              float(f32(self.param.momentum)))
        else:
            updates.regularize(datas, diffs, self.local_decays, self.param.regularization_type)
            updates.compute_update_values(self.param.type, diffs, self.history,
                                          local_rates, self.param, self.iter)
            updates.apply_updates(datas, diffs)
        self.iter += 1   # iter always counts the updates done so far
        return rate
