"""The paper's named schedules: values at and around every step point."""
import math

import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.paper import MULTISTEP_STEPVALUES as MULTISTEP_VALUES
from bnface_caffe.paper_schedules import SolverOptions, build_solver, scale_iteration
from bnface_caffe.schedules import lr_at, lr_curve


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-6)


def test_short_step_is_0_055_times_0_7_to_floor_iter_over_11000():
    s = build_solver("short_step")
    assert s.max_iter == 180000 and s.net == "prototxt/bn_train_val.prototxt"
    for it in (0, 10999, 11000, 11001, 21999, 22000, 179999):
        assert close(lr_at(s, it)[0], 0.055 * 0.7 ** (it // 11000)), it


def test_multistep_catches_up_one_step_per_iteration_at_repeated_values():
    s = build_solver("multistep")
    assert s.max_iter == 230000 and list(s.stepvalue) == list(MULTISTEP_VALUES)
    assert len(s.stepvalue) == 14
    rates, events = lr_curve(s, iterations=210005)
    # three single steps, then 120000 x4 spread over 120000..120003
    expected_steps = {119999: 3, 120000: 4, 120001: 5, 120002: 6, 120003: 7, 120004: 7}
    for it, steps in expected_steps.items():
        assert close(rates[it], 0.055 * 0.7 ** steps), it
    assert [it for it, _ in events] == [14000, 28000, 42000, 120000, 120001, 120002, 120003,
                                         160000, 160001, 160002, 160003, 175000, 190000, 210000]
    assert close(rates[13999], 0.055) and close(rates[14000], 0.055 * 0.7)
    assert close(rates[210004], 0.055 * 0.7 ** 14)


def test_original_text_variant_steps_at_150k_and_300k():
    s = build_solver("original")
    assert s.max_iter == 420000 and s.net == "prototxt/baseline_train_val.prototxt"
    rates, events = lr_curve(s)
    assert events == [(150000, 1), (300000, 2)]
    assert close(rates[149999], 0.01) and close(rates[150000], 0.001)
    assert close(rates[299999], 0.001) and close(rates[300000], 0.0001) and close(rates[-1], 0.0001)


def test_original_table_variant_is_the_papers_formula():
    s = build_solver("original", SolverOptions(original_variant="table"))
    for k in (1, 49999, 50000, 50001, 100001, 420000):  # the paper counts iterations from 1
        assert close(lr_at(s, k - 1)[0], 0.01 * 0.1 ** math.floor((k - 1) / 50000)), k


def test_long_step_is_the_original_schedule_on_the_bn_net():
    a, b = build_solver("original"), build_solver("long_step")
    assert b.net == "prototxt/bn_train_val.prototxt"
    assert (a.lr_policy, a.base_lr, list(a.stepvalue), a.max_iter) == \
        (b.lr_policy, b.base_lr, list(b.stepvalue), b.max_iter)


def test_scale_multiplies_every_iteration_number():
    s = build_solver("multistep", SolverOptions(scale=0.01, test_interval=2000, snapshot=10000))
    assert s.max_iter == 2300 and s.test_interval == 20 and s.snapshot == 100
    assert list(s.stepvalue) == [140, 280, 420] + [1200] * 4 + [1600] * 4 + [1750, 1900, 2100]
    assert build_solver("short_step", SolverOptions(scale=0.001)).stepsize == 11
    assert scale_iteration(3, 0.01) == 1  # never 0


def test_solver_knobs_are_written():
    s = build_solver("short_step", SolverOptions(random_seed=7, type="Nesterov", iter_size=2,
                                                 average_loss=10, solver_mode="CPU", test_iter=9))
    assert (s.random_seed, s.type, s.iter_size, s.average_loss, list(s.test_iter)) == (7, "Nesterov", 2, 10, [9])
    assert math.isclose(s.momentum, 0.9, rel_tol=1e-6) and math.isclose(s.weight_decay, 0.0005, rel_tol=1e-6)


def test_unknown_name_and_variant():
    with pytest.raises(UserError, match="unknown schedule 'cosine'"):
        build_solver("cosine")
    with pytest.raises(UserError, match="original-variant"):
        build_solver("original", SolverOptions(original_variant="blog"))


def test_our_early_drop_schedule():
    s = build_solver("early_drop")
    assert (s.lr_policy, s.max_iter, s.net) == ("multistep", 230000, "prototxt/bn_train_val.prototxt")
    rates, events = lr_curve(s)
    assert events == [(40000, 1), (100000, 2)]
    assert close(rates[39999], 0.055) and close(rates[40000], 0.0055)
    assert close(rates[99999], 0.0055) and close(rates[100000], 0.00055) and close(rates[-1], 0.00055)
    scaled = build_solver("early_drop", SolverOptions(scale=0.01))
    assert list(scaled.stepvalue) == [400, 1000] and scaled.max_iter == 2300
