"""Caffe's Blob as pycaffe shows it: a shape, and `data` / `diff` as numpy arrays over memory
that persists from one pass to the next.

Data and diff are each a `Storage`: float32 memory where the net computes (a torch tensor on
the CPU or a GPU) kept with Caffe's capacity rule (Blob::Reshape allocates anew, zeroed, only
when the count grows beyond what it holds; otherwise the memory and its values stay). On the
CPU the numpy array *is* that memory. On a GPU it is a host copy kept in step the way Caffe's
SyncedMemory keeps one: asking for the array copies the device values over when the device
holds newer ones and marks the host copy newest (mutable_cpu_data); before the net computes,
a newest host copy goes back to the device. A parameter's storage adopts the engine's own
tensor (the one the solver updates) instead of owning memory.

Python layers (layers/python.py) see their bottoms, tops and own parameters as Blobs; pycaffe
(bnface_caffe.pycaffe) shows every blob of a net as one.
"""
import numpy as np
import torch

from ..errors import UserError, like
from ..shapes import count, shape_string

DEVICE, HOST, SYNCED = "device", "host", "synced"   # which copy is newest (SyncedMemory's head)


class Storage:
    """One float32 array of a blob. `adopt`: a tensor to use as is (fixed shape)."""
    host_copies_on_cpu = False   # tests: keep a separate host copy on the CPU too, as on a GPU

    def __init__(self, shape=(), device="cpu", adopt=None, mirrored=None):
        if adopt is not None:
            self.flat, self.fixed = None, adopt.detach()
            self.device, self.shape = adopt.device, tuple(adopt.shape)
        else:
            self.fixed = None
            self.device = torch.device(device)
            self.shape = _dims(shape)
            self.flat = torch.zeros(count(self.shape), device=self.device)
        # mirrored: a separate host copy (always on a GPU; tests force it on the CPU)
        if mirrored is None:
            mirrored = self.device.type != "cpu" or Storage.host_copies_on_cpu
        self.mirrored = mirrored
        self.host = None
        self.head = DEVICE

    def _view(self):
        if self.fixed is not None:
            return self.fixed
        return self.flat[:count(self.shape)].view(self.shape)

    def adopts(self, tensor):
        return self.fixed is not None and self.fixed.data_ptr() == tensor.data_ptr() \
            and tuple(self.fixed.shape) == tuple(tensor.shape)

    def reshape(self, shape):
        shape = _dims(shape)
        if shape == self.shape:
            return
        if self.fixed is not None:
            raise UserError(f"a parameter blob ({shape_string(self.shape)}) cannot be reshaped "
                            f"(to {shape_string(shape)}) here; its layer owns its shape")
        if count(shape) > self.flat.numel():
            self.flat = torch.zeros(count(shape), device=self.device)
            self.host, self.head = None, DEVICE
        self.shape = shape

    def numpy(self):
        """The host array (mutable_cpu_data): a view of the memory on the CPU."""
        if not self.mirrored:
            return self._view().numpy()
        n = count(self.shape)
        capacity = self.flat.numel() if self.fixed is None else self.fixed.numel()
        if self.host is None or self.host.size != capacity:
            self.host = np.zeros(capacity, np.float32)
            if self.head == HOST:
                self.head = DEVICE
        if self.head == DEVICE:
            self.host[:n] = self._view().reshape(-1).cpu().numpy()
        self.head = HOST
        return self.host[:n].reshape(self.shape)

    def push(self):
        """A host copy written since the device's: copy it back (before the net computes)."""
        if self.mirrored and self.head == HOST:
            n = count(self.shape)
            with torch.no_grad():
                self._view().copy_(torch.from_numpy(self.host[:n]).view(self.shape))
            self.head = SYNCED

    def tensor(self):
        """The device tensor, up to date, for the net to compute with."""
        self.push()
        return self._view()

    def written(self):
        """The device tensor was just written: its values are the newest."""
        if self.mirrored:
            self.head = DEVICE

    def write(self, value):
        """Take `value`'s shape and values (what a layer computed for this blob)."""
        self.reshape(tuple(value.shape))
        with torch.no_grad():
            self._view().copy_(value.detach())
        self.written()

    def fill(self, value):
        self.push()
        with torch.no_grad():
            self._view().fill_(float(value))
        self.written()


def _dims(shape):
    dims = []
    for d in shape:
        try:
            value = int(d)
        except (TypeError, ValueError):
            raise like(TypeError, f"blob dimensions must be integers, got {d!r}") from None
        if value != d or value < 0:
            raise like(ValueError, f"blob dimensions must be non-negative integers, got {d!r}")
        dims.append(value)
    return tuple(dims)


class Blob:
    """pycaffe's Blob: shape, count, num/channels/height/width, reshape(*dims), data, diff."""

    def __init__(self, shape=(), device="cpu"):
        self._data = Storage(shape, device)
        self._diff = Storage(shape, device)

    def __repr__(self):
        return f"<Blob {shape_string(self._data.shape)}>"

    @property
    def shape(self):
        return list(self._data.shape)

    @property
    def count(self):
        return count(self._data.shape)

    def _legacy(self, index):
        """Blob::LegacyShape: axes past the end count as 1; refused beyond 4 axes."""
        shape = self._data.shape
        if len(shape) > 4:
            raise like(ValueError, f"num/channels/height/width cannot be used on a blob of "
                                   f"{len(shape)} axes ({shape_string(shape)}); use .shape")
        return shape[index] if index < len(shape) else 1

    num = property(lambda self: self._legacy(0))
    channels = property(lambda self: self._legacy(1))
    height = property(lambda self: self._legacy(2))
    width = property(lambda self: self._legacy(3))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        self._data.reshape(shape)
        self._diff.reshape(shape)

    @property
    def data(self):
        return self._data.numpy()

    @property
    def diff(self):
        return self._diff.numpy()

    # -- the engine's side ------------------------------------------------------------------
    def data_tensor(self):
        return self._data.tensor()

    def diff_tensor(self):
        return self._diff.tensor()

    def set_data(self, tensor):
        """This blob now holds `tensor` (its shape and values), as a layer's top would."""
        if tuple(tensor.shape) != self._data.shape:
            self.reshape(*tensor.shape)
        self._data.write(tensor)

    def set_diff(self, tensor):
        if tuple(tensor.shape) != self._diff.shape:
            self.reshape(*tensor.shape)
        self._diff.write(tensor)

    def adopt(self, data, diff=None):
        """Compute with the engine's tensors: `data` (a parameter) and `diff` (its gradient,
        which the solver reads), or a diff of our own when there is none."""
        if not self._data.adopts(data):
            self._data = Storage(adopt=data)
        if diff is not None:
            if not self._diff.adopts(diff):
                self._diff = Storage(adopt=diff)
        elif self._diff.fixed is not None or self._diff.shape != tuple(data.shape):
            self._diff = Storage(tuple(data.shape), data.device)

    def push(self):
        self._data.push()
        self._diff.push()


class BlobVec(list):
    """A layer's parameter blobs (pycaffe's BlobVec); Python layers add theirs with add_blob."""

    def add_blob(self, *shape):
        blob = Blob()
        blob.reshape(*shape)
        self.append(blob)
