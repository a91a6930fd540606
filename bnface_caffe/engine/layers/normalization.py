"""BatchNorm (batch_norm_layer.cpp), LRN (lrn_layer.cpp) and MVN (mvn_layer.cpp).

BatchNorm keeps Caffe's three blobs: [0] running sum of means, [1] running sum of
(m/(m-1))-corrected variances, [2] the moving-average normaliser ("scale
factor"). TRAIN (use_global_stats false, the TRAIN default) normalises with the
batch statistics and updates blob2 = l*blob2 + 1, blob0 = l*blob0 + mean,
blob1 = l*blob1 + m/(m-1)*var on every forward. Inference uses s = 1/blob2 (0 when
blob2 is 0): (x - s*blob0) / sqrt(s*blob1 + eps). The blobs are statistics, never
learned: their ParamSpecs get lr_mult 0, as Caffe master forces.

MVN subtracts the mean of each item's channel (or of the whole item with
across_channels) and, with normalize_variance, divides by sqrt(var) + eps (eps
outside the root). Its backward is Caffe's: (dy - mean(dy) - y * mean(y * dy)) /
(sqrt(var) + eps), which treats eps as part of the spread; in place, Caffe's
steps share one diff buffer and give something else, reproduced too (as Caffe
built with OpenBLAS computes it). The top is 4-D like Caffe's (num, channels,
height, width), whatever the bottom's axis count up to 4.

LRN in place is refused: Caffe's reads its overwritten input there.
"""
import torch
import torch.nn.functional as F

from ...proto import caffe_pb2
from .. import fillers
from ...shapes import shape_string
from .base import Layer, register
from .caffe_backward import runs_in_place


@register
class BatchNorm(Layer):
    type = "BatchNorm"
    learnable = False

    scale_layer = None   # a following in-place per-channel Scale folded into this layer

    def setup(self, bottom_shapes):
        p = self.param.batch_norm_param
        self.fraction = p.moving_average_fraction
        self.eps = p.eps
        self.use_global_stats = (p.use_global_stats if p.HasField("use_global_stats")
                                 else self.phase == caffe_pb2.TEST)
        shape = bottom_shapes[0]
        self.channels = 1 if len(shape) == 1 else shape[1]
        zero = fillers.constant_filler(0)
        self.make_blobs([((self.channels,), zero), ((self.channels,), zero), ((1,), zero)])
        for i in range(3):
            if len(self.param.param) == i:
                self.param.param.add(lr_mult=0)
            elif self.param.param[i].lr_mult != 0:
                raise self.error("cannot configure batch normalization statistics as layer "
                                 f"parameters: param {i} has lr_mult {self.param.param[i].lr_mult}; "
                                 "use lr_mult: 0 (or no param { } at all)")

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) > 1 and shape[1] != self.channels:
            raise self.error(f"input {shape_string(shape)} has {shape[1]} channels, the statistics "
                             f"{self.channels}; the input changed size")
        if len(shape) == 0:
            raise self.error("input must have at least one axis")
        return [shape]

    def forward(self, bottoms):
        x = bottoms[0]
        if self.fast:
            x = x.float()  # statistics in fp32 even under autocast
        shape = x.shape
        if x.dim() == 1:
            x = x.reshape(-1, 1)
        mean_sum, var_sum, factor = self.blobs
        gamma, beta = None, None
        if self.scale_layer is not None:  # y * gamma + beta in the same kernel
            gamma, beta = self.scale_layer.affine()
        if self.use_global_stats:
            with torch.no_grad():
                scale = torch.where(factor == 0, torch.zeros_like(factor), 1 / factor)
                mean, var = mean_sum * scale, var_sum * scale
            y = F.batch_norm(x, mean, var, gamma, beta, False, 0.0, self.eps)
            return [y.reshape(shape)]
        m = x.numel() // self.channels
        if m > 1:
            # momentum 1 makes batch_norm write the batch mean and the unbiased
            # (m/(m-1)-corrected) batch variance into these fresh buffers.
            mean = torch.zeros(self.channels, dtype=x.dtype, device=x.device)
            var = torch.zeros(self.channels, dtype=x.dtype, device=x.device)
            y = F.batch_norm(x, mean, var, gamma, beta, True, 1.0, self.eps)
        else:  # one value per channel: Caffe's correction factor is 1, the variance 0
            dims = [d for d in range(x.dim()) if d != 1]
            mu = x.mean(dims, keepdim=True)
            sigma2 = ((x - mu) ** 2).mean(dims, keepdim=True)
            y = (x - mu) / torch.sqrt(sigma2 + self.eps)
            if gamma is not None:
                y = self.scale_layer.apply(y)
            mean, var = mu.detach().reshape(-1), sigma2.detach().reshape(-1)
        with torch.no_grad():
            factor.mul_(self.fraction).add_(1)
            mean_sum.mul_(self.fraction).add_(mean)
            var_sum.mul_(self.fraction).add_(var)
        return [y.reshape(shape)]


@register
class LRN(Layer):
    type = "LRN"

    def setup(self, bottom_shapes):
        p = self.param.lrn_param
        self.size, self.alpha, self.beta, self.k = p.local_size, p.alpha, p.beta, p.k
        if self.size % 2 == 0:
            raise self.error(f"local_size must be odd, got {self.size}")
        self.within = p.norm_region == caffe_pb2.LRNParameter.WITHIN_CHANNEL
        if runs_in_place(self):
            raise self.error("cannot run in place: Caffe's LRN reads its input after "
                             "overwriting it (ACROSS_CHANNELS gives scale^(-2 beta), "
                             "WITHIN_CHANNEL a different gradient); give the top its own name")

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise self.error(f"input must have 4 axes (num, channels, height, width), got "
                             f"{shape_string(shape)}")
        return [shape]

    def forward(self, bottoms):
        x = bottoms[0]
        if not self.within:
            # scale = k + alpha/n * sum of squares over n neighbouring channels
            return [F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)]
        # WITHIN_CHANNEL: AVE-pool the squares over size x size (padding counted),
        # scale = 1 + alpha * that; Caffe's shift here is 1, not k.
        pad = (self.size - 1) // 2
        mean_sq = F.avg_pool2d(x * x, self.size, 1, pad, count_include_pad=True)
        return [x * torch.pow(1 + self.alpha * mean_sq, -self.beta)]


class _MVNScaled(torch.autograd.Function):
    """(x - mean) / (sqrt(var) + eps) over each row, with Caffe's backward formula."""

    @staticmethod
    def forward(ctx, rows, eps, in_place):
        centred = rows - rows.mean(1, keepdim=True)
        spread = torch.sqrt((centred * centred).mean(1, keepdim=True)) + eps
        top = centred / spread
        ctx.save_for_backward(top, spread)
        ctx.in_place = in_place
        return top

    @staticmethod
    def backward(ctx, top_diff):
        top, spread = ctx.saved_tensors
        dim = top.shape[1]
        if ctx.in_place:
            # Caffe's steps with the top diff and the bottom diff in one buffer: the
            # first product overwrites the top diff, and the last step, axpby(1, diff,
            # -1/dim, diff), gives -2/dim times the buffer with OpenBLAS (it scales y
            # before adding x, and x is y): measured on the reference build.
            ydy = (top * top_diff).sum(1, keepdim=True)
            buffer = top * ydy
            buffer = buffer + buffer.sum(1, keepdim=True)
            return buffer * (-2 / dim) / spread, None, None
        both = top * (top * top_diff).sum(1, keepdim=True) + top_diff.sum(1, keepdim=True)
        return (top_diff - both / dim) / spread, None, None


@register
class MVN(Layer):
    type = "MVN"

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) > 4:
            raise self.error(f"input must have at most 4 axes (Caffe reads it as num, "
                             f"channels, height, width), got {shape_string(shape)}")
        self.top_shape = tuple(shape) + (1,) * (4 - len(shape))
        return [self.top_shape]

    def forward(self, bottoms):
        p = self.param.mvn_param
        x = bottoms[0]
        n, c = self.top_shape[:2]
        rows = x.reshape(n if p.across_channels else n * c, -1)
        if p.normalize_variance:
            top = _MVNScaled.apply(rows, float(p.eps), runs_in_place(self))
        else:
            top = rows - rows.mean(1, keepdim=True)
        return [top.reshape(self.top_shape)]
