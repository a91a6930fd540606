"""Fillers against Caffe's definitions: bounds, moments and fan definitions."""
import math

import numpy as np
import pytest
import torch

from bnface_caffe.engine import fillers
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2

F = caffe_pb2.FillerParameter


def fill(shape, **kw):
    torch.manual_seed(1)
    return fillers.fill(F(**kw), shape).numpy()


# (shape, fan_in = count/shape[0], fan_out = count/shape[1]) worked out by hand
FANS = [((64, 32, 3, 3), 32 * 9, 64 * 9),     # conv [O, I, kh, kw]
        ((96, 16, 5, 5), 16 * 25, 96 * 25),
        ((1000, 320), 320, 1000),             # InnerProduct [N, K]
        ((500,), 1, 500)]                     # 1-axis blob: fan_out = count


@pytest.mark.parametrize("shape,fan_in,fan_out", FANS)
def test_fan_definitions(shape, fan_in, fan_out):
    assert fillers.fans(shape) == (fan_in, fan_out)


@pytest.mark.parametrize("shape,fan_in,fan_out", FANS[:3])
@pytest.mark.parametrize("norm", ["FAN_IN", "FAN_OUT", "AVERAGE"])
def test_xavier_bounds_and_variance(shape, fan_in, fan_out, norm):
    n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}[norm]
    a = math.sqrt(3 / n)
    w = fill(shape, type="xavier", variance_norm=F.VarianceNorm.Value(norm))
    assert w.shape == shape
    assert np.abs(w).max() <= a * (1 + 1e-6)
    assert np.abs(w).max() > 0.95 * a                       # the range is used
    assert w.var() == pytest.approx(a * a / 3, rel=0.06)    # U[-a, a] variance = 1/n
    assert abs(w.mean()) < 0.05 * a


@pytest.mark.parametrize("shape,fan_in,fan_out", FANS[:3])
@pytest.mark.parametrize("norm", ["FAN_IN", "FAN_OUT", "AVERAGE"])
def test_msra_variance(shape, fan_in, fan_out, norm):
    n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}[norm]
    w = fill(shape, type="msra", variance_norm=F.VarianceNorm.Value(norm))
    assert w.std() == pytest.approx(math.sqrt(2 / n), rel=0.05)
    assert abs(w.mean()) < 0.05 * math.sqrt(2 / n)


def test_constant_uniform_gaussian():
    assert (fill((3, 4), type="constant", value=0.25) == np.float32(0.25)).all()
    assert (fill((3, 4)) == 0).all()                        # FillerParameter's default
    u = fill((20000,), type="uniform", min=-2, max=3)
    assert u.min() >= -2 and u.max() <= 3
    assert u.mean() == pytest.approx(0.5, abs=0.05)
    g = fill((20000,), type="gaussian", mean=1.5, std=0.5)
    assert g.mean() == pytest.approx(1.5, abs=0.02) and g.std() == pytest.approx(0.5, rel=0.03)


def test_gaussian_sparse_keeps_sparse_over_num_outputs():
    w = fill((50, 400), type="gaussian", std=1, sparse=10)
    assert (w != 0).mean() == pytest.approx(10 / 50, abs=0.02)


def test_positive_unitball_rows_sum_to_one():
    w = fill((7, 3, 2, 2), type="positive_unitball")
    assert (w >= 0).all()
    np.testing.assert_allclose(w.reshape(7, -1).sum(1), 1, rtol=1e-6)


def test_bilinear_matches_the_closed_form():
    w = fill((2, 1, 4, 4), type="bilinear")
    f = math.ceil(4 / 2)                 # 2
    c = (4 - 1) / (2 * f)                # 0.75
    ramp = [1 - abs(x / f - c) for x in range(4)]   # 0.25 0.75 0.75 0.25
    assert ramp == [0.25, 0.75, 0.75, 0.25]
    want = np.outer(ramp, ramp)
    np.testing.assert_allclose(w[0, 0], want, rtol=1e-6)
    np.testing.assert_allclose(w[1, 0], want, rtol=1e-6)
    w3 = fill((1, 1, 3, 3), type="bilinear")     # f = 2, c = 0.5: 0.5 1 0.5
    np.testing.assert_allclose(w3[0, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))


def test_bad_fillers_are_one_line_errors():
    with pytest.raises(UserError, match="unknown filler type 'glorot'.*xavier"):
        fill((2, 2), type="glorot")
    with pytest.raises(UserError, match="does not support sparse"):
        fill((2, 2), type="xavier", sparse=3)
    with pytest.raises(UserError, match="std > 0"):
        fill((2, 2), type="gaussian", std=0)
    with pytest.raises(UserError, match="4-axis"):
        fill((2, 2), type="bilinear")


def test_fillers_follow_torch_seed():
    a = fill((10,), type="xavier")
    b = fill((10,), type="xavier")
    assert (a == b).all()
