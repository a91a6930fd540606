"""caffe.Classifier (classifier.py): a deploy Net that classifies images, scaled and center-
cropped or oversampled (4 corners + center, and their mirrors, averaged), preprocessed by
caffe.io.Transformer. caffe.Detector (R-CNN windows) is not supported.
"""
import numpy as np

from ..errors import UserError
from ..proto import caffe_pb2
from .net import Net


def _io():
    import importlib.util
    if importlib.util.find_spec(f"{__package__}.io") is None:
        raise UserError("caffe.Classifier needs caffe.io (bnface_caffe.pycaffe.io), which this "
                        "bnface-caffe does not have yet")
    from . import io
    return io


class Classifier(Net):
    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None,
                 input_scale=None, raw_scale=None, channel_swap=None):
        Net.__init__(self, model_file, caffe_pb2.TEST, weights=pretrained_file)
        io = _io()
        name = self.inputs[0]
        self.transformer = io.Transformer({name: self.blobs[name].data.shape})
        self.transformer.set_transpose(name, (2, 0, 1))
        for value, setter in ((mean, self.transformer.set_mean),
                              (input_scale, self.transformer.set_input_scale),
                              (raw_scale, self.transformer.set_raw_scale),
                              (channel_swap, self.transformer.set_channel_swap)):
            if value is not None:
                setter(name, value)
        self.crop_dims = np.array(self.blobs[name].data.shape[2:])
        self.image_dims = image_dims if image_dims else self.crop_dims

    def predict(self, inputs, oversample=True):
        """Class probabilities (N x C) of N images (H x W x K arrays)."""
        io = _io()
        resized = np.zeros((len(inputs), self.image_dims[0], self.image_dims[1],
                            inputs[0].shape[2]), dtype=np.float32)
        for i, image in enumerate(inputs):
            resized[i] = io.resize_image(image, self.image_dims)
        if oversample:
            crops = io.oversample(resized, self.crop_dims)
        else:
            center = np.array(self.image_dims) / 2.0
            box = np.concatenate([center - self.crop_dims / 2.0,
                                  center + self.crop_dims / 2.0]).astype(int)
            crops = resized[:, box[0]:box[2], box[1]:box[3], :]
        name = self.inputs[0]
        batch = np.zeros(np.array(crops.shape)[[0, 3, 1, 2]], dtype=np.float32)
        for i, crop in enumerate(crops):
            batch[i] = self.transformer.preprocess(name, crop)
        predictions = self.forward_all(**{name: batch})[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1)).mean(1)
        return predictions


class Detector:
    """caffe.Detector: not supported."""

    def __init__(self, *args, **kwargs):
        raise UserError("caffe.Detector (R-CNN window detection) is not supported by "
                        "bnface-caffe's pycaffe; use caffe.Net and forward() on the crops")
