"""Caffe's lr policies against the formulas, worked out by hand."""
import math

import numpy as np
import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2
from bnface_caffe.schedules import lr_at, lr_curve, lr_points, multistep_events


def solver(**fields):
    return caffe_pb2.SolverParameter(**fields)


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-6)


def test_fixed_step_exp_inv_poly_sigmoid_match_caffe_formulas():
    assert close(lr_at(solver(lr_policy="fixed", base_lr=0.1), 12345)[0], 0.1)
    step = solver(lr_policy="step", base_lr=0.055, gamma=0.7, stepsize=11000)
    assert [lr_at(step, it)[1] for it in (10999, 11000, 11001, 21999, 22000)] == [0, 1, 1, 1, 2]
    assert close(lr_at(step, 22000)[0], 0.055 * 0.7 ** 2)
    assert close(lr_at(solver(lr_policy="exp", base_lr=0.1, gamma=0.99), 10)[0], 0.1 * 0.99 ** 10)
    inv = solver(lr_policy="inv", base_lr=0.01, gamma=1e-4, power=0.75)
    assert close(lr_at(inv, 5000)[0], 0.01 * (1 + 1e-4 * 5000) ** -0.75)
    poly = solver(lr_policy="poly", base_lr=0.05, power=2, max_iter=1000)
    assert close(lr_at(poly, 250)[0], 0.05 * (1 - 0.25) ** 2)
    assert lr_at(poly, 1000)[0] == 0.0
    sig = solver(lr_policy="sigmoid", base_lr=0.1, gamma=0.01, stepsize=500)
    assert close(lr_at(sig, 300)[0], 0.1 / (1 + math.exp(-0.01 * (300 - 500))))


def test_rate_is_float32_like_caffe():
    rate, _ = lr_at(solver(lr_policy="fixed", base_lr=0.055), 0)
    assert rate == float(np.float32(0.055)) and rate != 0.055


def test_multistep_advances_at_most_once_per_iteration():
    # Observed on real Caffe: stepvalue 20 three times -> steps at 20, 21, 22.
    s = solver(lr_policy="multistep", base_lr=0.01, gamma=0.1, stepvalue=[20, 20, 20], max_iter=30)
    rates, events = lr_curve(s)
    assert events == [(20, 1), (21, 2), (22, 3)]
    assert close(rates[19], 0.01) and close(rates[20], 0.001)
    assert close(rates[21], 0.0001) and close(rates[22], 1e-5) and close(rates[29], 1e-5)
    assert multistep_events(s) == events


def test_multistep_resumed_past_several_values_catches_up_one_per_iteration():
    s = solver(lr_policy="multistep", base_lr=1, gamma=0.5, stepvalue=[10, 20, 30])
    _, events = lr_curve(s, iterations=60, start=50, current_step=0)
    assert events == [(50, 1), (51, 2), (52, 3)]


def test_lr_points_agree_with_per_iteration_curve():
    s = solver(lr_policy="multistep", base_lr=0.055, gamma=0.7, max_iter=400,
               stepvalue=[14, 28, 120, 120, 120, 120, 160, 175])
    rates, _ = lr_curve(s)
    its, point_rates = lr_points(s)
    for it, rate in zip(its, point_rates):
        assert rate == rates[it]
    changes = [it for it in range(1, 400) if rates[it] != rates[it - 1]]
    assert changes == [int(i) for i in its[1:]]
    step = solver(lr_policy="step", base_lr=0.01, gamma=0.1, stepsize=50, max_iter=420)
    its, point_rates = lr_points(step)
    assert list(its) == list(range(0, 420, 50)) and close(point_rates[-1], 0.01 * 0.1 ** 8)


@pytest.mark.parametrize("fields, message", [
    (dict(lr_policy="cosine", base_lr=0.1), "unknown lr_policy"),
    (dict(lr_policy="step", base_lr=0.1, gamma=0.1), "stepsize > 0"),
    (dict(lr_policy="exp", base_lr=0.1, gamma=-0.5), "gamma >= 0"),
])
def test_bad_policies_are_user_errors(fields, message):
    with pytest.raises(UserError, match=message):
        lr_at(solver(**fields), 0)
