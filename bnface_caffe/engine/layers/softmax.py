"""Softmax (softmax_layer.cpp), SoftmaxWithLoss (softmax_loss_layer.cpp), Accuracy.

SoftmaxWithLoss: loss = -sum log(max(p[label], FLT_MIN)) / normaliser over the
positions whose label is not ignore_label; normaliser FULL = outer*inner, VALID =
non-ignored count (default), BATCH_SIZE = outer, NONE = 1, clamped to >= 1. Its
backward is Caffe's (p - onehot) * loss_weight / normaliser, written out because
autograd through the FLT_MIN clamp would zero the gradient where p underflows.
Accuracy: a position is right iff fewer than top_k classes score >= the true
class's score besides itself (ties count against it).
"""
import torch

from ...proto import caffe_pb2
from ...shapes import count, shape_string
from .base import Layer, register

FLT_MIN = 1.1754943508222875e-38
Norm = caffe_pb2.LossParameter



def _predictions_per_label(layer, shape, labels, axis_name):
    """(outer, inner) around layer.axis; one label per prediction, as Caffe CHECKs."""
    outer, inner = count(shape, 0, layer.axis), count(shape, layer.axis + 1)
    if outer * inner != count(labels):
        raise layer.error(f"number of labels ({count(labels)}, shape {shape_string(labels)}) "
                          f"must match the number of predictions ({outer * inner} for "
                          f"scores {shape_string(shape)} with {axis_name} {layer.axis})")
    return outer, inner


@register
class Softmax(Layer):
    type = "Softmax"

    def reshape(self, bottom_shapes):
        self.axis = self.axis_of(self.param.softmax_param.axis, bottom_shapes[0])
        return [bottom_shapes[0]]

    def forward(self, bottoms):
        x = bottoms[0]
        return [torch.softmax(x.float() if self.fast else x, self.axis)]


class _SoftmaxLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, labels, valid, normaliser):
        # scores: (outer, C, inner); labels, valid: (outer, inner)
        if scores.shape[2] == 1:   # one prediction per row (a classifier): torch's fast
            prob = torch.softmax(scores[:, :, 0], 1).unsqueeze(2)   # last-axis kernel, 6× faster
        else:
            prob = torch.softmax(scores, 1)
        p = prob.gather(1, labels.unsqueeze(1)).squeeze(1)
        loss = -(torch.log(p.clamp(min=FLT_MIN)) * valid).sum() / normaliser
        ctx.save_for_backward(prob, labels, valid, normaliser)
        ctx.mark_non_differentiable(prob)
        return loss, prob

    @staticmethod
    def backward(ctx, grad_loss, grad_prob):
        prob, labels, valid, normaliser = ctx.saved_tensors
        grad = prob.clone()
        grad.scatter_add_(1, labels.unsqueeze(1), -torch.ones_like(prob[:, :1]))
        grad *= valid.unsqueeze(1)
        grad *= grad_loss / normaliser
        return grad, None, None, None


class LossLayer(Layer):
    loss_layer = True
    bottoms = (2, 2)

    def _check_batch(self, bottom_shapes):
        a, b = bottom_shapes[0], bottom_shapes[1]
        if not a or not b or a[0] != b[0]:
            raise self.error(f"the data ({shape_string(a)}) and label ({shape_string(b)}) "
                             "must have the same first dimension")


@register
class SoftmaxWithLoss(LossLayer):
    type = "SoftmaxWithLoss"
    tops = (1, 2)

    def setup(self, bottom_shapes):
        self.log.info("layer_factory.hpp:77", f"Creating layer {self.name}")  # inner Softmax
        lp = self.param.loss_param
        self.ignore_label = lp.ignore_label if lp.HasField("ignore_label") else None
        if lp.HasField("normalization"):
            self.normalization = lp.normalization
        elif lp.HasField("normalize"):
            self.normalization = Norm.VALID if lp.normalize else Norm.BATCH_SIZE
        else:
            self.normalization = Norm.VALID

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1  # no gradient for labels

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        shape, labels = bottom_shapes
        self.axis = self.axis_of(self.param.softmax_param.axis, shape)
        self.outer, self.inner = _predictions_per_label(self, shape, labels, "softmax axis")
        tops = [()]
        if len(self.param.top) > 1:
            tops.append(shape)
        return tops

    def forward(self, bottoms):
        x, label = bottoms
        if self.fast:
            x = x.float()
        classes = x.shape[self.axis]
        scores = x.reshape(self.outer, classes, self.inner)
        labels = label.detach().reshape(self.outer, self.inner).long()  # truncates like C++
        valid = torch.ones_like(labels, dtype=torch.bool)
        if self.ignore_label is not None:
            valid = labels != self.ignore_label
        bad = valid & ((labels < 0) | (labels >= classes))
        if bool(bad.any()):
            value = int(labels[bad][0])
            raise self.error(f"label {value} is out of range for {classes} classes (0.."
                             f"{classes - 1}); does the data match the net's num_output?")
        labels = torch.where(valid, labels, torch.zeros_like(labels))
        normaliser = self._normaliser(valid)
        loss, prob = _SoftmaxLoss.apply(scores, labels, valid.to(scores.dtype), normaliser)
        tops = [loss]
        if len(self.param.top) > 1:
            tops.append(prob.reshape(x.shape))
        return tops

    def _normaliser(self, valid):
        n = self.normalization
        if n == Norm.FULL:
            value = torch.tensor(float(self.outer * self.inner))
        elif n == Norm.VALID:
            value = valid.sum().float()
        elif n == Norm.BATCH_SIZE:
            value = torch.tensor(float(self.outer))
        else:
            value = torch.tensor(1.0)
        return value.to(valid.device).clamp(min=1.0)


@register
class Accuracy(Layer):
    type = "Accuracy"
    bottoms = (2, 2)
    tops = (1, 2)

    def setup(self, bottom_shapes):
        p = self.param.accuracy_param
        self.top_k = p.top_k
        self.ignore_label = p.ignore_label if p.HasField("ignore_label") else None

    def allow_force_backward(self, bottom_index):
        return False

    def reshape(self, bottom_shapes):
        shape, labels = bottom_shapes
        if self.top_k > count(shape) // max(count(labels), 1):
            raise self.error(f"top_k ({self.top_k}) must be at most the number of classes")
        self.axis = self.axis_of(self.param.accuracy_param.axis, shape)
        self.outer, self.inner = _predictions_per_label(self, shape, labels, "axis")
        tops = [()]
        if len(self.param.top) > 1:
            tops.append((shape[self.axis],))
        return tops

    @torch.no_grad()
    def forward(self, bottoms):
        x, label = bottoms
        classes = x.shape[self.axis]
        scores = x.detach().reshape(self.outer, classes, self.inner)
        labels = label.detach().reshape(self.outer, self.inner).long()
        valid = torch.ones_like(labels, dtype=torch.bool)
        if self.ignore_label is not None:
            valid = labels != self.ignore_label
        safe = torch.where(valid, labels, torch.zeros_like(labels)).clamp(0, classes - 1)
        true_score = scores.gather(1, safe.unsqueeze(1))
        at_least = (scores >= true_score).sum(1)  # includes the true class itself
        correct = (at_least - 1 < self.top_k) & valid
        n = valid.sum()
        acc = torch.where(n > 0, correct.sum().float() / n.clamp(min=1).float(),
                          torch.zeros((), device=x.device))
        # a ratio of counts: never rounded to bf16 when fast mode's scores are bf16
        dtype = torch.promote_types(x.dtype, torch.float32)
        tops = [acc.to(dtype)]
        if len(self.param.top) > 1:
            per_total = torch.zeros(classes, device=x.device).index_add_(
                0, safe[valid], torch.ones_like(safe[valid], dtype=torch.float32))
            per_right = torch.zeros(classes, device=x.device).index_add_(
                0, safe[valid], correct[valid].float())
            tops.append(torch.where(per_total > 0, per_right / per_total.clamp(min=1),
                                    torch.zeros_like(per_total)).to(dtype))
        return tops
