"""BlobProto and mean.binaryproto against bytes written by hand from caffe.proto's field
numbers (shape = 7 holding BlobShape.dim = 1 packed; data = 5 packed float; legacy num,
channels, height, width = 1..4)."""
import struct

import numpy as np
import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.formats import blobproto
from bnface_caffe.proto import caffe_pb2


def floats(values):
    return struct.pack(f"<{len(values)}f", *values)


def test_array_to_proto_writes_caffes_bytes():
    array = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    # fields in number order, as C++ protobuf writes Caffe's blobs: data (5): 2a 18 + six
    # floats; [diff (6): 32 18 + six floats]; shape (7) {dim: 2 dim: 3}: 3a 04 | 0a 02 02 03
    data, shape = b"\x2a\x18" + floats(range(1, 7)), b"\x3a\x04\x0a\x02\x02\x03"
    assert blobproto.array_to_proto(array).SerializeToString() == data + shape
    with_diff = blobproto.array_to_proto(array, diff=np.zeros((2, 3)))
    assert with_diff.SerializeToString() == data + b"\x32\x18" + floats([0] * 6) + shape


def test_proto_to_array_reads_shape_legacy_fields_and_double_data():
    blob = caffe_pb2.BlobProto.FromString(b"\x3a\x04\x0a\x02\x02\x03" + b"\x2a\x18" + floats(range(6)))
    np.testing.assert_array_equal(blobproto.proto_to_array(blob), np.arange(6).reshape(2, 3))
    legacy = caffe_pb2.BlobProto(num=1, channels=2, height=1, width=2, double_data=[1, 2, 3, 4])
    assert blobproto.proto_to_array(legacy).shape == (1, 2, 1, 2)
    assert blobproto.proto_shape_matches(legacy, (2, 1, 2)) and not blobproto.proto_shape_matches(legacy, (4,))
    with pytest.raises(ValueError, match="holds 3 values but its shape 2 3 needs 6"):
        blobproto.proto_to_array(caffe_pb2.BlobProto.FromString(
            b"\x3a\x04\x0a\x02\x02\x03" + b"\x2a\x0c" + floats([1, 2, 3])))


def test_mean_file_is_compute_image_means_layout(tmp_path):
    mean = np.array([[[1.5, 2.0], [0.25, 4.0]]], dtype=np.float32)     # 1x2x2
    path = str(tmp_path / "mean.binaryproto")
    blobproto.write_mean_file(mean, path)
    # num=1 channels=1 height=2 width=2 (fields 1-4), then data (5) packed
    want = b"\x08\x01\x10\x01\x18\x02\x20\x02" + b"\x2a\x10" + floats([1.5, 2.0, 0.25, 4.0])
    assert open(path, "rb").read() == want
    np.testing.assert_array_equal(blobproto.read_mean_file(path), mean)


def test_a_mean_file_of_the_wrong_shape_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.binaryproto"
    path.write_bytes(b"\x3a\x00")      # shape {} and no data: a 0-axis blob without its value
    with pytest.raises(UserError, match="not a usable mean BlobProto .blob holds 0 values"):
        blobproto.read_mean_file(str(path))
    # a 2-D blob (shape {dim: 2 dim: 2}) holds no 1xCxHxW image
    path.write_bytes(b"\x2a\x10" + floats([1, 2, 3, 4]) + b"\x3a\x04\x0a\x02\x02\x02")
    with pytest.raises(UserError, match="must hold one 1xCxHxW image, found shape 2 2"):
        blobproto.read_mean_file(str(path))
