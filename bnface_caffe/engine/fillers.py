"""Caffe's weight fillers (filler.hpp), drawing from torch's CPU generator.

`fill(filler_param, shape)` returns a float32 CPU tensor. The fan definitions are
Caffe master's: fan_in = count / shape[0], fan_out = count / shape[1] (count for
a 1-axis blob), n = fan_in | fan_out | (fan_in + fan_out) / 2. Seed with
torch.manual_seed (the solver maps random_seed onto it).
"""
import math

import numpy as np
import torch

from ..errors import UserError
from ..proto import caffe_pb2
from ..shapes import count

FAN_IN = caffe_pb2.FillerParameter.FAN_IN
FAN_OUT = caffe_pb2.FillerParameter.FAN_OUT
AVERAGE = caffe_pb2.FillerParameter.AVERAGE


def constant_filler(value):
    return caffe_pb2.FillerParameter(type="constant", value=value)


def fans(shape):
    """(fan_in, fan_out) as Caffe's Xavier/MSRA fillers compute them (integers)."""
    n = count(shape)
    fan_in = n // shape[0]
    fan_out = n // shape[1] if len(shape) > 1 else n
    return fan_in, fan_out


def fan_n(param, shape):
    fan_in, fan_out = fans(shape)
    if param.variance_norm == AVERAGE:
        return np.float32((fan_in + fan_out) / np.float32(2))
    if param.variance_norm == FAN_OUT:
        return np.float32(fan_out)
    return np.float32(fan_in)


def fill(param, shape, where="filler"):
    """A new float32 tensor of `shape` filled as Caffe's GetFiller(param) would."""
    shape = tuple(int(d) for d in shape)
    kind = param.type
    filler = FILLERS.get(kind)
    if filler is None:
        raise UserError(f"{where}: unknown filler type '{kind}'; Caffe's fillers are "
                        f"{', '.join(sorted(FILLERS))}")
    if kind != "gaussian" and param.sparse != -1:
        raise UserError(f"{where}: filler '{kind}' does not support sparse "
                        f"(sparse: {param.sparse}); only gaussian does")
    if count(shape) == 0:
        raise UserError(f"{where}: cannot fill an empty blob (shape {shape})")
    with torch.no_grad():
        return filler(param, shape, where)


def _constant(p, shape, where):
    return torch.full(shape, float(np.float32(p.value)), dtype=torch.float32)


def _uniform_between(lo, hi, shape):
    # Caffe draws from [lo, nextafter(hi)); torch.rand is [0, 1). The closed upper
    # end matters only for a measure-zero event, so the affine map is faithful.
    lo, hi = float(np.float32(lo)), float(np.float32(hi))
    return torch.rand(shape, dtype=torch.float32) * (hi - lo) + lo


def _uniform(p, shape, where):
    if p.max < p.min:
        raise UserError(f"{where}: uniform filler needs min <= max, got min {p.min} max {p.max}")
    return _uniform_between(p.min, p.max, shape)


def _gaussian(p, shape, where):
    if not p.std > 0:
        raise UserError(f"{where}: gaussian filler needs std > 0, got {p.std}")
    if p.sparse < -1:
        raise UserError(f"{where}: gaussian filler sparse must be >= -1, got {p.sparse}")
    data = torch.randn(shape, dtype=torch.float32) * float(np.float32(p.std)) + float(np.float32(p.mean))
    if p.sparse >= 0:
        # Each weight survives with probability sparse / num_outputs (shape[0]).
        keep = float(np.float32(p.sparse) / np.float32(shape[0])) if shape else 1.0
        mask = torch.bernoulli(torch.full(shape, min(keep, 1.0)))
        data = data * mask
    return data


def _positive_unitball(p, shape, where):
    data = torch.rand(shape, dtype=torch.float32)
    rows = data.reshape(shape[0], -1)
    rows /= rows.sum(dim=1, keepdim=True)
    return data


def _xavier(p, shape, where):
    scale = math.sqrt(np.float32(3) / fan_n(p, shape))
    return _uniform_between(-scale, scale, shape)


def _msra(p, shape, where):
    std = float(np.float32(math.sqrt(np.float32(2) / fan_n(p, shape))))
    return torch.randn(shape, dtype=torch.float32) * std


def _bilinear(p, shape, where):
    if len(shape) != 4:
        raise UserError(f"{where}: bilinear filler needs a 4-axis blob, got shape {shape}")
    if shape[2] != shape[3]:
        raise UserError(f"{where}: bilinear filler needs a square kernel, got {shape[2]}x{shape[3]}")
    k = shape[3]
    f = math.ceil(k / 2.0)
    c = (k - 1) / (2.0 * f)
    ramp = 1 - np.abs(np.arange(k, dtype=np.float64) / f - c)
    kernel = np.outer(ramp, ramp).astype(np.float32)  # rows are y, columns x
    return torch.from_numpy(np.broadcast_to(kernel, shape).copy())


FILLERS = {
    "constant": _constant,
    "uniform": _uniform,
    "gaussian": _gaussian,
    "positive_unitball": _positive_unitball,
    "xavier": _xavier,
    "msra": _msra,
    "bilinear": _bilinear,
}
