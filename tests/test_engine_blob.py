"""engine/blob.py: Caffe's Blob memory rules and SyncedMemory's host/device protocol."""
import numpy as np
import pytest
import torch

from bnface_caffe.engine.blob import Blob, BlobVec, Storage
from bnface_caffe.errors import UserError


def test_reshape_keeps_memory_and_values_until_the_count_grows():
    blob = Blob((2, 3))
    blob.data[...] = np.arange(6).reshape(2, 3)
    before = blob._data.flat
    blob.reshape(3, 2)                       # same count: same memory, same values in order
    assert blob._data.flat is before
    assert blob.data.tolist() == [[0, 1], [2, 3], [4, 5]]
    blob.reshape(4)                          # smaller: still the same memory
    assert blob._data.flat is before and blob.data.tolist() == [0, 1, 2, 3]
    blob.reshape(2, 4)                       # larger than ever: new memory, zeroed
    assert blob._data.flat is not before
    assert blob.data.shape == (2, 4) and not blob.data.any()
    assert blob.diff.shape == (2, 4)


def test_data_is_a_view_of_the_memory_the_net_computes_with():
    blob = Blob((2, 2))
    view = blob.data
    view[...] = 7
    assert blob.data_tensor().sum().item() == 28
    blob.data_tensor().mul_(2)
    assert view[0, 0] == 14                  # on the CPU the array is the memory itself


def test_legacy_accessors_and_scalar_blobs():
    blob = Blob((5, 3))
    assert (blob.num, blob.channels, blob.height, blob.width, blob.count) == (5, 3, 1, 1, 15)
    blob.reshape()                           # 0 axes: one element (PhaseLayer's top)
    assert blob.shape == [] and blob.count == 1 and blob.data.shape == ()
    blob.data[()] = 3
    assert float(blob.data) == 3
    blob.reshape(1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="5 axes"):
        blob.num
    with pytest.raises(ValueError, match="non-negative"):
        blob.reshape(2, -1)


def test_blobvec_add_blob():
    blobs = BlobVec()
    blobs.add_blob(3)
    blobs.add_blob(2, 2)
    assert [b.shape for b in blobs] == [[3], [2, 2]]


def test_host_copy_follows_syncedmemory():
    """A storage with a separate host copy (a GPU's; forced here on the CPU): reading the
    array brings the device's values over; the host copy goes back before computing only
    when it was asked for since (mutable_cpu_data), as in Caffe."""
    device = torch.arange(4, dtype=torch.float32)
    s = Storage(adopt=device, mirrored=True)
    host = s.numpy()
    assert host.tolist() == [0, 1, 2, 3] and not np.shares_memory(host, device.numpy())
    host[...] = 10                           # written on the host: pushed before computing
    assert s.tensor().tolist() == [10, 10, 10, 10]
    device.add_(1)                           # the net computes, then marks the device newest
    s.written()
    assert s.numpy().tolist() == [11, 11, 11, 11]
    s.tensor()                               # computing again: nothing new on the host
    held = s.numpy()
    s.push()                                 # head is the host (asked for): copied back
    device.add_(1)
    s.written()
    held[...] = -1                           # a stale array written without asking again ...
    s.push()
    assert device.tolist() == [12, 12, 12, 12]   # ... is not copied: Caffe loses it too


def test_parameter_storage_cannot_be_reshaped():
    s = Storage(adopt=torch.zeros(3))
    with pytest.raises(UserError, match="cannot be reshaped"):
        s.reshape((4,))
