"""caffe.io: pycaffe's array/proto codecs, image loading and input preprocessing.

Each function gives what pycaffe's gives: the same dtypes (blobproto_to_array and
datum_to_array return float64 for float data, as pycaffe's np.array of a repeated field does),
the same bytes for protos, and images as float32 in [0, 1]. Images are read with OpenCV and
converted the way scikit-image's imread + img_as_float do; resizing is scikit-image's /
SciPy's arithmetic done in numpy (see resize.py).
"""
import os

import cv2
import numpy as np

from ..formats import blobproto
from ..proto import caffe_pb2
from . import resize as _resize

# skimage.color.rgb2gray's luminance weights (ITU-R BT.709, as scikit-image uses them)
GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)


# -- protos <-> arrays ----------------------------------------------------------------------
def blobproto_to_array(blob, return_diff=False):
    """BlobProto -> float64 array in its shape (the legacy num/channels/height/width fields
    when any is set, else shape.dim); `return_diff` reads the diff instead of the data."""
    values = blobproto.packed_floats(blob, "diff" if return_diff else "data")
    return values.astype(np.float64).reshape(blobproto.proto_shape(blob))


def array_to_blobproto(arr, diff=None):
    """N-d array -> BlobProto (shape.dim + packed float data, and diff when given; like
    pycaffe, the diff's shape is not checked)."""
    arr = np.asarray(arr)
    blob = blobproto.array_to_proto(arr.astype(float),
                                    None if diff is None else np.asarray(diff).astype(float))
    if arr.ndim == 0:
        blob.shape.SetInParent()   # pycaffe writes an empty `shape {}` for a 0-d array
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """Arrays -> the bytes of a serialized BlobProtoVector."""
    vector = caffe_pb2.BlobProtoVector()
    vector.blobs.extend([array_to_blobproto(a) for a in arraylist])
    return vector.SerializeToString()


def blobprotovector_str_to_arraylist(serialized):
    """The bytes of a BlobProtoVector -> list of float64 arrays."""
    vector = caffe_pb2.BlobProtoVector()
    vector.ParseFromString(serialized)
    return [blobproto_to_array(blob) for blob in vector.blobs]


def array_to_datum(arr, label=None):
    """A C x H x W array -> Datum: uint8 arrays as raw `data` bytes, anything else as
    `float_data`; the label only when given. (No `encoded` field: pycaffe's bytes, which
    differ from convert_imageset's.)"""
    if arr.ndim != 3:
        raise ValueError('Incorrect array shape.')
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(float).flat)
    if label is not None:
        datum.label = label
    return datum


def datum_to_array(datum):
    """Datum -> C x H x W array: uint8 from `data`, float64 from `float_data` (label not
    returned). Encoded (PNG/JPEG) Datums are not decoded, as in pycaffe."""
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).copy().reshape(shape)
    return np.array(datum.float_data, dtype=np.float64).reshape(shape)


# -- preprocessing ---------------------------------------------------------------------------
class Transformer:
    """Prepares H x W x K images for a net's input blobs and undoes it (deprocess).

    `inputs`: {blob name: blob shape (N, K, H, W)}, e.g. {'data': net.blobs['data'].data.shape}.
    preprocess order: float32, resize to the blob's H x W, transpose, channel swap,
    * raw_scale, - mean, * input_scale; deprocess undoes them in reverse.
    """

    def __init__(self, inputs):
        self.inputs = inputs
        self.transpose = {}
        self.channel_swap = {}
        self.raw_scale = {}
        self.mean = {}
        self.input_scale = {}

    def _check_input(self, name):
        # (pycaffe raises a bare Exception for the checks below; ValueError is one)
        if name not in self.inputs:
            raise ValueError(f'{name} is not one of the net inputs: {self.inputs}')

    def preprocess(self, in_, data):
        """H' x W' x K image -> K x H x W float32 array for blob `in_`."""
        self._check_input(in_)
        # The steps work in place where numpy allows, as pycaffe's do: a float32 image of
        # the blob's size without a channel swap is scaled in place through the transpose view.
        out = data.astype(np.float32, copy=False)
        size = self.inputs[in_][2:]
        if out.shape[:2] != size:
            out = resize_image(out, size)
        if self.transpose.get(in_) is not None:
            out = out.transpose(self.transpose[in_])
        if self.channel_swap.get(in_) is not None:
            out = out[self.channel_swap[in_], :, :]
        if self.raw_scale.get(in_) is not None:
            out *= self.raw_scale[in_]
        if self.mean.get(in_) is not None:
            out -= self.mean[in_]
        if self.input_scale.get(in_) is not None:
            out *= self.input_scale[in_]
        return out

    def deprocess(self, in_, data):
        """Blob data (K x H x W, or 1 x K x H x W) -> the image preprocess was given (no resize)."""
        self._check_input(in_)
        out = data.copy().squeeze()
        if self.input_scale.get(in_) is not None:
            out /= self.input_scale[in_]
        if self.mean.get(in_) is not None:
            out += self.mean[in_]
        if self.raw_scale.get(in_) is not None:
            out /= self.raw_scale[in_]
        if self.channel_swap.get(in_) is not None:
            out = out[np.argsort(self.channel_swap[in_]), :, :]
        if self.transpose.get(in_) is not None:
            out = out.transpose(np.argsort(self.transpose[in_]))
        return out

    def set_transpose(self, in_, order):
        """Axis order, e.g. (2, 0, 1) for H x W x K -> K x H x W."""
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError('Transpose order needs to have the same number of dimensions '
                             'as the input.')
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        """Channel order after the transpose, e.g. (2, 1, 0) for RGB -> BGR."""
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError('Channel swap needs to have the same number of dimensions as '
                             'the input channels.')
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        """Multiplier before the mean (255 for models trained on 0..255 pixels)."""
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Mean to subtract: one value per channel (K,), or an image (K x H x W or H x W),
        resized to the blob's H x W when it differs."""
        self._check_input(in_)
        shape = mean.shape
        if mean.ndim == 1:
            if shape[0] != self.inputs[in_][1]:
                raise ValueError('Mean channels incompatible with input.')
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if len(shape) == 2:
                shape = (1,) + shape
            if len(shape) != 3:
                raise ValueError('Mean shape invalid')
            if shape != self.inputs[in_][1:]:
                # Resized in [0, 1] and scaled back, as pycaffe does; the scaling is done
                # in float32 (the resized image's type), as pycaffe's NumPy 1 did it.
                low, high = mean.min(), mean.max()
                unit = (mean - low) / (high - low)
                resized = resize_image(unit.transpose((1, 2, 0)), self.inputs[in_][2:])
                as_f32 = resized.dtype.type
                mean = resized.transpose((2, 0, 1)) * as_f32(high - low) + as_f32(low)
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Multiplier after the mean subtraction."""
        self._check_input(in_)
        self.input_scale[in_] = scale


# -- images ----------------------------------------------------------------------------------
def load_image(filename, color=True):
    """Image file -> float32 array in [0, 1]: H x W x 3 RGB when `color`, else H x W x 1
    intensity (colour images converted with scikit-image's rgb2gray weights, alpha blended
    onto white first). A gray file loaded with `color` is repeated into 3 channels; an alpha
    channel is dropped. EXIF orientation is ignored, as scikit-image's reader does."""
    image = _read(filename)
    if color:
        image = _as_float(image)
    elif image.ndim > 2:
        image = _to_gray(image)
    else:
        image = _as_float(image)
    image = image.astype(np.float32)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
        if color:
            image = np.tile(image, (1, 1, 3))
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def _read(filename):
    """The file's pixels as stored (8/16-bit, gray/RGB/RGBA), in RGB order."""
    path = os.fspath(filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(2, "No such file", path)
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)   # as stored; no EXIF rotation
    if image is None:
        raise ValueError(f"{path}: not an image file OpenCV can read")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _as_float(image):
    """skimage.img_as_float: unsigned integers scaled by 1 / max into float64."""
    if image.dtype.kind == "u":
        return np.multiply(image, 1.0 / np.iinfo(image.dtype).max, dtype=np.float64)
    if image.dtype == bool:
        return image.astype(np.float64)
    return image


def _to_gray(image):
    """skimage's imread(as_gray=True) of a colour image: RGBA blended onto white, then
    rgb2gray, in float64."""
    rgb = _as_float(image)
    if rgb.shape[2] == 4:
        alpha, channels = rgb[:, :, 3:4], rgb[:, :, :3]
        white = np.ones(3, dtype=rgb.dtype)
        rgb = np.clip((1 - alpha) * white + alpha * channels, 0, 1)
    return rgb @ np.array(GRAY_WEIGHTS, dtype=rgb.dtype)


def resize_image(im, new_dims, interp_order=1):
    """H x W x K image -> new_dims[0] x new_dims[1] x K, float32. Only linear interpolation
    (interp_order=1, pycaffe's default) is done here; other orders raise."""
    if interp_order != 1:
        raise NotImplementedError(f"caffe.io.resize_image: interp_order={interp_order} is not "
                                  "supported here (only the default 1, linear)")
    if im.shape[-1] == 1 or im.shape[-1] == 3:
        low, high = im.min(), im.max()
        if high > low:
            # scikit-image resizes {1, 3}-channel images in [0, 1]: normalise, then undo.
            unit = (im - low) / (high - low)
            resized = _resize.smooth_and_zoom(unit, new_dims) * (high - low) + low
        else:
            constant = np.empty((new_dims[0], new_dims[1], im.shape[-1]), dtype=np.float32)
            constant.fill(low)
            return constant
    else:
        # scipy's zoom rounds size * factor to get the output size.
        factors = np.array(new_dims, dtype=float) / np.array(im.shape[:2])
        size = tuple(int(round(n * f)) for n, f in zip(im.shape[:2], factors))
        resized = _resize.zoom_corners(im, size)
    return resized.astype(np.float32)


def oversample(images, crop_dims):
    """10 crops per H x W x K image: the four corners and the centre, then the same five
    mirrored left-right. Returns float32 (10 * N) x h x w x K."""
    im_shape = np.array(images[0].shape)
    crop_dims = np.array(crop_dims)
    centre = im_shape[:2] / 2.0
    boxes = np.empty((5, 4), dtype=int)
    i = 0
    for top in (0, im_shape[0] - crop_dims[0]):
        for left in (0, im_shape[1] - crop_dims[1]):
            boxes[i] = (top, left, top + crop_dims[0], left + crop_dims[1])
            i += 1
    # The centre box in float, truncated toward zero when stored (pycaffe's int array).
    boxes[4] = np.tile(centre, (1, 2)) + np.concatenate([-crop_dims / 2.0, crop_dims / 2.0])
    boxes = np.tile(boxes, (2, 1))
    crops = np.empty((10 * len(images), crop_dims[0], crop_dims[1], im_shape[-1]),
                     dtype=np.float32)
    n = 0
    for im in images:
        for y0, x0, y1, x1 in boxes:
            crops[n] = im[y0:y1, x0:x1, :]
            n += 1
        crops[n - 5:n] = crops[n - 5:n, :, ::-1, :]
    return crops
