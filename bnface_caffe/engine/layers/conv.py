"""Convolution and Deconvolution (base_conv_layer.cpp, conv_layer.cpp, deconv_layer.cpp).

Cross-correlation with zero padding, grouped, dilated, 1 to 3 spatial axes; the
weight blob is [num_output, C/group, k...] (Deconvolution: [C, num_output/group,
k...]), the bias [num_output]; both default to the constant-0 filler. Each
bottom i gives top i with the same weights, as in Caffe.
"""
import torch
import torch.nn.functional as F

from ...shapes import conv_output_size, deconv_output_size, shape_string
from .base import Layer, register

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
DECONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def channels_last(x):
    """x with channels-last strides. A one-channel input (the data) counts as contiguous in both
    layouts, and oneDNN then picks NCHW for the output: give it explicit NHWC strides."""
    n, c, h, w = x.shape
    if x.stride() == (h * w * c, 1, w * c, c) or x.numel() == 0:
        return x
    return x.clone(memory_format=torch.channels_last)


def _per_axis(layer, name, values, n, default, h=None, w=None):
    """kernel/stride/pad/dilation: the _h/_w pair, one value for all axes, or one per axis."""
    if h is not None or w is not None:
        if n != 2:
            raise layer.error(f"{name}_h/{name}_w can only be used for 2-D convolution")
        if list(values):
            raise layer.error(f"give either {name} or {name}_h/{name}_w, not both")
        return [h or 0, w or 0]  # an unset half is the proto default, 0
    values = list(values)
    if not values:
        if default is None:
            raise layer.error(f"{name} is required (kernel_size or kernel_h/kernel_w)")
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise layer.error(f"{name} must be given once or {n} times (once per spatial axis), "
                          f"got {len(values)}")
    return values


def _pair(p, name):
    """(name_h, name_w) when either is set, else (None, None)."""
    h, w = f"{name}_h", f"{name}_w"
    if p.HasField(h) or p.HasField(w):
        return getattr(p, h), getattr(p, w)
    return None, None


class _ConvBase(Layer):
    bottoms = (1, None)
    tops = (1, None)
    transposed = False

    def setup(self, bottom_shapes):
        p = self.param.convolution_param
        shape = bottom_shapes[0]
        axis = p.axis
        if axis < 0:
            axis += len(shape)
        if axis != 1:
            raise self.error(f"axis {p.axis} is not supported; the channel axis must be 1 "
                             "(N, C, spatial...)")
        n = len(shape) - 2
        if not 1 <= n <= 3:
            raise self.error(f"input has {len(shape)} axes ({shape_string(shape)}); "
                             "convolution needs 3 to 5 (N, C, 1-3 spatial axes)")
        self.kernel = _per_axis(self, "kernel", p.kernel_size, n, None, *_pair(p, "kernel"))
        self.stride = _per_axis(self, "stride", p.stride, n, 1, *_pair(p, "stride"))
        self.pad = _per_axis(self, "pad", p.pad, n, 0, *_pair(p, "pad"))
        self.dilation = _per_axis(self, "dilation", p.dilation, n, 1)
        if min(self.kernel) <= 0:
            raise self.error(f"kernel dimensions must be > 0, got {self.kernel}")
        if min(self.stride) <= 0:
            raise self.error(f"stride dimensions must be > 0, got {self.stride}")
        if min(self.dilation) <= 0:
            raise self.error(f"dilation must be > 0, got {self.dilation}")
        self.channels = shape[1]
        self.num_output = p.num_output
        self.group = p.group
        if self.num_output <= 0:
            raise self.error("num_output must be > 0 (set convolution_param { num_output: N })")
        if self.group <= 0 or self.channels % self.group:
            raise self.error(f"input channels ({self.channels}) must be divisible by group "
                             f"({self.group})")
        if self.num_output % self.group:
            raise self.error(f"num_output ({self.num_output}) must be divisible by group "
                             f"({self.group})")
        if self.transposed:
            weight_shape = (self.channels, self.num_output // self.group, *self.kernel)
        else:
            weight_shape = (self.num_output, self.channels // self.group, *self.kernel)
        self.make_weight_and_bias(weight_shape, p)

    def reshape(self, bottom_shapes):
        first = bottom_shapes[0]
        tops = []
        for i, shape in enumerate(bottom_shapes):
            if shape != first:
                raise self.error(f"all bottoms must have the same shape; bottom {i} is "
                                 f"{shape_string(shape)}, bottom 0 is {shape_string(first)}")
            if len(shape) != len(self.kernel) + 2 or shape[1] != self.channels:
                raise self.error(f"input shape {shape_string(shape)} does not match the weights "
                                 f"({self.channels} input channels); the input changed size")
            size = deconv_output_size if self.transposed else conv_output_size
            spatial = [size(s, k, st, pd, d) for s, k, st, pd, d in
                       zip(shape[2:], self.kernel, self.stride, self.pad, self.dilation)]
            if min(spatial) <= 0:
                raise self.error(f"output would be {'x'.join(map(str, spatial))} for input "
                                 f"{shape_string(shape)} (kernel {self.kernel}, stride "
                                 f"{self.stride}, pad {self.pad}); the input is too small")
            tops.append((shape[0], self.num_output, *spatial))
        return tops

    def forward(self, bottoms):
        w = self.weight(0)
        b = self.weight(1) if self.bias_term else None
        n = len(self.kernel)
        if self.channels_last and n == 2:
            bottoms = [channels_last(x) for x in bottoms]
        if self.transposed:
            return [DECONV[n](x, w, b, self.stride, self.pad, 0, self.group, self.dilation)
                    for x in bottoms]
        return [CONV[n](x, w, b, self.stride, self.pad, self.dilation, self.group)
                for x in bottoms]


@register
class Convolution(_ConvBase):
    type = "Convolution"


@register
class Deconvolution(_ConvBase):
    type = "Deconvolution"
    transposed = True
