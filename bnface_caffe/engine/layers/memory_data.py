"""MemoryData (memory_data_layer.cpp) and DummyData (dummy_data_layer.cpp).

MemoryData serves arrays handed over from Python (pycaffe's Net.set_input_arrays,
here Net.set_input_arrays or the layer's own set_input_arrays): data n x C x H x W
and labels n (or n x 1 x 1 x 1), both float32 and C-contiguous, n a multiple of
batch_size. Like Caffe it keeps the arrays themselves (no copy; no transformation)
and hands out consecutive batch_size slices, wrapping at n; after a forward the
label top is batch x 1 x 1 x 1, as Caffe reshapes it.

DummyData: tops shaped by `shape` (once or once per top) or the legacy num/channels/
height/width, filled by data_filler (none: constant 0; one for all; or one per top).
Constant-filled tops are filled once at set-up, the others at every forward.
"""
import numpy as np
import torch

from ...errors import UserError
from .. import fillers
from .base import Layer, register


@register
class MemoryData(Layer):
    type = "MemoryData"
    bottoms = (0, 0)
    tops = (2, 2)

    def setup(self, bottom_shapes):
        p = self.param.memory_data_param
        self.batch_size, self.channels = int(p.batch_size), int(p.channels)
        self.height, self.width = int(p.height), int(p.width)
        if self.batch_size * self.channels * self.height * self.width <= 0:
            raise self.error("batch_size, channels, height, and width must be specified and "
                             "positive in memory_data_param")
        self.data = self.labels = None
        self.pos = 0

    def reshape(self, bottom_shapes):
        return [(self.batch_size, self.channels, self.height, self.width), (self.batch_size,)]

    def set_input_arrays(self, data, labels):
        """pycaffe's set_input_arrays + MemoryDataLayer::Reset, with their checks."""
        labels = np.asarray(labels)
        if labels.ndim == 1:
            labels = np.ascontiguousarray(labels[:, None, None, None])
        for what, array, chw in (("data array", data, (self.channels, self.height, self.width)),
                                 ("labels array", labels, (1, 1, 1))):
            if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
                raise self.error(f"{what} must be a C contiguous numpy array")
            if array.ndim != 4:
                raise self.error(f"{what} must be 4-d, got shape {array.shape}")
            if array.dtype != np.float32:
                raise self.error(f"{what} must be float32, got {array.dtype}")
            for axis, name in zip(range(1, 4), ("number of channels", "height", "width")):
                if array.shape[axis] != chw[axis - 1]:
                    raise self.error(f"{what} has wrong {name}: shape {array.shape}, the layer "
                                     f"takes N x {' x '.join(map(str, chw))}")
        if data.shape[0] != labels.shape[0]:
            raise self.error(f"data and labels must have the same first dimension "
                             f"({data.shape[0]} vs {labels.shape[0]})")
        if data.shape[0] % self.batch_size != 0:
            raise self.error(f"first dimensions of input arrays ({data.shape[0]}) must be a "
                             f"multiple of batch size ({self.batch_size})")
        if self.param.HasField("transform_param"):
            self.log.warning("memory_data_layer.cpp:90",
                             "MemoryData does not transform array data on Reset()")
        self.data = torch.from_numpy(data)          # shares the caller's memory, as Caffe
        self.labels = torch.from_numpy(labels).reshape(-1)
        self.n, self.pos = data.shape[0], 0

    def forward(self, bottoms):
        if self.data is None:
            raise self.error("MemoryData needs its arrays first: call set_input_arrays(data, "
                             "labels) (pycaffe's net.set_input_arrays)")
        b, start = self.batch_size, self.pos
        data = self.data[start:start + b].to(self.device)
        labels = self.labels[start:start + b].reshape(b, 1, 1, 1).to(self.device)
        self.pos = (self.pos + b) % self.n
        return [data, labels]


@register
class DummyData(Layer):
    type = "DummyData"
    bottoms = (0, 0)
    tops = (1, None)

    def setup(self, bottom_shapes):
        p = self.param.dummy_data_param
        n = len(self.param.top)
        if len(p.data_filler) not in (0, 1, n):
            raise self.error(f"number of data fillers must be 0, 1 or equal to the number of "
                             f"tops: {n}; you specified {len(p.data_filler)} data fillers")
        legacy = any(len(f) for f in (p.num, p.channels, p.height, p.width))
        if legacy:
            if len(p.shape):
                raise self.error("both shape and legacy fields (num, channels, height, width) "
                                 "were specified; give one of them")
            dims = []
            for field in ("num", "channels", "height", "width"):
                values = list(getattr(p, field))
                if len(values) not in (1, n):
                    raise self.error(f"must specify '{field}' once, or once per top blob ({n}); "
                                     f"specified {len(values)}")
                dims.append(values)
            self.shapes = [tuple(int(v[0] if len(v) == 1 else v[i]) for v in dims)
                           for i in range(n)]
        else:
            if len(p.shape) not in (1, n):
                raise self.error(f"must specify 'shape' once, or once per top blob ({n}); "
                                 f"specified {len(p.shape)}")
            self.shapes = [tuple(int(d) for d in p.shape[0 if len(p.shape) == 1 else i].dim)
                           for i in range(n)]
        if any(d < 0 for s in self.shapes for d in s):
            raise self.error(f"shapes must not be negative: {self.shapes}")
        if len(p.data_filler) <= 1:
            specs = list(p.data_filler) or [fillers.constant_filler(0)]
        else:
            specs = list(p.data_filler)
        self.fillers = specs
        self.constant = {}       # top index -> its tensor, filled once at set-up
        for i in range(n):
            spec = self._filler(i)
            if spec.type == "constant":
                self.constant[i] = self._fill(spec, i)

    def _filler(self, i):
        return self.fillers[i if len(self.fillers) > 1 else 0]

    def _fill(self, spec, i):
        try:
            return fillers.fill(spec, self.shapes[i], where=f"layer '{self.name}' (DummyData)")
        except UserError:
            if 0 in self.shapes[i]:
                return torch.zeros(self.shapes[i])
            raise

    def reshape(self, bottom_shapes):
        return list(self.shapes)

    def forward(self, bottoms):
        tops = []
        for i in range(len(self.shapes)):
            t = self.constant.get(i)
            if t is None:
                t = self._fill(self._filler(i), i)
            tops.append(t.to(self.device))
        return tops
