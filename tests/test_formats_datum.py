"""Datum codec: raw CHW bytes, encoded PNG/JPEG, float_data — checked against the schema."""
import cv2
import numpy as np
import pytest

from bnface_caffe.formats import datum
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2


def test_raw_gray_record_fields_as_convert_imageset_writes_them():
    image = np.arange(50 * 50, dtype=np.uint32).reshape(50, 50).astype(np.uint8)
    value = datum.encode_raw(image, 7)
    d = caffe_pb2.Datum.FromString(value)
    assert (d.channels, d.height, d.width, d.label, d.encoded) == (1, 50, 50, 7, False)
    assert d.data == image.tobytes() and len(d.float_data) == 0
    array, label = datum.decode(value)
    assert label == 7 and array.shape == (1, 50, 50) and array.dtype == np.uint8
    np.testing.assert_array_equal(array[0], image)


def test_colour_is_stored_channel_major():
    bgr = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    d = caffe_pb2.Datum.FromString(datum.encode_raw(bgr, 1))
    assert (d.channels, d.height, d.width) == (3, 4, 5)
    # CHW: all of channel 0 (blue) first, row by row.
    assert d.data[:5] == bgr[0, :, 0].tobytes()
    np.testing.assert_array_equal(datum.decode(d.SerializeToString())[0], bgr.transpose(2, 0, 1))


def test_encoded_png_is_lossless_and_sets_only_data_label_encoded():
    image = np.random.default_rng(1).integers(0, 256, (50, 50), dtype=np.uint8)
    d = caffe_pb2.Datum.FromString(datum.encode_compressed(image, 3, "png"))
    assert d.encoded and d.label == 3 and d.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (d.channels, d.height, d.width) == (0, 0, 0)  # as Caffe's ReadImageToDatum
    array, label = datum.decode(d.SerializeToString())
    assert array.shape == (1, 50, 50)  # gray stays one channel
    np.testing.assert_array_equal(array[0], image)


def test_encoded_jpeg_decodes_like_opencv():
    image = np.tile(np.arange(50, dtype=np.uint8) * 5, (50, 1))
    value = datum.encode_compressed(image, 0, "jpg")
    blob = caffe_pb2.Datum.FromString(value).data
    assert blob[:2] == b"\xff\xd8"
    expected = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(datum.decode(value)[0][0], expected)


def test_float_data_records_decode_as_float32():
    d = caffe_pb2.Datum(channels=1, height=2, width=3, label=4)
    d.float_data.extend([0.5, -1, 2, 3, 4, 5.25])
    array, label = datum.decode(d.SerializeToString())
    assert array.dtype == np.float32 and label == 4
    expected = np.array([0.5, -1, 2, 3, 4, 5.25], np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(array, expected)


def test_bad_records_are_user_errors():
    with pytest.raises(UserError, match="not a serialized caffe.Datum"):
        datum.decode(b"\xff\xff\xff", "k1")
    short = caffe_pb2.Datum(channels=1, height=50, width=50, data=b"abc").SerializeToString()
    with pytest.raises(UserError, match="3 data bytes .* needs 2500"):
        datum.decode(short, "k2")
    broken = caffe_pb2.Datum(encoded=True, data=b"not a png").SerializeToString()
    with pytest.raises(UserError, match="cannot be decoded"):
        datum.decode(broken, "k3")
    with pytest.raises(UserError, match="unknown encode type"):
        datum.encode_compressed(np.zeros((2, 2), np.uint8), 0, "gif")


def test_raw_record_bytes_are_caffes_own():
    # Laid out as BVLC Caffe's convert_imageset --gray wrote them (checked byte for byte against
    # a real build): channels, height, width, data (length 2500 = varint c4 13), label, and
    # encoded=false written explicitly (CVMatToDatum sets it) as the final "38 00".
    image = np.full((50, 50), 9, np.uint8)
    expected = (b"\x08\x01\x10\x32\x18\x32\x22\xc4\x13" + image.tobytes() + b"\x28\x96\x01"
                + b"\x38\x00")
    assert datum.encode_raw(image, 150) == expected
