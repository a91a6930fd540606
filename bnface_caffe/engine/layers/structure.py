"""Layers that combine, split or re-view blobs: Eltwise, Concat, Slice, Flatten,
Reshape, Split, Silence.

Split is the layer Net inserts when a blob feeds several layers; its tops are the
bottom itself, so autograd adds their gradients as Caffe's Split backward does.
Eltwise MAX sends the gradient to the bottom that won: bottom 1 on a tie between
bottoms 0 and 1, otherwise the earliest bottom holding the maximum (Caffe's loop).
Eltwise PROD with stable_prod_grad: false uses Caffe's top / bottom_i gradient
(NaN where bottom_i is 0) instead of the product of the other bottoms. Eltwise
in place is refused: Caffe's computes a wrong result there.
"""
import torch

from ...proto import caffe_pb2
from ...shapes import count, shape_string
from .base import Layer, register
from .caffe_backward import runs_in_place

Op = caffe_pb2.EltwiseParameter


class _QuotientProduct(torch.autograd.Function):
    """Product of the bottoms whose gradient for bottom i is top / bottom_i * top_diff."""

    @staticmethod
    def forward(ctx, *bottoms):
        top = bottoms[0]
        for x in bottoms[1:]:
            top = top * x
        ctx.save_for_backward(top, *bottoms)
        return top

    @staticmethod
    def backward(ctx, top_diff):
        top, *bottoms = ctx.saved_tensors
        return tuple(top / x * top_diff if need else None
                     for x, need in zip(bottoms, ctx.needs_input_grad))


@register
class Eltwise(Layer):
    type = "Eltwise"
    bottoms = (2, None)

    def setup(self, bottom_shapes):
        p = self.param.eltwise_param
        if runs_in_place(self):
            raise self.error("cannot run in place: Caffe's Eltwise overwrites bottom 0 before "
                             "reading it (SUM and MAX clear the top first); give the top its "
                             "own name")
        self.op = p.operation
        self.coeff = list(p.coeff)
        if self.coeff and len(self.coeff) != len(bottom_shapes):
            raise self.error(f"give one coeff per bottom ({len(bottom_shapes)}), got "
                             f"{len(self.coeff)}")
        if self.coeff and self.op == Op.PROD:  # MAX ignores them, as in Caffe
            raise self.error("coefficients are only allowed for operation: SUM")
        self.stable_prod_grad = p.stable_prod_grad

    def reshape(self, bottom_shapes):
        for i, shape in enumerate(bottom_shapes[1:], 1):
            if shape != bottom_shapes[0]:
                raise self.error(f"bottom {i} has shape {shape_string(shape)}, bottom 0 "
                                 f"{shape_string(bottom_shapes[0])}; all must be equal")
        return [bottom_shapes[0]]

    def forward(self, bottoms):
        if self.op == Op.PROD:
            if not self.stable_prod_grad and torch.is_grad_enabled():
                return [_QuotientProduct.apply(*bottoms)]
            top = bottoms[0]
            for x in bottoms[1:]:
                top = top * x
            return [top]
        if self.op == Op.SUM:
            coeff = self.coeff or [1.0] * len(bottoms)
            top = None
            for c, x in zip(coeff, bottoms):
                term = x if c == 1 else x * c
                top = term if top is None else top + term
            return [top]
        a, b = bottoms[0], bottoms[1]
        top = torch.where(a > b, a, b)
        for x in bottoms[2:]:
            top = torch.where(x > top, x, top)
        return [top]


@register
class Concat(Layer):
    type = "Concat"
    bottoms = (1, None)
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.concat_param
        if p.HasField("axis") and p.HasField("concat_dim"):
            raise self.error("give either axis or concat_dim, not both")

    def reshape(self, bottom_shapes):
        p = self.param.concat_param
        first = bottom_shapes[0]
        if p.HasField("concat_dim"):
            self.axis = p.concat_dim
            if self.axis >= len(first):
                raise self.error(f"concat_dim {self.axis} is out of range for {shape_string(first)}")
        else:
            self.axis = self.axis_of(p.axis, first)
        total = 0
        for i, shape in enumerate(bottom_shapes):
            same = len(shape) == len(first) and all(
                a == b for j, (a, b) in enumerate(zip(shape, first)) if j != self.axis)
            if not same:
                raise self.error(f"bottom {i} ({shape_string(shape)}) must match bottom 0 "
                                 f"({shape_string(first)}) on every axis except {self.axis}")
            total += shape[self.axis]
        return [first[:self.axis] + (total,) + first[self.axis + 1:]]

    def forward(self, bottoms):
        if len(bottoms) == 1:
            return [bottoms[0]]
        return [torch.cat(bottoms, self.axis)]


@register
class Slice(Layer):
    type = "Slice"
    tops = (1, None)
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.slice_param
        if p.HasField("axis") and p.HasField("slice_dim"):
            raise self.error("give either axis or slice_dim, not both")

    def reshape(self, bottom_shapes):
        p = self.param.slice_param
        shape = bottom_shapes[0]
        self.axis = p.slice_dim if p.HasField("slice_dim") else self.axis_of(p.axis, shape)
        if self.axis >= len(shape):
            raise self.error(f"slice axis {self.axis} is out of range for {shape_string(shape)}")
        n, size = len(self.param.top), shape[self.axis]
        points = list(p.slice_point)
        if points:
            if len(points) != n - 1:
                raise self.error(f"{len(points)} slice_point values for {n} tops; give one fewer "
                                 "than the number of tops")
            bounds = [0] + points + [size]
            if any(b <= a for a, b in zip(bounds, bounds[1:])):
                raise self.error(f"slice points {points} must increase strictly within 1.."
                                 f"{size - 1}")
            self.sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        else:
            if size % n:
                raise self.error(f"axis {self.axis} of size {size} cannot be split evenly into "
                                 f"{n} tops; give slice_point")
            self.sizes = [size // n] * n
        return [shape[:self.axis] + (s,) + shape[self.axis + 1:] for s in self.sizes]

    def forward(self, bottoms):
        return list(torch.split(bottoms[0], self.sizes, self.axis))


@register
class Flatten(Layer):
    type = "Flatten"
    in_place_ok = False

    def reshape(self, bottom_shapes):
        p = self.param.flatten_param
        shape = bottom_shapes[0]
        start = self.axis_of(p.axis, shape)
        end = self.axis_of(p.end_axis, shape)
        if end < start:
            raise self.error(f"end_axis {p.end_axis} (axis {end}) comes before axis {p.axis} "
                             f"(axis {start}) of {shape_string(shape)}")
        self.start, self.end = start, end
        self.top_shape = shape[:start] + (count(shape, start, end + 1),) + shape[end + 1:]
        return [self.top_shape]

    def forward(self, bottoms):
        return [bottoms[0].flatten(self.start, self.end)]


@register
class Reshape(Layer):
    type = "Reshape"
    in_place_ok = False

    def setup(self, bottom_shapes):
        dims = list(self.param.reshape_param.shape.dim)
        if dims.count(-1) > 1:
            raise self.error("the new shape contains more than one -1; at most one dimension "
                             "can be inferred")

    def reshape(self, bottom_shapes):
        p = self.param.reshape_param
        shape = bottom_shapes[0]
        n = len(shape)
        start = p.axis if p.axis >= 0 else n + p.axis + 1
        if not 0 <= start <= n:
            raise self.error(f"axis {p.axis} is out of range for {shape_string(shape)}")
        if p.num_axes < -1:
            raise self.error(f"num_axes must be >= 0, or -1 for all, got {p.num_axes}")
        end = n if p.num_axes == -1 else start + p.num_axes
        if end > n:
            raise self.error(f"axis + num_axes ({end}) is out of range for {shape_string(shape)}")
        dims = [int(d) for d in p.shape.dim]
        top = list(shape[:start]) + dims + list(shape[end:])
        for i, d in enumerate(dims):
            if d == 0:
                if start + i >= n:
                    raise self.error(f"new shape has a 0 at position {i} but the input "
                                     f"{shape_string(shape)} has no axis {start + i} to copy")
                top[start + i] = shape[start + i]
            elif d < -1:
                raise self.error(f"new shape dimension {d} is not allowed (use > 0, 0 or -1)")
        if -1 in dims:
            i = start + dims.index(-1)
            known = count([d for j, d in enumerate(top) if j != i])
            if not known or count(shape) % known:
                raise self.error(f"input count {count(shape)} is not divisible by the product of "
                                 f"the given dimensions ({known})")
            top[i] = count(shape) // known
        if count(top) != count(shape):
            raise self.error(f"new shape {shape_string(top)} has a different count from the input "
                             f"{shape_string(shape)}")
        self.top_shape = tuple(top)
        return [self.top_shape]

    def forward(self, bottoms):
        x = bottoms[0]
        return [x.reshape(self.top_shape)]


@register
class Split(Layer):
    type = "Split"
    tops = (1, None)
    in_place_ok = False

    def reshape(self, bottom_shapes):
        return [bottom_shapes[0]] * len(self.param.top)

    def forward(self, bottoms):
        return [bottoms[0]] * len(self.param.top)


@register
class Silence(Layer):
    type = "Silence"
    bottoms = (1, None)
    tops = (0, 0)

    def reshape(self, bottom_shapes):
        return []

    def forward(self, bottoms):
        return []
