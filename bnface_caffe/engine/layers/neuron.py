"""Element-wise layers (neuron_layer.cpp family): top has the bottom's shape.

ReLU (negative_slope; gradient slope at x <= 0), PReLU (per-channel or shared
slope, default filler 0.25), Dropout (TRAIN: keep with 1-p, scale 1/(1-p); TEST:
identity), Sigmoid, TanH, AbsVal, ELU, Exp, Swish: autograd gives Caffe's
gradients, in place too. Power, BNLL, Clip and Log compute Caffe's own
Backward_cpu formulas (caffe_backward.elementwise), which differ from the exact
gradient where the formula divides by zero (Power) and when the layer runs in
place: Caffe then reads the overwritten bottom (BNLL, Clip), and Log and Power
also overwrite the shared diff before reading it. Threshold has no backward.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from ...proto import caffe_pb2
from .. import fillers
from ...shapes import shape_string
from .base import Layer, register
from .caffe_backward import elementwise, refuse_gradient


class Neuron(Layer):
    def reshape(self, bottom_shapes):
        return [bottom_shapes[0]]


@register
class ReLU(Neuron):
    type = "ReLU"

    def forward(self, bottoms):
        slope = self.param.relu_param.negative_slope
        x = bottoms[0]
        # leaky_relu's gradient is 1 for x > 0 and the slope for x <= 0, as Caffe's.
        return [F.leaky_relu(x, slope) if slope else F.relu(x)]


@register
class PReLU(Neuron):
    type = "PReLU"

    def setup(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) < 2:
            raise self.error(f"input must have at least 2 axes, got {shape_string(shape)}")
        p = self.param.prelu_param
        self.shared = p.channel_shared
        filler = p.filler if p.HasField("filler") else fillers.constant_filler(0.25)
        self.make_blobs([((() if self.shared else (shape[1],)), filler)])

    def forward(self, bottoms):
        x = bottoms[0]
        w = self.weight(0).reshape(-1)
        return [F.prelu(x, w)]


@register
class Dropout(Neuron):
    type = "Dropout"

    def setup(self, bottom_shapes):
        self.ratio = self.param.dropout_param.dropout_ratio
        # Caffe only DCHECKs 0 < ratio < 1: in a release build ratio 0 keeps every
        # unit (identity), ratio 1 gives 0 * inf = NaN and a negative one aborts.
        if not 0 <= self.ratio < 1:
            raise self.error(f"dropout_ratio must be in [0, 1), got {self.ratio}")

    def forward(self, bottoms):
        x = bottoms[0]
        if self.phase != caffe_pb2.TRAIN:
            return [x]
        # mask ~ Bernoulli(1 - p), y = x * mask / (1 - p): what F.dropout computes.
        return [F.dropout(x, self.ratio, training=True)]


@register
class Sigmoid(Neuron):
    type = "Sigmoid"

    def forward(self, bottoms):
        return [torch.sigmoid(bottoms[0])]


@register
class TanH(Neuron):
    type = "TanH"

    def forward(self, bottoms):
        return [torch.tanh(bottoms[0])]


@register
class AbsVal(Neuron):
    type = "AbsVal"
    in_place_ok = False

    def forward(self, bottoms):
        return [torch.abs(bottoms[0])]


@register
class Power(Neuron):
    """y = (shift + scale * x) ^ power, with Caffe's backward: a constant when
    power * scale == 0 (zero gradient); power 1: scale; power 2: 2 * scale *
    (shift + scale * x); else power * y / x (shift 0) or power * scale * y /
    (shift + scale * x), which is NaN where the base is 0 (the exact gradient is not).
    In place, Caffe's backward overwrites the shared diff before reading it: the
    bottom diff is that factor squared, whatever the top diff."""
    type = "Power"
    overwrites_top_diff = True

    def setup(self, bottom_shapes):
        p = self.param.power_param
        self.power, self.scale, self.shift = (np.float32(v) for v in (p.power, p.scale, p.shift))
        self.diff_scale = np.float32(self.power * self.scale)

    def forward(self, bottoms):
        x = bottoms[0]
        if self.diff_scale == 0:
            value = 1.0 if self.power == 0 else float(np.float32(self.shift ** self.power))
            return [torch.full_like(x, value)]
        return [elementwise(self, x)]

    def caffe_forward(self, x):
        base = x
        if self.scale != 1:
            base = base * float(self.scale)
        if self.shift != 0:
            base = base + float(self.shift)
        return base if self.power == 1 else torch.pow(base, float(self.power))

    def caffe_backward(self, bottom, top, top_diff):
        if self.power == 1:
            return top_diff * float(self.diff_scale)
        if self.power == 2:  # 2 * scale * (scale * x + shift), from the bottom alone
            grad = bottom * float(np.float32(self.diff_scale * self.scale))
            if self.shift != 0:
                grad = grad + float(np.float32(self.diff_scale * self.shift))
            return top_diff * grad
        if self.shift == 0:
            return top_diff * (top / bottom * float(self.power))
        base = bottom * float(self.scale) + float(self.shift)
        return top_diff * (top / base * float(self.diff_scale))


@register
class ELU(Neuron):
    type = "ELU"

    def forward(self, bottoms):
        return [F.elu(bottoms[0], alpha=self.param.elu_param.alpha)]


@register
class BNLL(Neuron):
    """y = log(1 + e^x), computed as x + log(1 + e^-x) for x > 0; Caffe's gradient
    is e^m / (e^m + 1) with m = min(x, 50)."""
    type = "BNLL"

    def forward(self, bottoms):
        return [elementwise(self, bottoms[0])]

    def caffe_forward(self, x):
        # exp in the blob's precision, then log(1. + e) in double as Caffe's C++ does
        # (so log(1 + e^x) is exactly 0 for x < -36.7, not e^x).
        soft = torch.log(1 + torch.exp(-x.abs()).double())
        return torch.where(x > 0, x.double() + soft, soft).to(x.dtype)

    def caffe_backward(self, bottom, top, top_diff):
        e = torch.exp(bottom.clamp(max=50.0))
        return top_diff * (e / (e + 1))


@register
class Clip(Neuron):
    """y = max(min, min(x, max)); the gradient passes where min <= x <= max (in
    place, Caffe tests the clipped value, so every gradient passes)."""
    type = "Clip"

    def setup(self, bottom_shapes):
        p = self.param.clip_param
        if self.param.HasField("clip_param") and not (p.HasField("min") and p.HasField("max")):
            raise self.error("clip_param needs both min and max (required fields of "
                             "ClipParameter; Caffe refuses the prototxt without them)")
        self.min, self.max = float(p.min), float(p.max)

    def forward(self, bottoms):
        return [elementwise(self, bottoms[0])]

    def caffe_forward(self, x):
        return x.clamp(max=self.max).clamp(min=self.min)  # Caffe's order when min > max

    def caffe_backward(self, bottom, top, top_diff):
        return top_diff * ((bottom >= self.min) & (bottom <= self.max)).to(top_diff.dtype)


def _log_of_base(layer, base):
    """log(base) as Exp/Log layers take it: base -1 means e (log 1 exactly)."""
    if base == -1:
        return np.float32(1)
    if not base > 0:
        raise layer.error(f"base must be strictly positive (or -1 for e), got {base}")
    log_base = np.float32(math.log(base))
    if not math.isfinite(log_base):
        raise layer.error(f"log(base) = log({base}) is not finite")
    return log_base


@register
class Exp(Neuron):
    """y = base ^ (shift + scale * x), computed as outer * exp(inner * x) with
    inner = ln(base) * scale and outer = base ^ shift."""
    type = "Exp"

    def setup(self, bottom_shapes):
        p = self.param.exp_param
        base, scale, shift = (np.float32(v) for v in (p.base, p.scale, p.shift))
        self.inner = np.float32(_log_of_base(self, base) * scale)
        if shift == 0:
            self.outer = np.float32(1)
        else:
            self.outer = np.float32(math.exp(shift) if base == -1 else base ** shift)

    def forward(self, bottoms):
        x = bottoms[0]
        y = torch.exp(x if self.inner == 1 else x * float(self.inner))
        return [y if self.outer == 1 else y * float(self.outer)]


@register
class Log(Neuron):
    """y = log_base(shift + scale * x); Caffe's gradient scale / ln(base) /
    (shift + scale * x) reads the bottom (the top when in place, and then squared:
    see caffe_backward.elementwise)."""
    type = "Log"
    overwrites_top_diff = True

    def setup(self, bottom_shapes):
        p = self.param.log_param
        base = np.float32(p.base)
        log_base = _log_of_base(self, base)
        if log_base == 0:
            raise self.error(f"1/log(base) is infinite for base {base}; use a base other than 1")
        self.base_scale = np.float32(np.float32(1) / log_base)
        self.scale, self.shift = np.float32(p.scale), np.float32(p.shift)
        self.backward_scale = np.float32(self.scale / log_base)

    def forward(self, bottoms):
        return [elementwise(self, bottoms[0])]

    def _inside(self, x):
        if self.scale != 1:
            x = x * float(self.scale)
        if self.shift != 0:
            x = x + float(self.shift)
        return x

    def caffe_forward(self, x):
        y = torch.log(self._inside(x))
        return y if self.base_scale == 1 else y * float(self.base_scale)

    def caffe_backward(self, bottom, top, top_diff):
        grad = torch.reciprocal(self._inside(bottom))
        if self.backward_scale != 1:
            grad = grad * float(self.backward_scale)
        return top_diff * grad


@register
class Swish(Neuron):
    """y = x * sigmoid(beta * x)."""
    type = "Swish"

    def forward(self, bottoms):
        x = bottoms[0]
        beta = float(np.float32(self.param.swish_param.beta))
        return [x * torch.sigmoid(x * beta if beta != 1 else x)]


@register
class Threshold(Neuron):
    """y = 1 where x > threshold, else 0. Caffe has no backward for it."""
    type = "Threshold"

    def forward(self, bottoms):
        x = bottoms[0]
        t = float(np.float32(self.param.threshold_param.threshold))
        y = (x.detach() > t).to(x.dtype)
        return [refuse_gradient(self, y, [x], "Threshold has no backward (Caffe: 'Not "
                                "Implemented Yet'), so no gradient can reach its bottom")]
