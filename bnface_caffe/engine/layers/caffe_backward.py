"""Backward passes that autograd alone would not give as Caffe computes them.

Two cases:
- `elementwise(layer, x)`: a neuron layer whose Backward_cpu is a formula of the
  bottom data, the top data and the top diff (`layer.caffe_forward(x)` and
  `layer.caffe_backward(bottom, top, top_diff)` mirror Forward_cpu/Backward_cpu).
  When the layer runs in place, Caffe's Backward reads the bottom blob after the
  forward overwrote it, i.e. the top: the same happens here.
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
        ctx.layer = layer
        ctx.save_for_backward(y if in_place else x, y)
        return y

    @staticmethod
    def backward(ctx, top_diff):
        bottom, top = ctx.saved_tensors
        return ctx.layer.caffe_backward(bottom, top, top_diff), None, None


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
