"""Blob shapes and BlobProto <-> numpy/torch conversion, the way Caffe stores blobs.

A BlobProto is `shape { dim... }` plus packed float `data` (or `double_data`);
files from old Caffe carry the legacy num/channels/height/width fields instead
of `shape`. Big blobs (a 14700x320 classifier) go through raw bytes rather than
Python floats: parsing packed floats is done by protobuf's C code.
"""
import numpy as np
import torch

from ..errors import UserError
from ..proto import caffe_pb2
from ..shapes import count
from . import prototxt

LEGACY_FIELDS = ("num", "channels", "height", "width")


def proto_shape(blob):
    """The shape a BlobProto describes: legacy 4-D fields win when any is present."""
    if any(blob.HasField(f) for f in LEGACY_FIELDS):
        return tuple(int(getattr(blob, f)) for f in LEGACY_FIELDS)
    return tuple(int(d) for d in blob.shape.dim)


def proto_shape_matches(blob, shape):
    """Blob::ShapeEquals: a legacy proto matches a blob of up to 4 axes whose
    missing leading axes count as 1; otherwise the dims must be equal."""
    shape = tuple(shape)
    if any(blob.HasField(f) for f in LEGACY_FIELDS):
        if len(shape) > 4:
            return False
        padded = (1,) * (4 - len(shape)) + shape
        return padded == proto_shape(blob)
    return shape == proto_shape(blob)


def proto_to_array(blob):
    """BlobProto -> float32 numpy array in its own shape (double_data when present)."""
    shape = proto_shape(blob)
    if len(blob.double_data):
        values = np.asarray(blob.double_data, dtype=np.float64).astype(np.float32)
    else:
        values = packed_floats(blob)
    n = count(shape)
    if values.size != n:
        raise ValueError(f"blob holds {values.size} values but its shape "
                         f"{' '.join(map(str, shape)) or '(scalar)'} needs {n}")
    return values.reshape(shape)


def array_to_proto(array, diff=None):
    """numpy/torch array -> BlobProto with `shape` and packed float `data` (Blob::ToProto)."""
    data = _as_f32(array)
    parts = [_shape_bytes(data.shape), _packed_field(5, data)]
    if diff is not None:
        parts.append(_packed_field(6, _as_f32(diff)))
    return caffe_pb2.BlobProto.FromString(b"".join(parts))


def _as_f32(array):
    if isinstance(array, torch.Tensor):
        array = array.detach().to("cpu", torch.float32).contiguous().numpy()
    return np.asarray(array, dtype=np.float32)  # tobytes() writes C order; 0-d stays 0-d


def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _shape_bytes(shape):
    if not shape:
        return b""  # Blob::ToProto never touches `shape` for a 0-axis blob
    dims = b"".join(_varint(int(d)) for d in shape)
    inner = b"\x0a" + _varint(len(dims)) + dims
    return b"\x3a" + _varint(len(inner)) + inner  # field 7, BlobShape


def _packed_field(number, values):
    raw = values.astype("<f4", copy=False).tobytes()
    if not raw:
        return b""
    return _varint(number << 3 | 2) + _varint(len(raw)) + raw


def packed_floats(blob, field="data"):
    """blob.data (or .diff) as float32 without a Python float per value: re-serialise only
    that field and read its bytes (protobuf always writes repeated floats packed
    in proto2 files with [packed = true], which caffe.proto uses)."""
    values = getattr(blob, field)
    if not len(values):
        return np.zeros(0, np.float32)
    only = caffe_pb2.BlobProto()
    getattr(only, field).MergeFrom(values)
    raw = only.SerializeToString()
    # tag (1 byte) + varint length, then the floats
    pos = 1
    length, shift = 0, 0
    while True:
        b = raw[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return np.frombuffer(raw, dtype="<f4", count=length // 4, offset=pos).astype(np.float32)


# -- mean.binaryproto ---------------------------------------------------------------------
# compute_image_mean writes one BlobProto with the legacy fields num=1, channels, height,
# width and the mean image as `data`; the DataTransformer reads it back as C×H×W.

def mean_to_proto(mean):
    """A C×H×W mean image as compute_image_mean's BlobProto (legacy shape fields)."""
    c, h, w = mean.shape
    blob = caffe_pb2.BlobProto(num=1, channels=c, height=h, width=w)
    blob.data.extend(np.asarray(mean, np.float32).ravel().tolist())
    return blob


def write_mean_file(mean, path):
    prototxt.write_binary(mean_to_proto(mean), path)


def read_mean_file(path):
    """mean.binaryproto -> float32 array [C, H, W] (Caffe's DataTransformer mean)."""
    blob = prototxt.read_binary(path, caffe_pb2.BlobProto)
    try:
        mean = proto_to_array(blob)
    except ValueError as err:
        raise UserError(f"{path}: not a usable mean BlobProto ({err})") from None
    if mean.ndim == 4 and mean.shape[0] == 1:
        mean = mean[0]
    if mean.ndim != 3 or mean.size == 0:
        raise UserError(f"{path}: a mean file must hold one 1xCxHxW image, found shape "
                        f"{' '.join(map(str, proto_shape(blob))) or '(empty)'}; "
                        "make it with compute_image_mean or tools/build_lmdb.py")
    return mean
