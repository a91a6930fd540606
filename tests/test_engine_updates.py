"""Solver update rules against values worked out by hand from Caffe's formulas
(sgd_solver.cpp and solvers/*.cpp), a few iterations each.

The "net" here is just learnable parameters with a fixed gradient, so each expected number
can be followed on paper; the comments show the arithmetic.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bnface_caffe import schedules
from bnface_caffe.formats import glog
from bnface_caffe.engine.solver import Solver
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2


class ParamsOnly:
    """learnable_params with .data/.diff/.lr_mult/.decay_mult, the solver's whole view of a net."""

    def __init__(self, values, lr_mults=None, decay_mults=None):
        n = len(values)
        lr_mults = lr_mults or [1.0] * n
        decay_mults = decay_mults or [1.0] * n
        self.log = glog.Glog(stderr=False)    # the solver logs through its net's logger
        self.learnable_params = [
            SimpleNamespace(data=torch.tensor(v, dtype=torch.float32),
                            diff=torch.zeros(np.shape(v), dtype=torch.float32),
                            lr_mult=lr, decay_mult=dm)
            for v, lr, dm in zip(values, lr_mults, decay_mults)]

    def set_grads(self, grads):
        for p, g in zip(self.learnable_params, grads):
            p.diff.copy_(torch.tensor(g, dtype=torch.float32))


def solver_param(**fields):
    p = caffe_pb2.SolverParameter(lr_policy="fixed", base_lr=0.1, display=0, max_iter=10)
    for k, v in fields.items():
        if isinstance(v, list):
            getattr(p, k).extend(v)
        else:
            setattr(p, k, v)
    return p


def run(param, net, grads, iterations):
    solver = Solver(param, net)
    ws = []
    for _ in range(iterations):
        net.set_grads(grads)
        solver.apply_update()
        ws.append([float(p.data.reshape(-1)[0]) for p in net.learnable_params])
    return solver, ws


def test_sgd_momentum_decay_mults_and_lr_inside_history():
    # w=1, g=0.5, momentum 0.9, weight_decay 0.01 × decay_mult 0.5, lr_mult 2;
    # multistep drops base_lr 0.1 to 0.01 at iteration 1.
    # it0: g' = 0.5 + 0.005·1 = 0.505;  h = 0.2·0.505 = 0.101;            w = 0.899
    # it1: g' = 0.5 + 0.005·0.899 = 0.504495; h = 0.9·0.101 + 0.02·0.504495 = 0.1009899
    #      w = 0.7980101  (torch.optim.SGD's h = 0.9h + g, w -= lr·h would give 0.84...)
    # it2: g' = 0.5 + 0.005·0.7980101; h = 0.9·0.1009899 + 0.02·g' = 0.10097071101; w = 0.69703939
    net = ParamsOnly([1.0], lr_mults=[2.0], decay_mults=[0.5])
    param = solver_param(lr_policy="multistep", gamma=0.1, stepvalue=[1], momentum=0.9,
                         weight_decay=0.01)
    solver, ws = run(param, net, [0.5], 3)
    assert [w[0] for w in ws] == pytest.approx([0.899, 0.7980101, 0.69703939], rel=2e-6)
    assert float(solver.history[0]) == pytest.approx(0.10097071101, rel=2e-6)
    assert solver.iter == 3 and solver.current_step == 1


def test_decay_mult_zero_and_lr_mult_zero_leave_a_param_alone():
    net = ParamsOnly([1.0, 2.0, 3.0], lr_mults=[1.0, 0.0, 1.0], decay_mults=[0.0, 1.0, 1.0])
    param = solver_param(momentum=0.0, weight_decay=0.1)
    _, ws = run(param, net, [0.5, 0.0, 0.0], 1)
    # p0: no decay: w = 1 - 0.1·0.5 = 0.95; p1: lr_mult 0: unchanged;
    # p2: g = 0 + 0.1·3 = 0.3: w = 3 - 0.1·0.3 = 2.97
    assert ws[0] == pytest.approx([0.95, 2.0, 2.97], rel=1e-6)


def test_l1_regularization_uses_the_sign_with_sign_of_zero_zero():
    net = ParamsOnly([[2.0, -3.0, 0.0]])
    param = solver_param(weight_decay=0.5, regularization_type="L1")
    run(param, net, [[0.0, 0.0, 0.0]], 1)
    # g = 0.5·sign(w) = [0.5, -0.5, 0]; w -= 0.1·g
    assert net.learnable_params[0].data.tolist() == pytest.approx([1.95, -2.95, 0.0])


def test_iter_size_divides_the_summed_gradient_and_clip_sees_it_before():
    # two passes summed to g = [3, 4] (norm 5) with iter_size 2, clip_gradients 2:
    # clip first: scale 2/5 → [1.2, 1.6]; then ÷2 → [0.6, 0.8]; w -= 0.1·g
    net = ParamsOnly([[0.0, 0.0]])
    param = solver_param(iter_size=2, clip_gradients=2.0)
    lines = []
    net.log.sinks.append(SimpleNamespace(write=lines.append))
    run(param, net, [[3.0, 4.0]], 1)
    assert net.learnable_params[0].data.tolist() == pytest.approx([-0.06, -0.08], rel=1e-6)
    assert any("Gradient clipping: scaling down gradients (L2 norm 5 > 2) by scale factor 0.4"
               in line for line in lines)


def test_clip_leaves_small_gradients_and_is_off_by_default():
    net = ParamsOnly([[0.0, 0.0]])
    run(solver_param(clip_gradients=10.0), net, [[3.0, 4.0]], 1)
    assert net.learnable_params[0].data.tolist() == pytest.approx([-0.3, -0.4])
    net = ParamsOnly([[0.0, 0.0]])
    run(solver_param(), net, [[300.0, 400.0]], 1)
    assert net.learnable_params[0].data.tolist() == pytest.approx([-30.0, -40.0])


def test_nesterov():
    # hp = h; h = 0.9h + 0.1·0.5; update = 1.9h − 0.9hp
    # it0: h = 0.05, u = 0.095 → 0.905; it1: h = 0.095, u = 0.1805 − 0.045 = 0.1355 → 0.7695
    # it2: h = 0.1355, u = 0.25745 − 0.0855 = 0.17195 → 0.59755
    _, ws = run(solver_param(type="Nesterov", momentum=0.9), ParamsOnly([1.0]), [0.5], 3)
    assert [w[0] for w in ws] == pytest.approx([0.905, 0.7695, 0.59755], rel=1e-6)


def test_adagrad():
    # h += g²; u = 0.1·g/(sqrt(h)+1e-8): it0 h=0.25 u≈0.1; it1 h=0.5 u=0.05/0.70711=0.0707107
    _, ws = run(solver_param(type="AdaGrad"), ParamsOnly([1.0]), [0.5], 3)
    assert [w[0] for w in ws] == pytest.approx([0.9, 0.82928932, 0.7715543], rel=1e-6)


def test_adagrad_and_rmsprop_refuse_momentum():
    for kind in ("AdaGrad", "RMSProp"):
        with pytest.raises(UserError, match="momentum cannot be used"):
            Solver(solver_param(type=kind, momentum=0.9), ParamsOnly([1.0]))


def test_rmsprop():
    # h = 0.9h + 0.1g²; u = 0.1·g/(sqrt(h)+δ): it0 h=0.025 u=0.05/0.158114=0.316228 → 0.683772
    _, ws = run(solver_param(type="RMSProp", rms_decay=0.9), ParamsOnly([1.0]), [0.5], 3)
    assert [w[0] for w in ws] == pytest.approx([0.68377225, 0.45435653, 0.26226185], rel=2e-6)


def test_adadelta_two_history_sets():
    # m=0.95, δ=1e-6, lr 1: E[g²] = 0.05·0.25 = 0.0125; Δ = 0.5·sqrt(1e-6/0.012501) = 0.004472;
    # E[Δ²] = 0.05·Δ² = 9.9992e-7; w = 0.995528
    param = solver_param(type="AdaDelta", base_lr=1.0, momentum=0.95, delta=1e-6)
    solver, ws = run(param, ParamsOnly([1.0, 1.0]), [0.5, 0.5], 3)
    assert [w[0] for w in ws] == pytest.approx([0.99552804, 0.99099912, 0.98643166], rel=1e-6)
    assert len(solver.history) == 4          # all E[g²] first, then all E[Δ²]
    assert float(solver.history[0]) == pytest.approx(0.03565625, rel=1e-6)
    assert float(solver.history[2]) == pytest.approx(2.9197923e-06, rel=1e-5)


def test_adam_bias_correction_uses_iter_plus_one():
    # it0: m=0.05, v=0.00025, corr = sqrt(0.001)/0.1; u = 0.001·corr·0.05/(0.0158114+1e-8) ≈ 0.001
    param = solver_param(type="Adam", base_lr=0.001, momentum=0.9)
    solver, ws = run(param, ParamsOnly([1.0]), [0.5], 3)
    assert [w[0] for w in ws] == pytest.approx([0.99900000063, 0.99800000108, 0.99700000145],
                                               abs=2e-7)
    assert [float(h) for h in solver.history] == pytest.approx([0.1355, 0.00074925025], rel=5e-5)


def test_learning_rate_follows_schedules_with_repeated_stepvalues(tmp_path):
    # stepvalue 2 three times: the step moves one per iteration: 2, 3, 4
    param = solver_param(lr_policy="multistep", base_lr=0.01, gamma=0.1, stepvalue=[2, 2, 2],
                         display=1)
    lines = []
    net = ParamsOnly([1.0])
    net.log.sinks.append(SimpleNamespace(write=lines.append))
    solver = Solver(param, net)
    rates = [solver.apply_update(display_now=True) for _ in range(6)]
    expected, events = schedules.lr_curve(param, 6)
    assert rates == list(expected)           # the one implementation of the policies
    assert rates == pytest.approx([0.01, 0.01, 0.001, 0.0001, 1e-05, 1e-05], rel=1e-6)
    assert events == [(2, 1), (3, 2), (4, 3)]
    text = "".join(lines)
    for it, step in ((2, 1), (3, 2), (4, 3)):
        assert f"MultiStep Status: Iteration {it}, step = {step}\n" in text
    assert "Iteration 3, lr = 0.0001\n" in text and "Iteration 5, lr = 1e-05\n" in text


def test_many_params_grouped_like_one_at_a_time():
    # the foreach grouping by lr_mult/decay_mult must equal a plain per-parameter loop
    torch.manual_seed(0)
    values = [torch.randn(5).tolist() for _ in range(6)]
    grads = [torch.randn(5).tolist() for _ in range(6)]
    lr_mults, decay_mults = [1, 2, 0, 1, 2, 1], [1, 0, 0, 1, 0, 2]
    param = solver_param(momentum=0.9, weight_decay=0.004, type="SGD")
    net = ParamsOnly(values, lr_mults, decay_mults)
    run(param, net, grads, 2)
    for v, g, lm, dm, p in zip(values, grads, lr_mults, decay_mults, net.learnable_params):
        w, h = np.float32(v), np.zeros(5, np.float32)
        for _ in range(2):
            gg = np.float32(g) + np.float32(0.004 * dm) * w if dm else np.float32(g)
            h = np.float32(0.9) * h + np.float32(0.1 * lm) * gg
            w = w - h
        assert p.data.numpy() == pytest.approx(w, rel=1e-5, abs=1e-7)


def test_unknown_types_are_one_line_errors():
    with pytest.raises(UserError, match="unknown solver type \"Adamax\""):
        Solver(solver_param(type="Adamax"), ParamsOnly([1.0]))
    with pytest.raises(UserError, match="regularization_type \"L3\""):
        Solver(solver_param(regularization_type="L3"), ParamsOnly([1.0]))


def test_fused_sgd_equals_the_step_by_step_update_over_a_changing_rate():
    # The fused kernel (regularize + history + apply in one pass) against Caffe's three steps,
    # over a multistep drop, mixed lr/decay multipliers and lr_mult 0: within float32 rounding.
    torch.manual_seed(1)
    values = [torch.randn(7).tolist() for _ in range(5)]
    grads = [torch.randn(7).tolist() for _ in range(5)]
    lr_mults, decay_mults = [1, 2, 0, 1, 2], [1, 0, 1, 2, 1]
    param = solver_param(lr_policy="multistep", gamma=0.1, stepvalue=[2], base_lr=0.05,
                         momentum=0.9, weight_decay=0.004)
    results = []
    for fused in (True, False):
        net = ParamsOnly(values, lr_mults, decay_mults)
        solver = Solver(param, net, fused=fused)
        assert solver.fused == fused
        for _ in range(4):
            net.set_grads(grads)
            solver.apply_update()
        results.append(([p.data.clone() for p in net.learnable_params],
                        [h.clone() for h in solver.history]))
    (w_fused, h_fused), (w_steps, h_steps) = results
    for a, b in zip(w_fused + h_fused, w_steps + h_steps):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    assert torch.equal(w_fused[2], torch.tensor(values[2]))     # lr_mult 0: never moves


def test_fused_sgd_only_where_it_is_caffes_update():
    net = ParamsOnly([1.0])
    assert Solver(solver_param(momentum=0.9), net).fused
    for fields in ({"regularization_type": "L1"}, {"snapshot_diff": True}, {"type": "Nesterov"},
                   {"momentum": 0.0}):
        assert not Solver(solver_param(**fields), ParamsOnly([1.0])).fused, fields
    # snapshot_diff keeps Caffe's diff after the update: the update value (the history)
    net = ParamsOnly([1.0])
    solver, _ = run(solver_param(momentum=0.9, snapshot_diff=True), net, [0.5], 2)
    assert float(net.learnable_params[0].diff) == pytest.approx(float(solver.history[0]))


@pytest.mark.parametrize("kind", ["SGD", "Nesterov", "Adam"])
def test_a_net_without_parameters_still_counts_its_iterations(kind):
    # Caffe's ApplyUpdate loops over no parameters: the rate is computed, iter advances
    solver = Solver(solver_param(type=kind, momentum=0.9), ParamsOnly([]))
    assert solver.apply_update() == pytest.approx(0.1)
    solver.apply_update()
    assert solver.iter == 2
