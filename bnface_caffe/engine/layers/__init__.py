"""Caffe layer types, one class each, found by their `type` string in LAYERS."""
from . import (affine, conv, data, indexing, neuron, normalization, pooling,  # noqa: F401
               reduction, softmax, structure)
from .base import LAYERS, Layer, create_layer, layer_type_list, register  # noqa: F401
