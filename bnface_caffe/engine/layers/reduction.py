"""Layers that reduce over axes: Reduction (reduction_layer.cpp), ArgMax (argmax_layer.cpp).

Reduction: SUM, ASUM (sum of |x|), SUMSQ, MEAN over all axes from `axis` on, times
coeff; the top keeps the axes before `axis` (axis 0: a scalar). Its gradients
(coeff, coeff * sign(x) with sign(0) = 0, 2 * coeff * x) are autograd's.
ArgMax: the top_k largest values' indices (and values with out_max_val), per
item over all of its values, or along `axis`; equal values rank the larger index
first (Caffe sorts (value, index) pairs descending). No backward in Caffe.
"""
import numpy as np
import torch

from ...proto import caffe_pb2
from ...shapes import count, shape_string
from .base import Layer, register
from .caffe_backward import refuse_gradient

Op = caffe_pb2.ReductionParameter


@register
class Reduction(Layer):
    type = "Reduction"
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.reduction_param
        self.op = p.operation
        if self.op not in (Op.SUM, Op.ASUM, Op.SUMSQ, Op.MEAN):
            raise self.error(f"unknown reduction operation {self.op}")

    def reshape(self, bottom_shapes):
        p = self.param.reduction_param
        shape = bottom_shapes[0]
        self.axis = self.axis_of(p.axis, shape)
        dim = count(shape, self.axis)
        self.coeff = np.float32(p.coeff)
        if self.op == Op.MEAN:
            self.coeff = np.float32(self.coeff / np.float32(dim))
        return [tuple(shape[:self.axis])]

    def forward(self, bottoms):
        x = bottoms[0]
        rows = x.reshape(*x.shape[:self.axis], -1)
        if self.op == Op.ASUM:
            y = rows.abs().sum(-1)
        elif self.op == Op.SUMSQ:
            y = (rows * rows).sum(-1)
        else:
            y = rows.sum(-1)
        return [y if self.coeff == 1 else y * float(self.coeff)]


@register
class ArgMax(Layer):
    type = "ArgMax"
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.argmax_param
        shape = bottom_shapes[0]
        self.out_max_val = p.out_max_val
        self.top_k = p.top_k
        if self.top_k < 1:
            raise self.error(f"top_k must be at least 1, got {self.top_k}")
        self.axis = self.axis_of(p.axis, shape) if p.HasField("axis") else None
        size = shape[self.axis] if self.axis is not None else count(shape, 1)
        if self.top_k > size:
            where = (f"axis {self.axis}" if self.axis is not None
                     else "an item (all axes but the first)")
            raise self.error(f"top_k ({self.top_k}) must be at most the size of {where}, "
                             f"{size} for input {shape_string(shape)}")

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        if self.axis is not None:
            top = list(shape)
            top[self.axis] = self.top_k
            return [tuple(top)]
        top = [1] * max(len(shape), 3)
        top[0] = shape[0]
        top[1] = 2 if self.out_max_val else 1
        top[2] = self.top_k
        return [tuple(top)]

    def forward(self, bottoms):
        x = bottoms[0]
        values = x.detach()
        if self.axis is not None:
            values = values.movedim(self.axis, -1)
        else:
            values = values.reshape(x.shape[0], -1)
        size = values.shape[-1]
        # Stable sort of the reversed row: equal values keep reversed order, so the
        # larger original index comes first, as std::greater on (value, index) pairs.
        best, order = torch.sort(values.flip(-1), dim=-1, descending=True, stable=True)
        best, index = best[..., :self.top_k], (size - 1 - order[..., :self.top_k]).to(x.dtype)
        if self.axis is not None:
            top = (best if self.out_max_val else index).movedim(-1, self.axis)
        else:
            parts = [index, best] if self.out_max_val else [index]
            top = torch.stack(parts, 1).reshape(self.reshape([tuple(x.shape)])[0])
        return [refuse_gradient(self, top.contiguous(), [x], "ArgMax has no backward "
                                "(Caffe: 'Not Implemented Yet'), so no gradient can reach its "
                                "bottom")]
