"""Net definitions and weights on disk, in Caffe's formats.

read_net: a text .prototxt NetParameter, upgraded (V0/V1 layers, input fields,
old BatchNorm params) like ReadNetParamsFromTextFileOrDie. read_caffemodel: a
binary NetParameter with blobs, upgraded the same way. write_caffemodel: Net::ToProto
serialised through a temporary file and a rename.
"""
from .. import prototxt
from ..proto import caffe_pb2
from .upgrade import upgrade_net


def read_net(path):
    return upgrade_net(prototxt.read_text(path, caffe_pb2.NetParameter), path)


def read_caffemodel(path):
    return upgrade_net(prototxt.read_binary(path, caffe_pb2.NetParameter), path)


def write_caffemodel(net, path, write_diff=False):
    prototxt.write_binary(net.to_proto(write_diff), path)
