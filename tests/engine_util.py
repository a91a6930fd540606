"""Helpers shared by the engine tests: build one layer or a small net from prototxt text."""
import io

import torch
from google.protobuf import text_format

from bnface_caffe.engine.layers import create_layer
from bnface_caffe.formats.glog import Glog
from bnface_caffe.proto import caffe_pb2


def layer_param(text):
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def net_param(text):
    return text_format.Parse(text, caffe_pb2.NetParameter())


def make_layer(text, bottom_shapes, phase=caffe_pb2.TRAIN, double=True):
    """A set-up layer (Caffe's SetUp) whose blobs are float64 leaves needing grad."""
    layer = create_layer(layer_param(text), phase)
    layer.setup([tuple(s) for s in bottom_shapes])
    tops = layer.reshape([tuple(s) for s in bottom_shapes])
    layer.param_grad = [True] * len(layer.blobs)
    if double:
        layer.blobs = [b.double().requires_grad_(layer.learnable) for b in layer.blobs]
    return layer, tops


def captured_log():
    """A Glog writing into a string buffer (no stderr): returns (logger, buffer)."""
    logger = Glog(stderr=False)
    buffer = io.StringIO()
    logger.sinks.append(buffer)
    return logger, buffer


def messages(buffer):
    """The message part (after '] ') of every captured log line."""
    return [line.split("] ", 1)[1] for line in buffer.getvalue().splitlines() if "] " in line]


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64)
