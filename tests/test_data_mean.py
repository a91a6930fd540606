"""mean.binaryproto: legacy BlobProto fields, equal to the numpy mean of the records."""
import numpy as np
import pytest

from bnface_caffe.data import mean
from bnface_caffe.formats import datum
from bnface_caffe.formats.blobproto import read_mean_file
from bnface_caffe.formats.lmdb_io import LmdbWriter
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2


def write(path, values):
    with LmdbWriter(str(path)) as writer:
        for i, value in enumerate(values):
            writer.put(f"{i:08d}_x", value)
    return str(path)


def test_mean_of_raw_records_equals_numpy_and_uses_legacy_fields(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (37, 3, 5, 4), dtype=np.uint8)
    src = write(tmp_path / "db", [datum.encode_raw(im.transpose(1, 2, 0), 0) for im in images])
    out = str(tmp_path / "mean.binaryproto")
    m, count = mean.write_mean(src, out)
    assert count == 37
    blob = caffe_pb2.BlobProto.FromString(open(out, "rb").read())
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 3, 5, 4)
    assert not blob.HasField("shape") and len(blob.data) == 60
    expected = images.astype(np.float64).mean(0).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(blob.data, np.float32).reshape(3, 5, 4), expected)
    np.testing.assert_array_equal(read_mean_file(out), expected)
    # compute_image_mean's "mean_value channel [c]" = average of that channel's mean image.
    values = mean.channel_means(m)
    np.testing.assert_allclose(values, images.reshape(37, 3, -1).mean((0, 2)), rtol=1e-6)


def test_mean_of_encoded_and_float_records(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 6, 6), dtype=np.uint8)
    src = write(tmp_path / "enc", [datum.encode_compressed(im, 0, "png") for im in images])
    m, _ = mean.image_mean(src)
    np.testing.assert_allclose(m[0], images.mean(0), rtol=1e-6)
    floats = []
    for v in (1.5, 2.5, 4.0):
        d = caffe_pb2.Datum(channels=1, height=1, width=2)
        d.float_data.extend([v, -v])
        floats.append(d.SerializeToString())
    m, _ = mean.image_mean(write(tmp_path / "flt", floats))
    np.testing.assert_allclose(m.ravel(), [8 / 3, -8 / 3], rtol=1e-6)


def test_mean_errors(tmp_path):
    src = write(tmp_path / "mixed", [datum.encode_raw(np.zeros((2, 2), np.uint8), 0),
                                     datum.encode_raw(np.zeros((3, 3), np.uint8), 0)])
    with pytest.raises(UserError, match="must be the same size"):
        mean.image_mean(src)
    empty = tmp_path / "empty"
    LmdbWriter(str(empty)).close()
    with pytest.raises(UserError, match="no records"):
        mean.image_mean(str(empty))


def test_mean_file_bytes_are_compute_image_means_layout(tmp_path):
    # num, channels, height, width, then packed float data: the bytes compute_image_mean writes
    # (checked byte for byte against a real Caffe build).
    images = np.array([[[0, 2], [4, 9]], [[2, 2], [0, 0]]], np.uint8)
    src = write(tmp_path / "db", [datum.encode_raw(im, 0) for im in images])
    mean.write_mean(src, str(tmp_path / "m"))
    data = np.array([1, 2, 2, 4.5], "<f4").tobytes()
    assert (tmp_path / "m").read_bytes() == b"\x08\x01\x10\x01\x18\x02\x20\x02\x2a\x10" + data
