"""Backward passes that autograd alone would not give as Caffe computes them.

Two cases:
- `elementwise(layer, x)`: a neuron layer whose Backward_cpu is a formula of the
  bottom data, the top data and the top diff (`layer.caffe_forward(x)` and
  `layer.caffe_backward(bottom, top, top_diff)` mirror Forward_cpu/Backward_cpu).
  In place, bottom and top are one blob, data and diff: Caffe's Backward reads
  the bottom data after the forward overwrote it with the top, so the same
  happens here; and a layer whose Backward writes the bottom diff with vector
  operations before it multiplies by the top diff (`overwrites_top_diff`: Log,
  Power) multiplies its factor by itself instead, the top diff being gone.
- `refuse_gradient(layer, top, inputs, why)`: Caffe stops (NOT_IMPLEMENTED, or a
  CHECK such as "Cannot backprop to index") when a gradient must reach `inputs`;
  here the backward raises a UserError naming the layer at the same moment.
"""
import torch

from ...errors import UserError


def runs_in_place(layer):
    p = layer.param
    return bool(len(p.top) and len(p.bottom) and p.top[0] == p.bottom[0])


class _Elementwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, layer, in_place):
        y = layer.caffe_forward(x)
        ctx.layer, ctx.in_place = layer, in_place
        ctx.save_for_backward(y if in_place else x, y)
        return y

    @staticmethod
    def backward(ctx, top_diff):
        bottom, top = ctx.saved_tensors
        layer = ctx.layer
        if ctx.in_place and getattr(layer, "overwrites_top_diff", False):
            factor = layer.caffe_backward(top, top, torch.ones_like(top_diff))
            return factor * factor, None, None
        return layer.caffe_backward(bottom, top, top_diff), None, None


def elementwise(layer, x):
    """y = layer.caffe_forward(x), with layer.caffe_backward as its gradient."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return layer.caffe_forward(x)
    return _Elementwise.apply(x, layer, runs_in_place(layer))


class _NoGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, message, top, *guarded):
        ctx.message = message
        return top.view_as(top)

    @staticmethod
    def backward(ctx, grad):
        raise UserError(ctx.message)


def refuse_gradient(layer, top, inputs, why):
    """`top`, made so that a backward that must reach any of `inputs` stops with a
    UserError, as the Caffe layer's Backward does. `why` says what Caffe refuses."""
    guarded = [x for x in inputs if x.requires_grad]
    if not (torch.is_grad_enabled() and guarded):
        return top
    message = (f"layer '{layer.name}' ({layer.type}): {why}; Caffe stops here too. Set "
               "propagate_down: false for that bottom, or keep the layer out of the "
               "backward pass (it must not feed a loss)")
    return _NoGradient.apply(message, top, *guarded)
