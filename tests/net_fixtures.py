"""The paper's deploy nets at toy widths with random weights (and BatchNorm statistics that
are not the fillers' zeros), written as prototxt + caffemodel for tool tests."""
import torch

from bnface_caffe.architectures import NetOptions, build_net
from bnface_caffe.engine import Net
from bnface_caffe.formats import caffemodel, prototxt
from bnface_caffe.formats.glog import Glog
from bnface_caffe.proto import caffe_pb2

TOY_WIDTHS = (4, 6, 6, 8, 8, 10, 10, 12)
WEIGHTED = ("Convolution", "Deconvolution", "InnerProduct")


def paper_deploy(folder, bn, widths=TOY_WIDTHS, num_classes=5, seed=0):
    """(deploy path, weights path, Net) of the paper's BN or baseline deploy net."""
    param = build_net(NetOptions(bn=bn, deploy=True, num_classes=num_classes,
                                 widths=tuple(widths), filler="msra"))
    path = folder / f"{'bn' if bn else 'baseline'}_deploy.prototxt"
    prototxt.write_text(param, path)
    torch.manual_seed(seed)
    net = Net(param, phase=caffe_pb2.TEST, logger=Glog(stderr=False))
    randomise(net, seed)
    weights = folder / f"{'bn' if bn else 'baseline'}.caffemodel"
    caffemodel.write(net.to_proto(), weights)
    return path, weights, net


def randomise(net, seed=0):
    """Random values for every blob: weights at He scale (so activations and softmax stay
    in a useful range), positive running variances and a BatchNorm moving-average factor
    that is not 1 (so a converter must divide it out)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            for i, blob in enumerate(layer.blobs):
                values = torch.randn(blob.shape, generator=g) * 0.3
                if layer.type == "BatchNorm":
                    factor = 37.25
                    values = [values * factor, (values.abs() + 0.5) * factor,
                              torch.full(blob.shape, factor)][i]
                if layer.type in ("Scale", "PReLU") and i == 0:
                    values = values + 1.0
                if layer.type in WEIGHTED and i == 0:
                    fan_in = max(1, blob[0].numel())
                    values = values / 0.3 * (2.0 / fan_in) ** 0.5
                blob.copy_(values)
