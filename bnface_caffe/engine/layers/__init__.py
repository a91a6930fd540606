"""Caffe layer types, one class each, found by their `type` string in LAYERS."""
from . import (affine, conv, data, hdf5_data, image_data, indexing, loss,  # noqa: F401
               memory_data, neuron, normalization, pooling, recurrent, reduction, softmax,
               structure)
from .base import LAYERS, Layer, create_layer, layer_type_list, register  # noqa: F401
