"""Caffe layer types, one class each, found by their `type` string in LAYERS."""
from . import (affine, conv, data, hdf5_data, image_data, loss, memory_data,  # noqa: F401
               neuron, normalization, pooling, recurrent, softmax, structure)
from .base import LAYERS, Layer, create_layer, register  # noqa: F401
