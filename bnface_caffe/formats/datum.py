"""Caffe's Datum record: one image (CHW uint8 bytes, or float_data, or encoded file bytes) + label.

The LMDB values that convert_imageset writes and the Data layer reads are serialized Datums.
"""
import cv2
import numpy as np

from ..errors import UserError
from ..proto import caffe_pb2

ENCODINGS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "bmp": ".bmp"}


def image_to_chw(image):
    """An OpenCV image (H×W gray or H×W×C BGR) as a C×H×W uint8 array (Caffe's layout)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image[None]
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def encode_raw(image, label):
    """Serialized Datum with raw `data` (encoded=false), as convert_imageset writes it."""
    chw = image_to_chw(image)
    if chw.dtype != np.uint8:
        raise ValueError(f"raw Datum data must be uint8, got {chw.dtype}")
    c, h, w = chw.shape
    # encoded=False is set explicitly, as Caffe's CVMatToDatum does, so the bytes match its own.
    datum = caffe_pb2.Datum(channels=c, height=h, width=w, data=chw.tobytes(), label=int(label),
                            encoded=False)
    return datum.SerializeToString()


def encode_compressed(image, label, encode_type="png"):
    """Serialized Datum holding PNG/JPEG bytes (encoded=true) of an H×W(×C) image."""
    ext = ENCODINGS.get(encode_type.lower())
    if ext is None:
        raise UserError(f"unknown encode type {encode_type!r}; use one of png, jpg, bmp")
    ok, buf = cv2.imencode(ext, np.asarray(image))
    if not ok:
        raise ValueError(f"OpenCV could not encode the image as {encode_type}")
    # As Caffe's ReadImageToDatum: only data, label and encoded are set; the shape is
    # whatever the image decodes to.
    datum = caffe_pb2.Datum(data=buf.tobytes(), label=int(label), encoded=True)
    return datum.SerializeToString()


def decode_encoded(data, where="record"):
    """PNG/JPEG bytes → C×H×W uint8, decoded natively as Caffe does (imdecode flag -1): gray
    stays 1 channel, colour is BGR."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"{where}: encoded image data cannot be decoded (corrupt record?)")
    if image.dtype != np.uint8:
        raise UserError(f"{where}: encoded image is {image.dtype}, expected 8 bits per channel")
    return image_to_chw(image)


def datum_array(datum, where="record"):
    """The image of a parsed Datum as C×H×W: uint8 for data/encoded, float32 for float_data."""
    if datum.encoded:
        return decode_encoded(datum.data, where)
    shape = (datum.channels, datum.height, datum.width)
    if datum.data:
        if len(datum.data) != shape[0] * shape[1] * shape[2]:
            raise UserError(f"{where}: Datum has {len(datum.data)} data bytes but its shape "
                            f"{shape[0]}x{shape[1]}x{shape[2]} needs {np.prod(shape)}")
        return np.frombuffer(datum.data, np.uint8).reshape(shape)
    values = np.asarray(datum.float_data, np.float32)
    if values.size != shape[0] * shape[1] * shape[2]:
        raise UserError(f"{where}: Datum has {values.size} float_data values but its shape "
                        f"{shape[0]}x{shape[1]}x{shape[2]} needs {shape[0] * shape[1] * shape[2]}")
    return values.reshape(shape)


def parse(value, where="record", datum=None):
    """Serialized bytes → caffe.Datum (into `datum` when given, to reuse one message)."""
    datum = datum if datum is not None else caffe_pb2.Datum()
    try:
        datum.ParseFromString(bytes(value))
    except Exception:
        raise UserError(f"{where}: not a serialized caffe.Datum ({len(value)} bytes); is this "
                        "a Caffe data LMDB?") from None
    return datum


def decode(value, where="record"):
    """Serialized Datum → (C×H×W array, label)."""
    datum = parse(value, where)
    return datum_array(datum, where), datum.label


def decode_batch(records, where):
    """[(key, value)] → (images [n,C,H,W] uint8, or float32 when a record carries float_data;
    labels int32 [n]); `where(key)` names a record in errors. Records of raw uint8 data all of
    the first one's size are joined in one copy (the Data layer's hot path)."""
    datum = caffe_pb2.Datum()
    first = parse(records[0][1], where(records[0][0]), datum)
    if not first.encoded and first.data:
        shape = (first.channels, first.height, first.width)
        raw = _raw_batch(records, shape, where, datum)
        if raw is not None:
            return raw
    return _generic_batch(records, where, datum)


def _raw_batch(records, shape, where, datum):
    size = shape[0] * shape[1] * shape[2]
    chunks, labels = [], []
    for key, value in records:
        parse(value, where(key), datum)
        data = datum.data
        if len(data) != size or datum.encoded:
            if datum.encoded or not data:
                return None  # a mixed LMDB: the caller decodes one by one
            raise UserError(f"{where(key)}: {len(data)} data bytes, but the batch's first "
                            f"record has shape {shape} ({size} bytes)")
        chunks.append(data)
        labels.append(datum.label)
    images = np.frombuffer(b"".join(chunks), np.uint8).reshape((len(records),) + shape)
    return images, np.array(labels, np.int32)


def _generic_batch(records, where, datum):
    arrays, labels = [], np.empty(len(records), np.int32)
    for i, (key, value) in enumerate(records):
        parse(value, where(key), datum)
        array = datum_array(datum, where(key))
        if arrays and array.shape != arrays[0].shape:
            raise UserError(f"{where(key)}: shape {array.shape} differs from the batch's first "
                            f"record {arrays[0].shape}")
        arrays.append(array)
        labels[i] = datum.label
    dtype = np.float32 if any(a.dtype != np.uint8 for a in arrays) else np.uint8
    return np.stack(arrays).astype(dtype, copy=False), labels
