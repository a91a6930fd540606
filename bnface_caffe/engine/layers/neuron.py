"""Element-wise layers (neuron_layer.cpp family): top has the bottom's shape.

ReLU (negative_slope; gradient slope at x <= 0), PReLU (per-channel or shared
slope, default filler 0.25), Dropout (TRAIN: keep with 1-p, scale 1/(1-p); TEST:
identity), Sigmoid, TanH, AbsVal, Power, ELU. Autograd reproduces Caffe's
gradients for all of them (checked numerically in tests/test_engine_layers.py).
"""
import torch
import torch.nn.functional as F

from ...proto import caffe_pb2
from .. import fillers
from ...shapes import shape_string
from .base import Layer, register


class Neuron(Layer):
    def reshape(self, bottom_shapes):
        return [bottom_shapes[0]]


@register
class ReLU(Neuron):
    type = "ReLU"

    def setup(self, bottom_shapes):
        self.slope = self.param.relu_param.negative_slope   # read once: forward may be compiled

    def forward(self, bottoms):
        slope = self.slope
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
        if not 0 < self.ratio < 1:
            raise self.error(f"dropout_ratio must be in (0, 1), got {self.ratio}")

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
    type = "Power"

    def forward(self, bottoms):
        p = self.param.power_param  # y = (shift + scale * x) ^ power
        x = bottoms[0]
        if p.power == 1:
            return [x * p.scale + p.shift]
        return [torch.pow(x * p.scale + p.shift, p.power)]


@register
class ELU(Neuron):
    type = "ELU"

    def forward(self, bottoms):
        return [F.elu(bottoms[0], alpha=self.param.elu_param.alpha)]
