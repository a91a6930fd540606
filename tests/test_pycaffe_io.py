"""caffe.io: proto bytes written by hand from caffe.proto's field numbers, preprocessing and
resizing against values worked out here, images against scikit-image's reader."""
import struct

import cv2
import numpy as np
import pytest

from bnface_caffe.pycaffe import io as cio
from bnface_caffe.proto import caffe_pb2


def floats(*values):
    return b"".join(struct.pack("<f", v) for v in values)


# BlobProto: num=1 channels=2 height=3 width=4 (varints), data=5 diff=6 (packed floats),
# shape=7 (BlobShape: dim=1, packed varints).
def test_array_to_blobproto_bytes():
    blob = cio.array_to_blobproto(np.array([[1, 2, 3], [4, 5, 6]]))
    data = b"\x2a\x18" + floats(1, 2, 3, 4, 5, 6)
    shape = b"\x3a\x04" + b"\x0a\x02\x02\x03"
    assert blob.SerializeToString() == data + shape


def test_array_to_blobproto_with_diff_and_0d_bytes():
    blob = cio.array_to_blobproto(np.array([0.5, -2.0]), diff=np.array([1.0, 0.25]))
    assert blob.SerializeToString() == (b"\x2a\x08" + floats(0.5, -2.0) + b"\x32\x08" +
                                        floats(1.0, 0.25) + b"\x3a\x03\x0a\x01\x02")
    # a 0-d array: one value and an empty `shape {}`, as pycaffe writes it
    assert cio.array_to_blobproto(np.array(3.25)).SerializeToString() == (
        b"\x2a\x04" + floats(3.25) + b"\x3a\x00")


def test_blobproto_to_array_reads_shape_legacy_fields_and_diff():
    blob = caffe_pb2.BlobProto.FromString(b"\x2a\x08" + floats(1.5, 2.5) + b"\x32\x08" +
                                          floats(-1, -2) + b"\x3a\x04\x0a\x02\x01\x02")
    data = cio.blobproto_to_array(blob)
    assert data.dtype == np.float64 and data.shape == (1, 2)
    assert data.tolist() == [[1.5, 2.5]]
    assert cio.blobproto_to_array(blob, return_diff=True).tolist() == [[-1.0, -2.0]]
    legacy = caffe_pb2.BlobProto.FromString(b"\x08\x01\x10\x02\x18\x01\x20\x02\x2a\x10" +
                                            floats(1, 2, 3, 4))
    assert cio.blobproto_to_array(legacy).shape == (1, 2, 1, 2)


def test_blobprotovector_bytes_and_back():
    text = cio.arraylist_to_blobprotovector_str([np.array([1.0]), np.array([[2.0, 3.0]])])
    first = b"\x2a\x04" + floats(1) + b"\x3a\x03\x0a\x01\x01"
    second = b"\x2a\x08" + floats(2, 3) + b"\x3a\x04\x0a\x02\x01\x02"
    # BlobProtoVector: blobs = 1 (length-delimited messages)
    assert text == b"\x0a" + bytes([len(first)]) + first + b"\x0a" + bytes([len(second)]) + second
    back = cio.blobprotovector_str_to_arraylist(text)
    assert [a.tolist() for a in back] == [[1.0], [[2.0, 3.0]]]
    assert all(a.dtype == np.float64 for a in back)


# Datum: channels=1 height=2 width=3 label=5 (varints), data=4 (bytes), float_data=6 (not
# packed: one fixed32 per value, tag 0x35), encoded=7 (never written by pycaffe).
def test_array_to_datum_uint8_bytes_with_and_without_label():
    arr = np.array([[[1, 2, 3]], [[4, 5, 6]]], np.uint8)          # 2 x 1 x 3
    head = b"\x08\x02\x10\x01\x18\x03\x22\x06\x01\x02\x03\x04\x05\x06"
    assert cio.array_to_datum(arr).SerializeToString() == head
    assert cio.array_to_datum(arr, 7).SerializeToString() == head + b"\x28\x07"
    assert cio.array_to_datum(arr, 0).SerializeToString() == head + b"\x28\x00"


def test_array_to_datum_float_bytes_and_back():
    arr = np.array([[[0.5, -1.0]]], np.float32)                  # 1 x 1 x 2
    datum = cio.array_to_datum(arr, 3)
    assert datum.SerializeToString() == (b"\x08\x01\x10\x01\x18\x02\x28\x03" + b"\x35" +
                                         floats(0.5) + b"\x35" + floats(-1.0))
    back = cio.datum_to_array(datum)
    assert back.dtype == np.float64 and back.tolist() == [[[0.5, -1.0]]]
    raw = cio.datum_to_array(cio.array_to_datum(np.arange(6, dtype=np.uint8).reshape(1, 2, 3)))
    assert raw.dtype == np.uint8 and raw.tolist() == [[[0, 1, 2], [3, 4, 5]]]
    raw[0, 0, 0] = 9     # a writable copy, as pycaffe's np.fromstring gave
    with pytest.raises(ValueError):
        cio.array_to_datum(np.zeros((2, 2)))


# -- Transformer ----------------------------------------------------------------------------
def test_transformer_order_of_operations_and_inverse():
    t = cio.Transformer({"data": (1, 3, 2, 2)})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 2.0)
    t.set_mean("data", np.array([1.0, 2.0, 3.0]))
    t.set_input_scale("data", 10.0)
    image = np.arange(1, 13, dtype=np.float32).reshape(2, 2, 3)      # H=2, W=2, RGB
    out = t.preprocess("data", image)
    # blob channel c is image channel 2 - c (RGB -> BGR); (x * 2 - mean[c]) * 10
    expected = np.empty((3, 2, 2), np.float32)
    for c in range(3):
        for h in range(2):
            for w in range(2):
                expected[c, h, w] = (image[h, w, 2 - c] * 2 - (c + 1)) * 10
    assert out.dtype == np.float32 and out.shape == (3, 2, 2)
    assert out[0, 0, 0] == (3 * 2 - 1) * 10 and out[2, 1, 1] == (10 * 2 - 3) * 10
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(t.deprocess("data", out[None]), image, rtol=1e-6)


def test_transformer_resizes_to_the_blob_and_checks_shapes():
    t = cio.Transformer({"data": (1, 1, 4, 4)})
    t.set_transpose("data", (2, 0, 1))
    out = t.preprocess("data", np.full((2, 2, 1), 7, np.uint8))   # a constant image stays 7
    assert out.shape == (1, 4, 4) and out.dtype == np.float32 and np.all(out == 7)
    with pytest.raises(ValueError, match="Mean channels"):
        t.set_mean("data", np.zeros(3))
    with pytest.raises(ValueError, match="Mean shape"):
        t.set_mean("data", np.zeros((1, 1, 4, 4)))
    with pytest.raises(Exception, match="Transpose order"):
        t.set_transpose("data", (1, 0))
    with pytest.raises(Exception, match="Channel swap"):
        t.set_channel_swap("data", (1, 0))
    with pytest.raises(Exception, match="not one of the net inputs"):
        t.set_raw_scale("label", 1)


def test_set_mean_resizes_a_mean_image_of_another_size():
    t = cio.Transformer({"data": (1, 1, 1, 4)})
    t.set_mean("data", np.array([[[10.0, 20.0]]]))                 # 1 x 1 x 2 -> 1 x 1 x 4
    # normalised to [0, 1], resized (see the resize test below), scaled back
    np.testing.assert_allclose(t.mean["data"], [[[10.0, 12.5, 17.5, 17.5]]])


# -- resize_image ---------------------------------------------------------------------------
def test_resize_up_samples_pixel_centres_with_zero_outside():
    # skimage's linear resize of [10, 20] to 4 samples: coordinates -0.25, 0.25, 0.75, 1.25
    # in the [0, 1]-normalised image, samples outside the image count as 0.
    out = cio.resize_image(np.array([[[10.0], [20.0]]], np.float32), (1, 4))
    np.testing.assert_allclose(out[0, :, 0], [10.0, 12.5, 17.5, 17.5])
    assert out.dtype == np.float32


def test_resize_down_samples_after_a_gaussian():
    # 4 -> 2: sigma (2 - 1) / 2 = 0.5, kernel radius int(4 * 0.5 + 0.5) = 2, weights
    # exp(-2 x^2) normalised; then samples at coordinates 0.5 and 2.5.
    values = np.array([0.0, 1.0, 3.0, 2.0])
    w = np.exp(-2.0 * np.arange(-2, 3) ** 2)
    w /= w.sum()
    padded = np.concatenate([[0, 0], values / 3.0, [0, 0]])
    blurred = np.array([padded[i:i + 5] @ w for i in range(4)], np.float32).astype(np.float64)
    expected = np.array([(blurred[0] + blurred[1]) / 2, (blurred[2] + blurred[3]) / 2]) * 3.0
    out = cio.resize_image(values.reshape(1, 4, 1).astype(np.float32), (1, 2))
    np.testing.assert_allclose(out[0, :, 0], expected, rtol=1e-6)


def test_resize_other_channel_counts_align_corners():
    im = np.zeros((2, 2, 2), np.float32)
    im[:, :, 0] = [[0, 2], [4, 6]]
    im[:, :, 1] = 1
    out = cio.resize_image(im, (3, 3))
    np.testing.assert_allclose(out[:, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_allclose(out[:, :, 1], np.ones((3, 3)))
    constant = cio.resize_image(np.full((3, 3, 3), 0.25, np.float32), (5, 2))
    assert constant.shape == (5, 2, 3) and np.all(constant == 0.25)


def test_resize_matches_scikit_image_and_scipy():
    transform = pytest.importorskip("skimage.transform")
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.RandomState(0)
    for shape, dims in [((9, 13, 3), (4, 30)), ((20, 7, 1), (33, 5)), ((6, 8, 3), (6, 8))]:
        im = rng.rand(*shape).astype(np.float32)
        low, high = im.min(), im.max()
        ref = transform.resize((im - low) / (high - low), dims, order=1, mode="constant")
        np.testing.assert_allclose(cio.resize_image(im, dims),
                                   ref * (high - low) + low, rtol=1e-6, atol=1e-6)
    im = rng.rand(5, 6, 4).astype(np.float32)
    ref = ndimage.zoom(im, (7 / 5, 3 / 6, 1), order=1)
    np.testing.assert_allclose(cio.resize_image(im, (7, 3)), ref, rtol=1e-6)


def test_oversample_ten_crops_in_order():
    im = np.arange(20, dtype=np.float32).reshape(4, 5, 1)
    crops = cio.oversample([im], (2, 3))
    assert crops.shape == (10, 2, 3, 1) and crops.dtype == np.float32
    corners = [im[0:2, 0:3], im[0:2, 2:5], im[2:4, 0:3], im[2:4, 2:5]]
    centre = im[1:3, 1:4]                   # centre (2, 2.5) -/+ (1, 1.5), truncated
    for i, crop in enumerate(corners + [centre]):
        np.testing.assert_array_equal(crops[i], crop)
        np.testing.assert_array_equal(crops[5 + i], crop[:, ::-1])


# -- load_image -----------------------------------------------------------------------------
def test_load_image_colour_gray_alpha_and_16_bit(tmp_path):
    bgr = np.array([[[10, 20, 30], [200, 100, 0]]], np.uint8)          # one row, two pixels
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    rgb = cio.load_image(str(tmp_path / "c.png"))
    assert rgb.dtype == np.float32 and rgb.shape == (1, 2, 3)
    np.testing.assert_array_equal(rgb, (bgr[:, :, ::-1] * (1 / 255.0)).astype(np.float32))
    gray = cio.load_image(str(tmp_path / "c.png"), color=False)
    r, g, b = 30 / 255.0, 20 / 255.0, 10 / 255.0
    assert gray.shape == (1, 2, 1)
    assert gray[0, 0, 0] == pytest.approx(0.2125 * r + 0.7154 * g + 0.0721 * b, rel=1e-6)

    cv2.imwrite(str(tmp_path / "g.png"), np.array([[0, 51, 255]], np.uint8))
    tiled = cio.load_image(str(tmp_path / "g.png"))
    assert tiled.shape == (1, 3, 3)
    np.testing.assert_allclose(tiled[0, :, 1], [0, 0.2, 1], rtol=1e-6)
    assert cio.load_image(str(tmp_path / "g.png"), color=False).shape == (1, 3, 1)

    bgra = np.array([[[0, 0, 255, 51]]], np.uint8)                    # red, alpha 0.2
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_allclose(cio.load_image(str(tmp_path / "a.png"))[0, 0], [1, 0, 0])
    # as gray: blended onto white first, (1 - 0.2) * 1 + 0.2 * channel
    red_on_white = [1.0, 0.8, 0.8]
    assert cio.load_image(str(tmp_path / "a.png"), color=False)[0, 0, 0] == pytest.approx(
        0.2125 * red_on_white[0] + 0.7154 * red_on_white[1] + 0.0721 * red_on_white[2])

    cv2.imwrite(str(tmp_path / "d.png"), np.array([[0, 65535, 13107]], np.uint16))
    np.testing.assert_allclose(cio.load_image(str(tmp_path / "d.png"), False)[0, :, 0],
                               [0, 1, 0.2], rtol=1e-6)
    with pytest.raises(FileNotFoundError):
        cio.load_image(str(tmp_path / "missing.png"))


def test_load_image_equals_scikit_image_reader(tmp_path):
    skio = pytest.importorskip("skimage.io")
    from skimage import img_as_float
    rng = np.random.RandomState(3)
    cv2.imwrite(str(tmp_path / "p.jpg"), rng.randint(0, 256, (9, 11, 3)).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "q.png"), rng.randint(0, 256, (9, 11, 4)).astype(np.uint8))
    for name in ("p.jpg", "q.png"):
        path = str(tmp_path / name)
        for color in (True, False):
            ref = img_as_float(skio.imread(path, as_gray=not color)).astype(np.float32)
            if ref.ndim == 2:
                ref = ref[:, :, None]
            ref = ref[:, :, :3]
            np.testing.assert_allclose(cio.load_image(path, color), ref, rtol=1e-6, atol=1e-7)
