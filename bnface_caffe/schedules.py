"""Caffe's learning-rate policies, exactly as SGDSolver::GetLearningRate computes them.

One implementation shared by the solver generator, the LR plotter and the engine's
solver. `lr_at` is pure: it takes Caffe's multistep counter (`current_step_`) and
returns the new one, because Caffe's multistep advances *at most one step per call*
(one call per iteration) — repeated stepvalues, or a resume past several stepvalues,
catch up one step per iteration.

Arithmetic follows Caffe's C++: float32 parameters, `pow` evaluated in double, the
result narrowed to float32 (the rate is a `Dtype` = float).
"""
import math

import numpy as np

from .errors import UserError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")

f32 = np.float32


def lr_at(solver, it, current_step=0):
    """(rate, current_step) for the update at iteration `it` (Caffe's iter_, 0-based)."""
    policy = solver.lr_policy
    base_lr, gamma, power = f32(solver.base_lr), f32(solver.gamma), f32(solver.power)
    if policy == "fixed":
        rate = base_lr
    elif policy == "step":
        current_step = it // _positive_stepsize(solver)
        rate = float(base_lr) * math.pow(float(_non_negative_gamma(solver)), current_step)
    elif policy == "exp":
        rate = float(base_lr) * math.pow(float(_non_negative_gamma(solver)), it)
    elif policy == "inv":
        _non_negative_gamma(solver)
        rate = float(base_lr) * math.pow(float(f32(1) + gamma * f32(it)), -float(power))
    elif policy == "multistep":
        if current_step < len(solver.stepvalue) and it >= solver.stepvalue[current_step]:
            current_step += 1
        rate = float(base_lr) * math.pow(float(_non_negative_gamma(solver)), current_step)
    elif policy == "poly":
        remaining = f32(1) - f32(it) / f32(solver.max_iter)
        rate = float(base_lr) * math.pow(float(remaining), float(power))
    elif policy == "sigmoid":
        _non_negative_gamma(solver)
        x = -gamma * (f32(it) - f32(_positive_stepsize(solver)))
        rate = base_lr * (f32(1) / (f32(1) + f32(math.exp(float(x)))))
    else:
        raise UserError(f"unknown lr_policy \"{policy}\"; Caffe knows {', '.join(POLICIES)}")
    return float(f32(rate)), current_step


def lr_curve(solver, iterations=None, start=0, current_step=0):
    """Rates for iterations start..iterations-1, calling lr_at once per iteration as
    Caffe does. Returns (rates as a float64 array, multistep step events [(it, step)])."""
    iterations = solver.max_iter if iterations is None else iterations
    rates, events = np.empty(max(iterations - start, 0)), []
    for i, it in enumerate(range(start, iterations)):
        before = current_step
        rates[i], current_step = lr_at(solver, it, current_step)
        if solver.lr_policy == "multistep" and current_step != before:
            events.append((it, current_step))
    return rates, events


def check(solver, source="solver"):
    """Raise UserError if Caffe would refuse this schedule (a CHECK failure in Caffe)."""
    if not solver.HasField("lr_policy"):
        raise UserError(f"{source}: lr_policy is not set; choose one of {', '.join(POLICIES)}")
    lr_at(solver, 0)  # unknown policy, bad stepsize/gamma
    if solver.lr_policy == "poly" and solver.max_iter <= 0:
        raise UserError(f"{source}: lr_policy \"poly\" needs max_iter > 0")


def _positive_stepsize(solver):
    if solver.stepsize <= 0:
        raise UserError(f"lr_policy \"{solver.lr_policy}\" needs stepsize > 0 (got {solver.stepsize})")
    return solver.stepsize


def _non_negative_gamma(solver):
    if solver.gamma < 0:
        raise UserError(f"lr_policy \"{solver.lr_policy}\" needs gamma >= 0 (got {solver.gamma:g})")
    return f32(solver.gamma)


def multistep_events(solver, start=0, current_step=0):
    """[(iteration, new step)] where Caffe's multistep counter advances: at each stepvalue,
    but never twice in one iteration (so repeated values land on consecutive iterations)."""
    events, it = [], start
    for k in range(current_step, len(solver.stepvalue)):
        it = max(it, solver.stepvalue[k])
        events.append((it, k + 1))
        it += 1
    return events


def lr_points(solver, iterations=None, samples=2000):
    """(iterations, rates) that draw the schedule over [0, iterations) without evaluating
    every iteration: exact change points for fixed/step/multistep, a grid otherwise."""
    iterations = solver.max_iter if iterations is None else iterations
    policy = solver.lr_policy
    if policy == "multistep":
        # The counter only moves at these iterations, so calling lr_at just there (in
        # order, carrying the counter) reproduces the per-iteration sequence exactly.
        its = sorted({0} | {it for it, _ in multistep_events(solver) if it < iterations})
        rates, step = [], 0
        for it in its:
            rate, step = lr_at(solver, it, step)
            rates.append(rate)
        return np.array(its), np.array(rates)
    if policy == "step":
        its = list(range(0, iterations, _positive_stepsize(solver)))
    elif policy == "fixed":
        its = [0]
    else:
        its = sorted(set(np.linspace(0, iterations - 1, samples).astype(int).tolist()))
    return np.array(its), np.array([lr_at(solver, it)[0] for it in its])
