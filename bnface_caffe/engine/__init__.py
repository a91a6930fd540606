"""The Caffe-faithful engine: Caffe nets executed with PyTorch ops.

    from bnface_caffe.engine import Net, read_net
    net = Net(read_net("deploy.prototxt"), phase=caffe_pb2.TEST)
"""
from ..formats.upgrade import read_net  # noqa: F401
from .layers import layer_type_list  # noqa: F401
from .net import Net, Param  # noqa: F401
