"""Caffe layer types, one class each, found by their `type` string in LAYERS."""
from . import (affine, conv, data, loss, neuron, normalization, pooling,  # noqa: F401
               recurrent, softmax, structure)
from .base import LAYERS, Layer, create_layer, register  # noqa: F401
