"""InnerProduct (inner_product_layer.cpp), Scale (scale_layer.cpp), Bias (bias_layer.cpp),
Embed (embed_layer.cpp), Parameter (parameter_layer.hpp).

InnerProduct: top = X(M x K) W^T + b with K = count(axis..), weight [N, K] (or
[K, N] with transpose), constant-0 fillers by default. Scale: y = x * s (+ b),
s of shape bottom.shape[axis : axis + num_axes] (default [C]), learned with a
constant-1 default filler, or taken from a second bottom. Bias: y = x + b.
Embed: top[..., :] = W[int(x)] (+ b), W [input_dim, num_output]; gradients reach
W and b only. Parameter: its one blob (zeros unless loaded) is its top.
"""
import torch
import torch.nn.functional as F

from .. import fillers
from ...shapes import count, shape_string
from .base import Layer, register
from .caffe_backward import refuse_gradient



@register
class InnerProduct(Layer):
    type = "InnerProduct"

    def setup(self, bottom_shapes):
        p = self.param.inner_product_param
        shape = bottom_shapes[0]
        self.axis = self.axis_of(p.axis, shape)
        self.num_output = p.num_output
        if self.num_output <= 0:
            raise self.error("num_output must be > 0 (set inner_product_param { num_output: N })")
        self.K = count(shape, self.axis)
        self.transpose = p.transpose
        weight_shape = (self.K, self.num_output) if self.transpose else (self.num_output, self.K)
        self.make_weight_and_bias(weight_shape, p)

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        axis = self.axis_of(self.param.inner_product_param.axis, shape)
        k = count(shape, axis)
        if k != self.K:
            raise self.error(f"input {shape_string(shape)} gives {k} features per sample but the "
                             f"weights expect {self.K}; the input size changed (check the "
                             "pooling sizes / input shape, or retrain this layer)")
        return [tuple(shape[:axis]) + (self.num_output,)]

    def forward(self, bottoms):
        x = bottoms[0]
        lead = x.shape[:self.axis]
        w = self.weight(0)
        if self.transpose:
            w = w.t()
        b = self.weight(1) if self.bias_term else None
        y = F.linear(x.reshape(-1, self.K), w, b)
        return [y.reshape(*lead, self.num_output)]


def _broadcast(blob, axis, ndim):
    """View a [d_axis, ..., d_axis+k] blob so it broadcasts over an ndim-axis input."""
    shape = (1,) * axis + tuple(blob.shape) + (1,) * (ndim - axis - blob.dim())
    return blob.reshape(shape)


class _Broadcast(Layer):
    """Shared by Scale and Bias: a blob (or bottom[1]) applied along axis..axis+num_axes."""
    bottoms = (1, 2)

    def _operand_shape(self, shape, axis, num_axes):
        if num_axes < -1:
            raise self.error(f"num_axes must be >= 0, or -1 for all, got {num_axes}")
        if num_axes >= 0 and len(shape) < axis + num_axes:
            raise self.error(f"the blob's shape extends past the input {shape_string(shape)} "
                             f"(axis {axis}, num_axes {num_axes})")
        return tuple(shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes])

    def _check(self, shape, operand_shape, what):
        axis = 0 if len(operand_shape) == 0 else self.axis_of(self.axis_param, shape)
        if len(shape) < axis + len(operand_shape) or \
                tuple(shape[axis:axis + len(operand_shape)]) != tuple(operand_shape):
            raise self.error(f"{what} shape {shape_string(operand_shape)} does not match input "
                             f"{shape_string(shape)} at axis {axis}")
        return axis


@register
class Scale(_Broadcast):
    type = "Scale"
    folded = False   # True: the preceding BatchNorm applies this layer (see Net)

    def setup(self, bottom_shapes):
        p = self.param.scale_param
        self.axis_param = p.axis
        shape = bottom_shapes[0]
        axis = self.axis_of(p.axis, shape)
        specs = []
        if len(bottom_shapes) == 1:
            scale_shape = self._operand_shape(shape, axis, p.num_axes)
            filler = p.filler if p.HasField("filler") else fillers.constant_filler(1)
            specs.append((scale_shape, filler))
            bias_shape = scale_shape
        else:
            bias_shape = self._operand_shape(shape, axis, len(bottom_shapes[1]))
        self.bias_term = p.bias_term
        if self.bias_term:
            self.log.info("layer_factory.hpp:77", f"Creating layer {self.name}")  # inner Bias
            specs.append((bias_shape, p.bias_filler))
        self.make_blobs(specs)
        self.two_bottoms = len(bottom_shapes) == 2

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        scale_shape = bottom_shapes[1] if self.two_bottoms else tuple(self.blobs[0].shape)
        self.axis = self._check(shape, scale_shape, "scale")
        if self.bias_term:
            self.bias_axis = self._check(shape, tuple(self.blobs[-1].shape), "bias")
        return [shape]

    def per_channel(self):
        """A learned [C] scale on axis 1: what BatchNorm can apply in its own kernel."""
        return (not self.two_bottoms and self.axis == 1 and self.blobs[0].dim() == 1
                and (not self.bias_term or self.bias_axis == 1))

    def affine(self):
        """(gamma, beta) for a folded BatchNorm; beta None without bias_term."""
        return self.weight(0), (self.weight(1) if self.bias_term else None)

    def apply(self, x):
        s = self.weight(0) if not self.two_bottoms else None
        return self._compute(x, s)

    def _compute(self, x, s):
        if self.bias_term:
            b = self.weight(len(self.blobs) - 1)
            return torch.addcmul(_broadcast(b, self.bias_axis, x.dim()), x,
                                 _broadcast(s, self.axis, x.dim()))
        return x * _broadcast(s, self.axis, x.dim())

    def forward(self, bottoms):
        x = bottoms[0]
        if self.folded:
            return [x]
        s = bottoms[1] if self.two_bottoms else self.weight(0)
        return [self._compute(x, s)]


@register
class Bias(_Broadcast):
    type = "Bias"

    def setup(self, bottom_shapes):
        p = self.param.bias_param
        self.axis_param = p.axis
        self.two_bottoms = len(bottom_shapes) == 2
        if not self.two_bottoms:
            shape = bottom_shapes[0]
            axis = self.axis_of(p.axis, shape)
            self.make_blobs([(self._operand_shape(shape, axis, p.num_axes), p.filler)])

    def reshape(self, bottom_shapes):
        bias_shape = bottom_shapes[1] if self.two_bottoms else tuple(self.blobs[0].shape)
        self.axis = self._check(bottom_shapes[0], bias_shape, "bias")
        return [bottom_shapes[0]]

    def forward(self, bottoms):
        x = bottoms[0]
        b = bottoms[1] if self.two_bottoms else self.weight(0)
        return [x + _broadcast(b, self.axis, x.dim())]


@register
class Embed(Layer):
    type = "Embed"
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.embed_param
        self.num_output, self.input_dim = p.num_output, p.input_dim
        if self.num_output <= 0:
            raise self.error("num_output must be > 0 (set embed_param { num_output: N })")
        if self.input_dim <= 0:
            raise self.error("input_dim must be > 0 (set embed_param { input_dim: K }, the "
                             "number of distinct indices)")
        # Transposed from InnerProduct's layout: one row per index.
        self.make_weight_and_bias((self.input_dim, self.num_output), p)

    def reshape(self, bottom_shapes):
        return [tuple(bottom_shapes[0]) + (self.num_output,)]

    def forward(self, bottoms):
        x = bottoms[0]
        index = x.detach().long()                  # truncates toward 0 like static_cast<int>
        bad = (index < 0) | (index >= self.input_dim)
        if bool(bad.any()):
            raise self.error(f"index {float(x.detach()[bad][0]):g} is out of range for "
                             f"input_dim {self.input_dim} (0..{self.input_dim - 1})")
        top = F.embedding(index, self.weight(0))
        if self.bias_term:
            top = top + self.weight(1)
        return [refuse_gradient(self, top, [x], "Caffe cannot backpropagate to the Embed "
                                "input ('Can't backpropagate to EmbedLayer input.')")]


@register
class Parameter(Layer):
    type = "Parameter"
    bottoms = (0, 0)

    def setup(self, bottom_shapes):
        self.shape = tuple(int(d) for d in self.param.parameter_param.shape.dim)
        if any(d < 0 for d in self.shape):
            raise self.error(f"parameter_param shape must not be negative: {self.shape}")
        # Caffe reshapes the blob without a filler: fresh blob memory is zeros.
        self.make_blobs([(self.shape, fillers.constant_filler(0))])

    def reshape(self, bottom_shapes):
        return [self.shape]

    def forward(self, bottoms):
        return [self.weight(0)]   # the top shares the blob's data and diff
