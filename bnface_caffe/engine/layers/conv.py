"""Convolution and Deconvolution (base_conv_layer.cpp, conv_layer.cpp, deconv_layer.cpp),
Im2col (im2col_layer.cpp).

Cross-correlation with zero padding, grouped, dilated, over the axes after the
channel axis (`axis`, default 1; the axes before it are all batch): 0 to 3
spatial axes (torch has no 4-D convolution; more are refused). The weight blob
is [num_output, C/group, k...] (Deconvolution: [C, num_output/group, k...]), the
bias [num_output]; both default to the constant-0 filler. Each bottom i gives
top i with the same weights, as in Caffe. Output sizes use C++'s truncating
division: when (size + 2*pad - extent) is negative but above -stride Caffe still
makes one output, reading zeros past the input, and so does this engine.
force_nd_im2col only picks Caffe's im2col routine; the numbers are the same.
Im2col lays out each item's windows as [C * prod(k), out...], channel-major.
"""
import torch
import torch.nn.functional as F

from ...shapes import conv_output_size, deconv_output_size, shape_string
from .base import Layer, register

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
DECONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def past_end(size, out, kernel, stride, pad, dilation):
    """Zeros Caffe's im2col reads after the padded input (the truncated-size case)."""
    extent = dilation * (kernel - 1) + 1
    return max(0, (out - 1) * stride + extent - (size + 2 * pad))


def _per_axis(layer, name, values, n, default, h=None, w=None):
    """kernel/stride/pad/dilation: the _h/_w pair, one value for all axes, or one per axis."""
    if h is not None or w is not None:
        if n != 2:
            raise layer.error(f"{name}_h/{name}_w can only be used for 2-D convolution "
                              f"(this input has {n} spatial axes)")
        if list(values):
            raise layer.error(f"give either {name} or {name}_h/{name}_w, not both")
        return [h or 0, w or 0]  # an unset half is the proto default, 0
    values = list(values)
    if not values:
        if default is None and n:
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


def window_params(layer, p, shape, max_spatial=3):
    """(channel axis, kernel, stride, pad, dilation) from a ConvolutionParameter, with
    base_conv_layer.cpp's rules and checks."""
    axis = layer.axis_of(p.axis, shape)
    n = len(shape) - axis - 1
    if n > max_spatial:
        raise layer.error(f"input {shape_string(shape)} has {n} spatial axes after the channel "
                          f"axis {axis}; at most {max_spatial} are supported (torch has 1-D to "
                          "3-D convolutions)")
    kernel = _per_axis(layer, "kernel", p.kernel_size, n, None, *_pair(p, "kernel"))
    stride = _per_axis(layer, "stride", p.stride, n, 1, *_pair(p, "stride"))
    pad = _per_axis(layer, "pad", p.pad, n, 0, *_pair(p, "pad"))
    dilation = _per_axis(layer, "dilation", p.dilation, n, 1)
    if n and min(kernel) <= 0:
        raise layer.error(f"kernel dimensions must be > 0, got {kernel}")
    if n and min(stride) <= 0:
        raise layer.error(f"stride dimensions must be > 0, got {stride}")
    if n and min(dilation) <= 0:
        raise layer.error(f"dilation must be > 0, got {dilation}")
    return axis, kernel, stride, pad, dilation


def pad_past_end(x, extra):
    """Zero-pad the trailing spatial axes of x on their far side by `extra`."""
    if not any(extra):
        return x
    widths = []
    for e in reversed(extra):
        widths += [0, e]
    return F.pad(x, widths)


class _ConvBase(Layer):
    bottoms = (1, None)
    tops = (1, None)
    transposed = False

    def setup(self, bottom_shapes):
        p = self.param.convolution_param
        shape = bottom_shapes[0]
        (self.axis, self.kernel, self.stride, self.pad,
         self.dilation) = window_params(self, p, shape)
        self.channels = shape[self.axis]
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
        for i, shape in enumerate(bottom_shapes):
            if shape != first:
                raise self.error(f"all bottoms must have the same shape; bottom {i} is "
                                 f"{shape_string(shape)}, bottom 0 is {shape_string(first)}")
        n = len(self.kernel)
        if len(first) != self.axis + 1 + n or first[self.axis] != self.channels:
            raise self.error(f"input shape {shape_string(first)} does not match the weights "
                             f"({self.channels} input channels on axis {self.axis}, {n} spatial "
                             "axes); the input changed size")
        size = deconv_output_size if self.transposed else conv_output_size
        params = list(zip(first[self.axis + 1:], self.kernel, self.stride, self.pad,
                          self.dilation))
        spatial = [size(*q) for q in params]
        if spatial and min(spatial) <= 0:
            raise self.error(f"output would be {'x'.join(map(str, spatial))} for input "
                             f"{shape_string(first)} (kernel {self.kernel}, stride "
                             f"{self.stride}, pad {self.pad}, dilation {self.dilation}); the "
                             "input is too small")
        self.extra = [0] * n
        if not self.transposed:
            self.extra = [past_end(s, o, *q[1:]) for s, o, q in zip(first[self.axis + 1:],
                                                                     spatial, params)]
        top = (*first[:self.axis], self.num_output, *spatial)
        return [top] * len(bottom_shapes)

    def forward(self, bottoms):
        w = self.weight(0)
        b = self.weight(1) if self.bias_term else None
        n = len(self.kernel)
        if n == 0:  # no spatial axis: a grouped matrix product, run as a 1x1 1-D convolution
            w = w.unsqueeze(-1)
        ops = DECONV if self.transposed else CONV
        stride, pad, dilation = (self.stride, self.pad, self.dilation) if n else (1, 0, 1)
        tops = []
        for x in bottoms:
            lead = x.shape[:self.axis]
            if self.axis != 1:
                x = x.reshape(-1, *x.shape[self.axis:])
            if n == 0:
                x = x.unsqueeze(-1)
            if self.fast and n == 2:  # channels-last activations: faster convs on CPU and GPU
                x = x.contiguous(memory_format=torch.channels_last)
            x = pad_past_end(x, self.extra)
            if self.transposed:
                y = ops[max(n, 1)](x, w, b, stride, pad, 0, self.group, dilation)
            else:
                y = ops[max(n, 1)](x, w, b, stride, pad, dilation, self.group)
            if n == 0:
                y = y.squeeze(-1)
            if self.axis != 1:
                y = y.reshape(*lead, *y.shape[1:])
            tops.append(y)
        return tops


@register
class Convolution(_ConvBase):
    type = "Convolution"


@register
class Deconvolution(_ConvBase):
    type = "Deconvolution"
    transposed = True


@register
class Im2col(Layer):
    """Each item's sliding windows as columns: [C * prod(k), out...] per item."""
    type = "Im2col"
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.convolution_param
        shape = bottom_shapes[0]
        axis = self.axis_of(p.axis, shape)
        if len(shape) - axis - 1 < 1:
            raise self.error(f"input {shape_string(shape)} has no spatial axis after the channel "
                             f"axis {axis}")
        (self.axis, self.kernel, self.stride, self.pad,
         self.dilation) = window_params(self, p, shape, max_spatial=len(shape))

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        n = len(self.kernel)
        if len(shape) != self.axis + 1 + n:
            raise self.error(f"input {shape_string(shape)} must keep {n} spatial axes after "
                             f"axis {self.axis}")
        params = list(zip(shape[self.axis + 1:], self.kernel, self.stride, self.pad,
                          self.dilation))
        spatial = [conv_output_size(*q) for q in params]
        if min(spatial) <= 0:
            raise self.error(f"output would be {'x'.join(map(str, spatial))} for input "
                             f"{shape_string(shape)} (kernel {self.kernel}, stride "
                             f"{self.stride}, pad {self.pad}, dilation {self.dilation}); the "
                             "input is too small")
        self.extra = [past_end(s, o, *q[1:]) for s, o, q in zip(shape[self.axis + 1:], spatial,
                                                                 params)]
        self.out = spatial
        columns = shape[self.axis]
        for k in self.kernel:
            columns *= k
        return [(*shape[:self.axis], columns, *spatial)]

    def forward(self, bottoms):
        x = bottoms[0]
        lead = x.shape[:self.axis]
        n = len(self.kernel)
        x = x.reshape(-1, *x.shape[self.axis:])
        widths = []
        for pd, e in zip(reversed(self.pad), reversed(self.extra)):
            widths += [pd, pd + e]
        x = F.pad(x, widths)
        for i, (k, s, d) in enumerate(zip(self.kernel, self.stride, self.dilation)):
            x = x.unfold(2 + i, d * (k - 1) + 1, s)    # window axis appended at the end
        x = x[(Ellipsis, *[slice(None, None, d) for d in self.dilation])]
        # (num, C, out..., k...) -> (num, C, k..., out...) -> (num, C*prod(k), out...)
        order = [0, 1, *range(2 + n, 2 + 2 * n), *range(2, 2 + n)]
        x = x.permute(order).reshape(x.shape[0], -1, *self.out)
        return [x.reshape(*lead, *x.shape[1:])]
