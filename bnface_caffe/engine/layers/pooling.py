"""Pooling (pooling_layer.cpp): MAX and AVE, Caffe's output size and windows;
SPP (spp_layer.cpp), a pyramid of such poolings.

Output size: ceil (or floor, round_mode) of (H + 2*pad - k) / stride, plus 1; when a
pad is set, a last window starting at or beyond H + pad is dropped. MAX keeps the
first maximum in row-major order; AVE divides by the window size clipped to
[-pad, H + pad), so padding cells count. PyTorch's ceil_mode pooling has the same
windows, divisor and tie rule, but a different output size in two corners (no
clip rule without pad in Caffe; PyTorch refuses pad > k/2): there the layer pads
explicitly and pools without padding, which is exact too.
"""

import torch
import torch.nn.functional as F
from google.protobuf import text_format

from ...proto import caffe_pb2
from ...shapes import count, pool_output_size, shape_string
from .base import Layer, register

P = caffe_pb2.PoolingParameter
FLT_MAX = 3.4028234663852886e38


def torch_pooled_size(size, kernel, stride, pad, ceil_mode=True):
    """The size torch's max_pool2d/avg_pool2d would give (pooling_output_shape)."""
    out = (size + 2 * pad - (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@register
class Pooling(Layer):
    type = "Pooling"
    tops = (1, 2)

    def setup(self, bottom_shapes):
        p = self.param.pooling_param
        has = p.HasField
        self.method = p.pool
        if self.method == P.STOCHASTIC:
            raise self.error("STOCHASTIC pooling is not supported (Caffe runs it on GPUs only); "
                             "use MAX or AVE")
        self.global_pooling = p.global_pooling
        if self.global_pooling:
            if has("kernel_size") or has("kernel_h") or has("kernel_w"):
                raise self.error("with global_pooling: true the kernel size cannot be given")
        else:
            if has("kernel_size") == (has("kernel_h") and has("kernel_w")):
                raise self.error("give kernel_size, or kernel_h and kernel_w (not both, not "
                                 "neither; non-square kernels need both kernel_h and kernel_w)")
            self.kernel = ((p.kernel_size, p.kernel_size) if has("kernel_size")
                           else (p.kernel_h, p.kernel_w))
            if min(self.kernel) <= 0:
                raise self.error(f"kernel dimensions must be > 0, got {self.kernel}")
        if has("pad") and (has("pad_h") or has("pad_w")) or has("pad_h") != has("pad_w"):
            raise self.error("give pad, or pad_h and pad_w")
        if has("stride") and (has("stride_h") or has("stride_w")) or has("stride_h") != has("stride_w"):
            raise self.error("give stride, or stride_h and stride_w")
        self.pad = (p.pad_h, p.pad_w) if has("pad_h") else (p.pad, p.pad)
        self.stride = (p.stride_h, p.stride_w) if has("stride_h") else (p.stride, p.stride)
        if min(self.stride) <= 0:
            raise self.error(f"stride must be > 0, got {self.stride}")
        if self.global_pooling and (self.pad != (0, 0) or self.stride != (1, 1)):
            raise self.error("with global_pooling: true only pad 0 and stride 1 are allowed")
        if self.pad != (0, 0) and not self.global_pooling:
            if self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]:
                raise self.error(f"pad {self.pad} must be smaller than the kernel {self.kernel}")
        self.ceil_mode = p.round_mode == P.CEIL
        if len(self.param.top) > 1 and self.method != P.MAX:
            raise self.error("a second top (the argmax mask) exists only for MAX pooling")

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise self.error(f"input must have 4 axes (num, channels, height, width), got "
                             f"{shape_string(shape)}")
        n, c, h, w = shape
        if self.global_pooling:
            self.kernel = (h, w)
        out = [pool_output_size(size, k, s, pd, self.ceil_mode)
               for size, k, s, pd in zip((h, w), self.kernel, self.stride, self.pad)]
        if min(out) <= 0:
            raise self.error(f"a {self.kernel[0]}x{self.kernel[1]} window (stride "
                             f"{self.stride[0]}, pad {self.pad[0]}) does not fit the {h}x{w} input "
                             f"({shape_string(shape)}): the output would be {out[0]}x{out[1]}")
        self.out = tuple(out)
        native = all(
            torch_pooled_size(size, k, s, pd, self.ceil_mode) == o and pd <= k // 2
            for size, k, s, pd, o in zip((h, w), self.kernel, self.stride, self.pad, out))
        self.native = native
        if not native:
            self._plan_explicit((h, w))
        return [(n, c, *out)] * len(self.param.top or [None])

    def _plan_explicit(self, size):
        """Padding per side for pooling with pad=0 and floor mode, and AVE divisors."""
        self.extra = []      # (before, after) per axis
        divisors = []
        for size_, k, s, pd, o in zip(size, self.kernel, self.stride, self.pad, self.out):
            after = max(0, (o - 1) * s + k - pd - size_)
            self.extra.append((pd, after))
            sizes = []
            for i in range(o):
                start = i * s - pd
                end = min(start + k, size_ + pd)
                sizes.append(end - start)
            divisors.append(sizes)
        h_sizes, w_sizes = divisors
        self.divisor = torch.tensor([[a * b for b in w_sizes] for a in h_sizes], dtype=torch.float32)
        # A window wholly past the input (possible without pad) gives -FLT_MAX in Caffe.
        self.empty_windows = any(i * s - pd >= size_ for size_, s, pd, o in
                                 zip(size, self.stride, self.pad, self.out) for i in range(o))

    def forward(self, bottoms):
        x = bottoms[0]
        if self.method == P.MAX:
            want_mask = len(self.param.top) > 1
            if self.native:
                y, idx = F.max_pool2d(x, self.kernel, self.stride, self.pad,
                                      ceil_mode=self.ceil_mode, return_indices=True)
            else:
                (pt, pb), (pl, pr) = self.extra
                xp = F.pad(x, (pl, pr, pt, pb), value=float("-inf"))
                y, idx = F.max_pool2d(xp, self.kernel, self.stride, 0, return_indices=True)
                y = y[:, :, :self.out[0], :self.out[1]]
                if self.empty_windows:
                    y = y.clamp(min=-FLT_MAX)
                if want_mask:  # index into the padded plane -> index into the input plane
                    idx = idx[:, :, :self.out[0], :self.out[1]]
                    wp = x.shape[3] + pl + pr
                    idx = (idx // wp - pt) * x.shape[3] + (idx % wp - pl)
            if want_mask:
                return [y, idx.to(y.dtype)]
            return [y]
        if self.native:
            return [F.avg_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil_mode,
                                 count_include_pad=True)]
        (pt, pb), (pl, pr) = self.extra
        xp = F.pad(x, (pl, pr, pt, pb))
        sums = F.avg_pool2d(xp, self.kernel, self.stride, 0, divisor_override=1)
        sums = sums[:, :, :self.out[0], :self.out[1]]
        return [sums / self.divisor.to(sums.device, sums.dtype)]


def spp_level(size, bins):
    """(kernel, pad) of one SPP level on one axis: windows of ceil(size / bins)
    cells, stride = kernel, padded so that bins windows span the input."""
    kernel = -(-size // bins)
    return kernel, (kernel * bins - size + 1) // 2


@register
class SPP(Layer):
    """Spatial pyramid pooling: level l pools into about 2^l x 2^l bins; with
    pyramid_height 1 the top is that one pooling, else the levels flattened per
    item and concatenated: [N, sum over levels of C * bins_h * bins_w]."""
    type = "SPP"
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.spp_param
        self.height = p.pyramid_height
        if self.height < 1:
            raise self.error("spp_param { pyramid_height: N } must be at least 1")
        if p.pool == caffe_pb2.SPPParameter.STOCHASTIC:
            raise self.error("STOCHASTIC pooling is not supported (Caffe runs it on GPUs only); "
                             "use MAX or AVE")
        self.method = "MAX" if p.pool == caffe_pb2.SPPParameter.MAX else "AVE"

    def reshape(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise self.error(f"input must have 4 axes (num, channels, height, width), got "
                             f"{shape_string(shape)}")
        n, c, h, w = shape
        if not h or not w:
            raise self.error(f"input {shape_string(shape)} has no height or width")
        self.pools, tops = [], []
        for level in range(self.height):
            bins = 2 ** level
            (kh, ph), (kw, pw) = spp_level(h, bins), spp_level(w, bins)
            if ph >= kh or pw >= kw:
                raise self.error(f"pyramid level {level} ({bins}x{bins} bins) of a {h}x{w} input "
                                 f"needs pad {ph}x{pw} with a {kh}x{kw} window, and Caffe's "
                                 "Pooling requires pad < kernel; use a smaller pyramid_height "
                                 "or a larger input")
            param = text_format.Parse(
                f"pooling_param {{ pool: {self.method} kernel_h: {kh} kernel_w: {kw} "
                f"stride_h: {kh} stride_w: {kw} pad_h: {ph} pad_w: {pw} }}",
                caffe_pb2.LayerParameter(name=self.name, type="Pooling"))
            pool = Pooling(param, self.phase)
            pool.log = self.log
            pool.setup([shape])
            tops.append(pool.reshape([shape])[0])
            self.pools.append(pool)
        if self.height == 1:
            return [tops[0]]
        return [(n, sum(count(t, 1) for t in tops))]

    def forward(self, bottoms):
        x = bottoms[0]
        outs = []
        for pool in self.pools:
            pool.fast = self.fast
            outs.append(pool.forward([x])[0])
        if self.height == 1:
            return outs
        return [torch.cat([y.reshape(y.shape[0], -1) for y in outs], 1)]
