"""Caffe layer types, one class each, found by their `type` string in LAYERS."""
from . import affine, conv, data, neuron, normalization, pooling, python, softmax, structure  # noqa: F401
from .base import LAYERS, Layer, create_layer, register  # noqa: F401
