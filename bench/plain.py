"""The paper nets as a plain PyTorch program: what a user would write by hand, the yardstick
for the engine's own overhead (bench_net.py, bench_train.py, bench_scaling.py)."""
import os
import sys

import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bnface_caffe.proto import caffe_pb2  # noqa: E402


class Plain(nn.Module):
    """The same net written directly in torch.nn, read off the generated NetParameter (so it is
    the net the generator makes, layer for layer): Convolution → Conv2d, BatchNorm + Scale →
    BatchNorm2d (affine), ReLU, Pooling (MAX ceil-mode, AVE), Dropout, InnerProduct → Linear."""

    def __init__(self, bn=None, classes=None, net_param=None):
        super().__init__()
        param = net_param or common.input_net_param(bn, 1, classes or common.CLASSES)
        layers, c = [], 1
        for layer in param.layer:
            kind = layer.type
            if kind == "Convolution":
                p = layer.convolution_param
                layers.append(nn.Conv2d(c, p.num_output, p.kernel_size[0], padding=p.pad[0],
                                        bias=p.bias_term))
                c = p.num_output
            elif kind == "BatchNorm":
                layers.append(nn.BatchNorm2d(c, eps=layer.batch_norm_param.eps,
                                             momentum=1 - layer.batch_norm_param.moving_average_fraction))
            elif kind == "ReLU":
                layers.append(nn.ReLU())
            elif kind == "Pooling":
                p = layer.pooling_param
                pool = nn.MaxPool2d if p.pool == caffe_pb2.PoolingParameter.MAX else nn.AvgPool2d
                layers.append(pool(p.kernel_size, p.stride, ceil_mode=True))
            elif kind == "Dropout":
                layers.append(nn.Dropout(layer.dropout_param.dropout_ratio))
            elif kind == "InnerProduct":
                layers.append(nn.Flatten())
                layers.append(nn.Linear(c, layer.inner_product_param.num_output))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
