"""Caffe's DataTransformer for a batch of datums (data_transformer.cpp).

Per datum, in Caffe's order: the mirror draw (only when mirror is set), then the
crop offsets (random in TRAIN, centred in TEST); each output value is
(pixel - mean) * scale, the mean taken from the full-size mean image at the
same source position (mean_file) or per channel (mean_value), and the column
flipped when mirrored. The draws come from a numpy generator seeded from torch's
(the same distribution as Caffe's mt19937 stream, not the same numbers).
"""
import numpy as np
import torch

from ..errors import UserError
from ..formats.glog import Glog
from ..proto import caffe_pb2
from ..formats.blobproto import read_mean_file


class Transformer:
    def __init__(self, param, phase, where, seed=None, logger=None):
        self.where = where
        self.scale = np.float32(param.scale)
        self.mirror = param.mirror
        self.crop = int(param.crop_size)
        self.train = phase == caffe_pb2.TRAIN
        if param.mean_file and len(param.mean_value):
            raise UserError(f"{where}: give mean_file or mean_value, not both")
        self.mean_image = None
        self.mean_values = None
        if param.mean_file:
            (logger if logger is not None else Glog.silent()).info("data_transformer.cpp:25", f"Loading mean file from: {param.mean_file}")
            self.mean_image = read_mean_file(param.mean_file)
        elif len(param.mean_value):
            self.mean_values = np.asarray(param.mean_value, dtype=np.float32)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        self.rng = np.random.default_rng(seed)

    def output_shape(self, datum_shape):
        """(C, h, w) of a transformed datum; checks the mean and crop against it."""
        c, h, w = datum_shape
        if self.mean_image is not None and self.mean_image.shape != (c, h, w):
            raise UserError(f"{self.where}: the mean image is {'x'.join(map(str, self.mean_image.shape))}"
                            f" but the data is {c}x{h}x{w}; compute the mean from this data")
        if self.mean_values is not None and len(self.mean_values) not in (1, c):
            raise UserError(f"{self.where}: give 1 mean_value or one per channel ({c}), got "
                            f"{len(self.mean_values)}")
        if self.crop:
            if self.crop > h or self.crop > w:
                raise UserError(f"{self.where}: crop_size {self.crop} is larger than the "
                                f"{h}x{w} data")
            return c, self.crop, self.crop
        return c, h, w

    def __call__(self, images):
        """uint8 (or float32) [n, C, H, W] -> float32 [n, C, h, w]."""
        n, c, h, w = images.shape
        _, oh, ow = self.output_shape((c, h, w))
        mean = self.mean_image
        if self.mean_values is not None:
            mean = np.broadcast_to(self.mean_values.reshape(-1, 1, 1)
                                   if len(self.mean_values) == c else self.mean_values[:1, None, None],
                                   (c, h, w))
        if not self.mirror and not self.crop:  # the common case, whole batch at once
            out = images.astype(np.float32)
            if mean is not None:
                out -= mean
            out *= self.scale
            return out
        out = np.empty((n, c, oh, ow), np.float32)
        for i in range(n):
            flip = bool(self.rng.integers(2)) if self.mirror else False
            top, left = 0, 0
            if self.crop:
                if self.train:
                    top = int(self.rng.integers(h - self.crop + 1))
                    left = int(self.rng.integers(w - self.crop + 1))
                else:
                    top, left = (h - self.crop) // 2, (w - self.crop) // 2
            x = images[i, :, top:top + oh, left:left + ow].astype(np.float32)
            if mean is not None:
                x -= mean[:, top:top + oh, left:left + ow]
            x *= self.scale
            out[i] = x[:, :, ::-1] if flip else x
        return out
