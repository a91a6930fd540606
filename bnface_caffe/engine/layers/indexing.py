"""Layers that pick, cut or repeat parts of a blob: Crop (crop_layer.cpp), Tile
(tile_layer.cpp), BatchReindex (batch_reindex_layer.cpp), Filter (filter_layer.cpp).

Their gradients are autograd's (copies and sums), with Caffe's refusals: no
gradient reaches BatchReindex's indices or Filter's selector (Caffe CHECK-fails).
Crop's second bottom only gives the size: it receives no gradient, as in Caffe.
Filter's top shapes depend on the selector's values: set-up reports the full
batch, as Caffe's first Reshape does, and each forward keeps the selected items.
"""
import torch

from ...shapes import shape_string
from .base import Layer, register
from .caffe_backward import refuse_gradient


@register
class Crop(Layer):
    type = "Crop"
    bottoms = (2, 2)
    in_place_ok = False

    def setup(self, bottom_shapes):
        p = self.param.crop_param
        shape = bottom_shapes[0]
        self.start = self.axis_of(p.axis, shape)
        self.offsets = [int(o) for o in p.offset]
        if len(self.offsets) > 1 and self.start + len(self.offsets) != len(shape):
            raise self.error(f"{len(self.offsets)} offsets given for axes {self.start}.."
                             f"{len(shape) - 1} of {shape_string(shape)}: give one offset, or "
                             f"one per axis from axis {self.start} on ({len(shape) - self.start})")

    def reshape(self, bottom_shapes):
        shape, like = bottom_shapes
        if len(like) < len(shape):
            raise self.error(f"the reference bottom 1 {shape_string(like)} has fewer axes than "
                             f"the data {shape_string(shape)}")
        top, self.begin = list(shape), [0] * len(shape)
        for i in range(self.start, len(shape)):
            offset = 0
            if len(self.offsets) == 1:
                offset = self.offsets[0]
            elif self.offsets:
                offset = self.offsets[i - self.start]
            if shape[i] - offset < like[i]:
                raise self.error(f"the crop of axis {i} is out of bounds: size {like[i]} at offset "
                                 f"{offset} does not fit the input's {shape[i]} "
                                 f"({shape_string(shape)})")
            top[i], self.begin[i] = like[i], offset
        self.top_shape = tuple(top)
        return [self.top_shape]

    def forward(self, bottoms):
        x, like = bottoms
        index = tuple(slice(b, b + like.shape[i]) if i >= self.start else slice(None)
                      for i, b in enumerate(self.begin))
        return [x[index]]


@register
class Tile(Layer):
    type = "Tile"
    in_place_ok = False

    def reshape(self, bottom_shapes):
        p = self.param.tile_param
        shape = bottom_shapes[0]
        self.axis = self.axis_of(p.axis, shape)
        if not p.HasField("tiles"):
            raise self.error("tile_param { tiles: N } is required (the number of copies)")
        if p.tiles <= 0:
            raise self.error(f"tiles must be > 0, got {p.tiles}")
        self.tiles = p.tiles
        top = list(shape)
        top[self.axis] *= self.tiles
        return [tuple(top)]

    def forward(self, bottoms):
        x = bottoms[0]
        # Caffe copies the whole block of axes axis.. `tiles` times per outer index:
        # what repeat() along that axis does.
        reps = [1] * x.dim()
        reps[self.axis] = self.tiles
        return [x.repeat(*reps)]


@register
class BatchReindex(Layer):
    """top[i] = bottom0[index[i]]; the gradient adds into the picked items."""
    type = "BatchReindex"
    bottoms = (2, 2)
    in_place_ok = False

    def reshape(self, bottom_shapes):
        shape, index = bottom_shapes
        if len(index) != 1:
            raise self.error(f"the index bottom 1 must have one axis, got {shape_string(index)}")
        if not shape:
            raise self.error("the data bottom 0 must have at least one axis")
        return [(index[0],) + tuple(shape[1:])]

    def forward(self, bottoms):
        x, index = bottoms
        values = index.detach()
        bad = (values < 0) | (values >= x.shape[0])
        if bool(bad.any()):
            raise self.error(f"index {float(values[bad][0]):g} is out of range for a batch of "
                             f"{x.shape[0]} (0..{x.shape[0] - 1})")
        top = x.index_select(0, values.long())     # float -> int truncates like static_cast
        return [refuse_gradient(self, top, [index], "Caffe cannot backpropagate to the "
                                "index bottom ('Cannot backprop to index')")]


@register
class Filter(Layer):
    """Keeps the items (axis 0) whose selector value (last bottom) is non-zero."""
    type = "Filter"
    bottoms = (2, None)
    tops = (1, None)
    in_place_ok = False

    def setup(self, bottom_shapes):
        if len(self.param.top) != len(bottom_shapes) - 1:
            raise self.error(f"needs one top per filtered bottom: {len(bottom_shapes) - 1} "
                             f"bottom(s) before the selector, {len(self.param.top)} top(s)")

    def reshape(self, bottom_shapes):
        selector = bottom_shapes[-1]
        if not selector or any(d != 1 for d in selector[1:]):
            raise self.error(f"the selector (last bottom) {shape_string(selector)} must have "
                             "size 1 on every axis but the first")
        for i, shape in enumerate(bottom_shapes[:-1]):
            if not shape or shape[0] != selector[0]:
                raise self.error(f"bottom {i} {shape_string(shape)} must have the selector's "
                                 f"first dimension {selector[0]}")
        return [tuple(shape) for shape in bottom_shapes[:-1]]

    def forward(self, bottoms):
        selector = bottoms[-1]
        keep = torch.nonzero(selector.detach().reshape(-1) != 0).reshape(-1)
        return [refuse_gradient(self, x.index_select(0, keep), [selector], "Caffe cannot "
                                "backpropagate to the selector (last bottom)")
                for x in bottoms[:-1]]
