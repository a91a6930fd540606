"""Loss layers besides SoftmaxWithLoss: ContrastiveLoss, EuclideanLoss, HingeLoss,
InfogainLoss, MultinomialLogisticLoss, SigmoidCrossEntropyLoss (their *_layer.cpp).

Each outputs a 0-axis loss (loss_weight 1 by default, Caffe's LossLayer). Where
Caffe's Backward_cpu is not the derivative of its Forward_cpu, or where autograd
through a clamp would lose the gradient, a torch.autograd.Function writes out
Caffe's backward:
- ContrastiveLoss (non-legacy): the dissimilar-pair gradient divides by
  dist + 1e-4, not dist; the label never gets a gradient.
- InfogainLoss, MultinomialLogisticLoss: log(max(p, 1e-20)) in forward, but the
  gradient keeps flowing where p < 1e-20 (divided by the clamped p, or
  p * rowsum(H) - H for Infogain).
- SigmoidCrossEntropyLoss: (sigmoid(x) - target) / normaliser, ignored targets 0.
EuclideanLoss and HingeLoss are plain autograd (their gradients are exact).
Caffe stops with LOG(FATAL) when a label (or Infogain's H) must be differentiated;
`backward_refused` makes that a set-up error here.
"""
import numpy as np
import torch

from ...errors import UserError
from ...formats import prototxt
from ...formats.blobproto import proto_to_array
from ...proto import caffe_pb2
from ...shapes import count, shape_string
from .base import register
from .softmax import LossLayer

Norm = caffe_pb2.LossParameter
LOG_THRESHOLD = float(np.float32(1e-20))   # Caffe's kLOG_THRESHOLD (a float)


def normaliser(mode, outer, inner, valid_count):
    """get_normalizer: FULL outer*inner, VALID the non-ignored count, BATCH_SIZE outer,
    NONE 1; never below 1 (a batch with every label ignored gives loss 0, not NaN)."""
    value = {Norm.FULL: outer * inner, Norm.VALID: valid_count, Norm.BATCH_SIZE: outer,
             Norm.NONE: 1}[mode]
    return max(1.0, float(value))


class _LabelLoss(LossLayer):
    """A loss whose bottom 1 is a label: no forced gradient, a LOG(FATAL) if needed."""

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def backward_refused(self, bottom_index):
        if bottom_index == 1:
            return f"{self.type} cannot backpropagate to label inputs"
        return None

    def _ignore_label(self):
        lp = self.param.loss_param
        return lp.ignore_label if lp.HasField("ignore_label") else None

    def _input(self, x):
        return x.float() if self.fast else x


# ---------------------------------------------------------------- ContrastiveLoss

class _Contrastive(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, similar, margin, legacy):
        n = a.shape[0]
        diff = a - b
        dist_sq = (diff * diff).sum(1)
        if legacy:
            dissimilar = torch.clamp(margin - dist_sq, min=0)
        else:
            dissimilar = torch.clamp(margin - torch.sqrt(dist_sq), min=0) ** 2
        loss = torch.where(similar, dist_sq, dissimilar).sum() / n / 2
        ctx.save_for_backward(diff, dist_sq, similar)
        ctx.margin, ctx.legacy = margin, legacy
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        diff, dist_sq, similar = ctx.saved_tensors
        alpha = grad_loss / diff.shape[0]
        if ctx.legacy:
            mdist = ctx.margin - dist_sq
            beta = -torch.ones_like(dist_sq)
        else:
            dist = torch.sqrt(dist_sq)
            mdist = ctx.margin - dist
            beta = -mdist / (dist + 1e-4)
        coeff = torch.where(similar, torch.ones_like(beta),
                            torch.where(mdist > 0, beta, torch.zeros_like(beta)))
        grad_a = diff * (alpha * coeff).unsqueeze(1)
        return grad_a, -grad_a, None, None, None


@register
class ContrastiveLoss(LossLayer):
    """loss = 1/2N sum: d^2 for similar pairs (label != 0 as int), for dissimilar
    max(margin - d, 0)^2, or max(margin - d^2, 0) with legacy_version."""
    type = "ContrastiveLoss"
    bottoms = (3, 3)

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def setup(self, bottom_shapes):
        a, b, label = bottom_shapes
        if self.legacy_dim(a, 1) != self.legacy_dim(b, 1):
            raise self.error(f"the two feature inputs must have the same channels: "
                             f"{shape_string(a)} vs {shape_string(b)}")
        for i, shape in enumerate(bottom_shapes):
            if self.legacy_dim(shape, 2) != 1 or self.legacy_dim(shape, 3) != 1:
                raise self.error(f"bottom {i} {shape_string(shape)} must have height and width "
                                 "1 (N x C x 1 x 1 features, N labels)")
        if self.legacy_dim(label, 1) != 1:
            raise self.error(f"the label input {shape_string(label)} must have one value per "
                             "pair (channels 1)")
        p = self.param.contrastive_loss_param
        self.margin, self.legacy = float(np.float32(p.margin)), p.legacy_version

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        a, _, label = bottom_shapes
        if self.legacy_dim(label, 0) != a[0]:
            raise self.error(f"{self.legacy_dim(label, 0)} labels for {a[0]} pairs; give one "
                             "label per pair")
        self.num, self.channels = a[0], self.legacy_dim(a, 1)
        return [()]

    def forward(self, bottoms):
        a, b, label = bottoms
        a = a.float() if self.fast else a
        b = b.to(a.dtype)
        similar = label.detach().reshape(-1).trunc() != 0   # static_cast<int>(label)
        shape = (self.num, self.channels)
        return [_Contrastive.apply(a.reshape(shape), b.reshape(shape), similar,
                                   self.margin, self.legacy)]


# ---------------------------------------------------------------- EuclideanLoss

@register
class EuclideanLoss(LossLayer):
    """loss = sum((a - b)^2) / N / 2; gradients to both inputs (force_backward too)."""
    type = "EuclideanLoss"

    def allow_force_backward(self, bottom_index):
        return True

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        a, b = bottom_shapes
        if count(a, 1) != count(b, 1):
            raise self.error(f"inputs must have the same dimension: {shape_string(a)} vs "
                             f"{shape_string(b)}")
        self.num = self.legacy_dim(a, 0)
        return [()]

    def forward(self, bottoms):
        a, b = bottoms
        a = a.float() if self.fast else a
        diff = a - b.reshape(a.shape).to(a.dtype)
        return [(diff * diff).sum() / self.num / 2]


# ---------------------------------------------------------------- HingeLoss

@register
class HingeLoss(_LabelLoss):
    """t = x with the true class's score negated; loss = sum(max(0, 1 + t)) / N (L1)
    or sum(max(0, 1 + t)^2) / N (L2). relu's zero slope at 0 is Caffe's sign(0)."""
    type = "HingeLoss"

    def setup(self, bottom_shapes):
        self.norm = self.param.hinge_loss_param.norm

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        shape, labels = bottom_shapes
        self.num = self.legacy_dim(shape, 0)
        self.dim = count(shape) // max(self.num, 1)
        if count(labels) < self.num:
            raise self.error(f"{count(labels)} labels for {self.num} samples")
        return [()]

    def forward(self, bottoms):
        x, label = bottoms
        x = self._input(x).reshape(self.num, self.dim)
        labels = _class_labels(self, label, self.num, self.dim)
        sign = torch.ones_like(x).scatter_(1, labels.unsqueeze(1), -1.0)
        margin = torch.relu(1 + x * sign)
        if self.norm == caffe_pb2.HingeLossParameter.L2:
            return [(margin * margin).sum() / self.num]
        return [margin.sum() / self.num]


def _class_labels(layer, label, num, classes):
    """The first `num` labels as class indices (truncated like static_cast<int>),
    each checked against the number of classes."""
    labels = label.detach().reshape(-1)[:num].trunc().long()
    bad = (labels < 0) | (labels >= classes)
    if bool(bad.any()):
        raise layer.error(f"label {int(labels[bad][0])} is out of range for {classes} classes "
                          f"(0..{classes - 1})")
    return labels


# ---------------------------------------------------------------- InfogainLoss

class _Infogain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, labels, valid, H, normaliser):
        # scores: (outer, C, inner); labels, valid: (outer, inner); H: (C, C)
        prob = torch.softmax(scores, 1)
        rows = H[labels].permute(0, 2, 1)                  # H[label, l] as (outer, C, inner)
        log_p = torch.log(prob.clamp(min=LOG_THRESHOLD))
        loss = -(rows * log_p * valid.unsqueeze(1)).sum() / normaliser
        ctx.save_for_backward(prob, rows, valid, H.sum(1)[labels], normaliser)
        ctx.mark_non_differentiable(prob)
        return loss, prob

    @staticmethod
    def backward(ctx, grad_loss, grad_prob):
        prob, rows, valid, row_sums, normaliser = ctx.saved_tensors
        grad = (prob * row_sums.unsqueeze(1) - rows) * valid.unsqueeze(1)
        return grad * (grad_loss / normaliser), None, None, None, None


@register
class InfogainLoss(_LabelLoss):
    """loss = -sum_valid sum_l H[label, l] log(max(softmax(x)_l, 1e-20)) / normaliser,
    H from infogain_loss_param.source (a BlobProto) or a third bottom; top 1 = the
    softmax. Default normalization VALID; `normalize` is refused as in Caffe."""
    type = "InfogainLoss"
    bottoms = (2, 3)
    tops = (1, 2)

    def backward_refused(self, bottom_index):
        if bottom_index == 2:
            return "InfogainLoss cannot backpropagate to infogain inputs"
        return super().backward_refused(bottom_index)

    def setup(self, bottom_shapes):
        self.log.info("layer_factory.hpp:77", f"Creating layer {self.name}")  # inner Softmax
        lp = self.param.loss_param
        if lp.HasField("normalize"):
            raise self.error('loss_param { normalize } is deprecated and refused by '
                             'InfogainLoss; use normalization: VALID / BATCH_SIZE / FULL / NONE')
        self.normalization = lp.normalization
        self.ignore_label = self._ignore_label()
        self.infogain = None
        if len(bottom_shapes) < 3:
            source = self.param.infogain_loss_param.source
            if not self.param.infogain_loss_param.HasField("source"):
                raise self.error("the infogain matrix is missing: give infogain_loss_param "
                                 "{ source: \"H.binaryproto\" } or a third bottom")
            blob = prototxt.read_binary(source, caffe_pb2.BlobProto)
            try:
                self.infogain = torch.from_numpy(proto_to_array(blob).astype(np.float32))
            except ValueError as err:
                raise UserError(f"{source}: not a usable infogain BlobProto ({err})") from None

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        shape, labels = bottom_shapes[:2]
        self.axis = self.axis_of(self.param.infogain_loss_param.axis, shape)
        self.outer, self.inner = count(shape, 0, self.axis), count(shape, self.axis + 1)
        if self.outer * self.inner != count(labels):
            raise self.error(f"number of labels ({count(labels)}, shape {shape_string(labels)}) "
                             f"must match the number of predictions ({self.outer * self.inner} "
                             f"for scores {shape_string(shape)} with axis {self.axis})")
        self.classes = shape[self.axis]
        h = count(bottom_shapes[2]) if len(bottom_shapes) > 2 else self.infogain.numel()
        if h != self.classes * self.classes:
            raise self.error(f"the infogain matrix has {h} values; it must be "
                             f"{self.classes}x{self.classes} for {self.classes} classes")
        tops = [()]
        if len(self.param.top) > 1:
            tops.append(shape)
        return tops

    def forward(self, bottoms):
        x, label = bottoms[:2]
        x = self._input(x)
        H = bottoms[2].detach() if len(bottoms) > 2 else self.infogain
        H = H.to(x.device, x.dtype).reshape(self.classes, self.classes)
        scores = x.reshape(self.outer, self.classes, self.inner)
        labels = label.detach().reshape(self.outer, self.inner).trunc().long()
        valid = torch.ones_like(labels, dtype=torch.bool)
        if self.ignore_label is not None:
            valid = labels != self.ignore_label
        bad = valid & ((labels < 0) | (labels >= self.classes))
        if bool(bad.any()):
            raise self.error(f"label {int(labels[bad][0])} is out of range for {self.classes} "
                             f"classes (0..{self.classes - 1})")
        labels = torch.where(valid, labels, torch.zeros_like(labels))
        norm = normaliser(self.normalization, self.outer, self.inner, int(valid.sum()))
        loss, prob = _Infogain.apply(scores, labels, valid.to(x.dtype), H,
                                     torch.tensor(norm, dtype=x.dtype, device=x.device))
        tops = [loss]
        if len(self.param.top) > 1:
            tops.append(prob.reshape(x.shape))
        return tops


# ---------------------------------------------------------------- MultinomialLogisticLoss

class _Multinomial(torch.autograd.Function):
    @staticmethod
    def forward(ctx, prob, labels):
        p = prob.gather(1, labels.unsqueeze(1)).squeeze(1).clamp(min=LOG_THRESHOLD)
        ctx.save_for_backward(p, labels)
        ctx.shape = prob.shape
        return -torch.log(p).sum() / prob.shape[0]

    @staticmethod
    def backward(ctx, grad_loss):
        p, labels = ctx.saved_tensors
        grad = torch.zeros(ctx.shape, dtype=p.dtype, device=p.device)
        grad.scatter_(1, labels.unsqueeze(1), (-grad_loss / ctx.shape[0] / p).unsqueeze(1))
        return grad, None


@register
class MultinomialLogisticLoss(_LabelLoss):
    """loss = -sum log(max(p[label], 1e-20)) / N on probabilities p (N x dim)."""
    type = "MultinomialLogisticLoss"

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        shape, labels = bottom_shapes
        if any(self.legacy_dim(labels, i) != 1 for i in (1, 2, 3)):
            raise self.error(f"the label input {shape_string(labels)} must be N x 1 x 1 x 1 "
                             "(one label per sample)")
        self.num = self.legacy_dim(shape, 0)
        self.dim = count(shape) // max(self.num, 1)
        return [()]

    def forward(self, bottoms):
        x, label = bottoms
        prob = self._input(x).reshape(self.num, self.dim)
        return [_Multinomial.apply(prob, _class_labels(self, label, self.num, self.dim))]


# ---------------------------------------------------------------- SigmoidCrossEntropyLoss

class _SigmoidCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, target, valid, normaliser):
        positive = (x >= 0).to(x.dtype)
        # Caffe's overflow-free form of -[t log s(x) + (1 - t) log(1 - s(x))]
        per_item = x * (target - positive) - torch.log(1 + torch.exp(x - 2 * x * positive))
        ctx.save_for_backward(x, target, valid, normaliser)
        return -(per_item * valid).sum() / normaliser

    @staticmethod
    def backward(ctx, grad_loss):
        x, target, valid, normaliser = ctx.saved_tensors
        sigmoid = 0.5 * torch.tanh(0.5 * x) + 0.5       # Caffe's SigmoidLayer
        return (sigmoid - target) * valid * (grad_loss / normaliser), None, None, None


@register
class SigmoidCrossEntropyLoss(_LabelLoss):
    """Cross-entropy of sigmoid(x) against targets of the same count; targets equal
    (as int) to ignore_label are skipped; normalization default BATCH_SIZE."""
    type = "SigmoidCrossEntropyLoss"

    def setup(self, bottom_shapes):
        lp = self.param.loss_param
        self.ignore_label = self._ignore_label()
        if lp.HasField("normalization"):
            self.normalization = lp.normalization
        elif lp.HasField("normalize"):
            self.normalization = Norm.VALID if lp.normalize else Norm.BATCH_SIZE
        else:
            self.normalization = Norm.BATCH_SIZE

    def reshape(self, bottom_shapes):
        self._check_batch(bottom_shapes)
        shape, target = bottom_shapes
        self.outer, self.inner = shape[0], count(shape, 1)
        if count(shape) != count(target):
            raise self.error(f"inputs must have the same count: {shape_string(shape)} vs "
                             f"{shape_string(target)}")
        return [()]

    def forward(self, bottoms):
        x, target = bottoms
        x = self._input(x)
        target = target.detach().reshape(x.shape).to(x.dtype)
        valid = torch.ones_like(x)
        if self.ignore_label is not None:
            valid = (target.trunc() != self.ignore_label).to(x.dtype)
        norm = normaliser(self.normalization, self.outer, self.inner, int(valid.sum()))
        return [_SigmoidCrossEntropy.apply(x, target, valid,
                                           torch.tensor(norm, dtype=x.dtype, device=x.device))]
