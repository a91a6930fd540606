"""Blob shapes as Caffe reasons about them: counts, axes, and the output-size formulas.

One home for the arithmetic that the net generator (architectures.py) and the engine's
layers must agree on: a shape the generator promises is the shape the layer computes.
"""
import math


def count(shape, start=0, end=None):
    """Blob::count: the product of the dims in [start, end)."""
    n = 1
    for d in tuple(shape)[start:end]:
        n *= int(d)
    return n


def shape_string(shape):
    """Blob::shape_string(): '64 32 50 50 (5120000)'; a 0-axis blob is '(1)'."""
    return "".join(f"{d} " for d in shape) + f"({count(shape)})"


def canonical_axis(axis, num_axes):
    """Blob::CanonicalAxisIndex: negative axes count from the end; None if out of range."""
    if not -num_axes <= axis < max(num_axes, 1):
        return None
    return axis + num_axes if axis < 0 else axis


def conv_output_size(size, kernel, stride=1, pad=0, dilation=1):
    """ConvolutionLayer::compute_output_shape for one axis (C integer division, which
    truncates toward zero: a window that starts inside the padded input but overhangs
    its end still gives one output when size + 2*pad - extent is in (-stride, 0))."""
    span = size + 2 * pad - (dilation * (kernel - 1) + 1)
    return (abs(span) // stride) * (1 if span >= 0 else -1) + 1


def deconv_output_size(size, kernel, stride=1, pad=0, dilation=1):
    """DeconvolutionLayer::compute_output_shape for one axis."""
    return stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad


def pool_output_size(size, kernel, stride, pad=0, ceil_mode=True):
    """PoolingLayer::Reshape's output size for one axis, with Caffe's clip rule (may be
    <= 0 for a net that does not fit its input)."""
    span = float(size + 2 * pad - kernel) / stride
    out = int(math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the image or the leading pad
    return out
