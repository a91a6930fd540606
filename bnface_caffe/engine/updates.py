"""Caffe's update rules (sgd_solver.cpp, solvers/*.cpp) on lists of torch tensors.

One iteration's update, after the gradients of all iter_size passes have been summed:
    clip (once, over all params)  →  per param: normalize (÷ iter_size) → regularize
    (L2/L1, weight_decay·decay_mult) → compute the update value (the rule below)
and then the net subtracts the value from the weights.

Every step is done in place in float32, one torch op for each BLAS call Caffe makes, so the
rounding follows Caffe's (`axpby(a, x, b, y)` is `y *= b` then `y += a·x`). Parameters are
grouped by their per-param scalar (lr·lr_mult, weight_decay·decay_mult) so a whole group is one
`torch._foreach_*` call: a few kernels per iteration instead of a few per parameter.

Torch's own optimisers are not used: torch.optim.SGD keeps `h = m·h + g` and applies lr
afterwards, while Caffe puts lr·lr_mult inside the history, which differs whenever lr changes.
"""
import math
from collections import defaultdict

import numpy as np
import torch

from ..errors import UserError

f32 = np.float32
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")


def history_sets(solver_type):
    """How many history blobs each parameter has (AdaDelta and Adam keep two)."""
    return 2 if solver_type in ("AdaDelta", "Adam") else 1


def check_solver_constants(solver, source="solver"):
    """The CHECKs Caffe's solver constructors make, as one-line errors."""
    kind = solver.type
    if kind not in SOLVER_TYPES:
        raise UserError(f"{source}: unknown solver type \"{kind}\"; Caffe knows "
                        f"{', '.join(SOLVER_TYPES)}")
    if kind in ("AdaGrad", "RMSProp") and solver.momentum != 0:
        raise UserError(f"{source}: momentum cannot be used with {kind} "
                        f"(got momentum: {solver.momentum:g}); remove it")
    if kind == "RMSProp" and not 0 <= solver.rms_decay < 1:
        raise UserError(f"{source}: rms_decay must be in [0, 1) (got {solver.rms_decay:g})")
    if solver.regularization_type not in ("L1", "L2"):
        raise UserError(f"{source}: unknown regularization_type "
                        f"\"{solver.regularization_type}\"; use \"L2\" or \"L1\"")


def _groups(scalars):
    """{scalar: [indices]} so each distinct per-param scalar is one foreach call."""
    groups = defaultdict(list)
    for i, s in enumerate(scalars):
        groups[float(s)].append(i)
    return groups


def _pick(tensors, indices):
    return [tensors[i] for i in indices]


def clip_gradients(diffs, clip):
    """Scale all diffs down when their global L2 norm exceeds `clip` (off when clip < 0).
    Returns (norm, scale) when it scaled, else None; the caller logs Caffe's line."""
    if clip < 0 or not diffs:
        return None
    sumsq = torch.stack([torch.dot(d.reshape(-1), d.reshape(-1)) for d in diffs]).sum()
    norm = f32(math.sqrt(float(sumsq)))     # a float sqrt, as std::sqrt(float)
    if norm > f32(clip):
        scale = f32(clip) / norm
        torch._foreach_mul_(diffs, float(scale))
        return float(norm), float(scale)
    return None


def normalize(diffs, iter_size):
    """Undo the iter_size accumulation: Caffe multiplies by 1/iter_size (a float32)."""
    if iter_size != 1:
        torch._foreach_mul_(diffs, float(f32(1) / f32(iter_size)))


def regularize(datas, diffs, local_decays, kind="L2"):
    """g += decay·w (L2) or decay·sign(w) (L1); params whose decay is 0 are skipped."""
    for decay, idx in _groups(local_decays).items():
        if decay == 0:
            continue
        w, g = _pick(datas, idx), _pick(diffs, idx)
        if kind == "L1":
            w = torch._foreach_sign(w)
        torch._foreach_add_(g, w, alpha=decay)


def _axpby(a, xs, b, ys):
    """Caffe's caffe_cpu_axpby: y = b·y (scal), then y += a·x (axpy)."""
    torch._foreach_mul_(ys, b)
    torch._foreach_add_(ys, xs, alpha=a)


def _rate_groups(rates):
    return _groups(rates).items()


def sgd(diffs, history, rates, momentum, **_):
    """h = momentum·h + lr·g; the update value (left in g) is h."""
    for rate, idx in _rate_groups(rates):
        _axpby(rate, _pick(diffs, idx), momentum, _pick(history, idx))
    torch._foreach_copy_(diffs, history)


def nesterov(diffs, history, rates, momentum, **_):
    """h' = momentum·h + lr·g; update = (1+momentum)·h' − momentum·h."""
    previous = torch._foreach_mul(history, -momentum)     # Caffe's update_ = −m·h (scal)
    for rate, idx in _rate_groups(rates):
        _axpby(rate, _pick(diffs, idx), momentum, _pick(history, idx))
    torch._foreach_add_(previous, history, alpha=float(f32(1) + f32(momentum)))
    torch._foreach_copy_(diffs, previous)


def adagrad(diffs, history, rates, delta, **_):
    """h += g²; update = lr · g / (sqrt(h) + delta)."""
    torch._foreach_add_(history, torch._foreach_mul(diffs, diffs))
    _scaled_ratio(diffs, history, rates, delta)


def rmsprop(diffs, history, rates, delta, rms_decay, **_):
    """h = rms_decay·h + (1−rms_decay)·g²; update = lr · g / (sqrt(h) + delta)."""
    _axpby(float(f32(1) - f32(rms_decay)), torch._foreach_mul(diffs, diffs),
           rms_decay, history)
    _scaled_ratio(diffs, history, rates, delta)


def _scaled_ratio(diffs, history, rates, delta):
    denom = torch._foreach_sqrt(history)
    torch._foreach_add_(denom, delta)
    ratio = torch._foreach_div(diffs, denom)
    for rate, idx in _rate_groups(rates):
        torch._foreach_mul_(_pick(ratio, idx), rate)
    torch._foreach_copy_(diffs, ratio)


def adadelta(diffs, history, rates, momentum, delta, **_):
    """E[g²] = m·E[g²] + (1−m)·g²; Δ = g·sqrt((E[Δ²]+δ)/(E[g²]+δ));
    E[Δ²] = m·E[Δ²] + (1−m)·Δ²; update = lr·Δ. History: all E[g²], then all E[Δ²]."""
    n = len(diffs)
    grad_sq, update_sq = history[:n], history[n:]
    one_minus = float(f32(1) - f32(momentum))
    _axpby(one_minus, torch._foreach_mul(diffs, diffs), momentum, grad_sq)
    numer = torch._foreach_add(update_sq, delta)
    denom = torch._foreach_add(grad_sq, delta)
    ratio = torch._foreach_div(numer, denom)
    torch._foreach_sqrt_(ratio)
    torch._foreach_mul_(diffs, ratio)
    _axpby(one_minus, torch._foreach_mul(diffs, diffs), momentum, update_sq)
    for rate, idx in _rate_groups(rates):
        torch._foreach_mul_(_pick(diffs, idx), rate)


def adam(diffs, history, rates, momentum, momentum2, delta, iteration, **_):
    """m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
    update = lr·sqrt(1−β2^t)/(1−β1^t) · m / (sqrt(v) + delta), t = iter + 1.
    History: all m, then all v."""
    n = len(diffs)
    m, v = history[:n], history[n:]
    beta1, beta2 = f32(momentum), f32(momentum2)
    t = iteration + 1
    # C++ evaluates pow(float, int) in double; the correction is then stored as a float.
    correction = f32(math.sqrt(1.0 - math.pow(float(beta2), t))
                     / (1.0 - math.pow(float(beta1), t)))
    _axpby(float(f32(1) - beta1), diffs, float(beta1), m)
    _axpby(float(f32(1) - beta2), torch._foreach_mul(diffs, diffs), float(beta2), v)
    denom = torch._foreach_sqrt(v)
    torch._foreach_add_(denom, delta)
    ratio = torch._foreach_div(m, denom)
    for rate, idx in _rate_groups(rates):
        torch._foreach_mul_(_pick(ratio, idx), float(f32(rate) * correction))
    torch._foreach_copy_(diffs, ratio)


def fused_sgd_available(solver, tensors):
    """Whether `fused_sgd` may do this SGD update: L2 (or no) decay, momentum (without it torch's
    kernel keeps no history, which Caffe still writes into its .solverstate), float32 tensors on
    one device, a torch that has the fused kernel. Not when the snapshot keeps diffs: after the fused
    step Param.diff still holds the gradient, where Caffe leaves the update value."""
    return (solver.type == "SGD" and solver.regularization_type == "L2" and solver.momentum != 0
            and not solver.snapshot_diff and hasattr(torch, "_fused_sgd_") and bool(tensors)
            and all(t.dtype == torch.float32 and t.device == tensors[0].device for t in tensors))


def fused_sgd(datas, diffs, history, rates, local_decays, momentum):
    """regularize + sgd + apply_updates in one pass per parameter (torch's fused SGD kernel):
    torch computes g' = g + wd·w; h = momentum·h + (1 − dampening)·g'; w −= lr·h, so with
    wd = weight_decay·decay_mult, dampening = 1 − rate and lr = 1 it is Caffe's
    h = momentum·h + rate·(g + wd·w); w −= h, to within float32 rounding (one FMA where Caffe's
    BLAS may round twice). One call per distinct (rate, decay) group."""
    groups = defaultdict(list)
    for i, key in enumerate(zip(rates, local_decays)):
        groups[key].append(i)
    for (rate, decay), idx in groups.items():
        torch._fused_sgd_(_pick(datas, idx), _pick(diffs, idx), _pick(history, idx),
                          weight_decay=decay, momentum=momentum, lr=1.0, dampening=1.0 - rate,
                          nesterov=False, maximize=False, is_first_step=False)


RULES = {"SGD": sgd, "Nesterov": nesterov, "AdaGrad": adagrad, "RMSProp": rmsprop,
         "AdaDelta": adadelta, "Adam": adam}


def compute_update_values(solver_type, diffs, history, rates, solver, iteration):
    """Turn each diff into the value the net subtracts from its weights (Caffe's
    ComputeUpdateValue), updating the history in place."""
    RULES[solver_type](diffs, history, rates, momentum=float(f32(solver.momentum)),
                       delta=float(f32(solver.delta)), rms_decay=float(f32(solver.rms_decay)),
                       momentum2=float(f32(solver.momentum2)), iteration=iteration)


def apply_updates(datas, diffs):
    """Net::Update: w −= update value."""
    torch._foreach_sub_(datas, diffs)
