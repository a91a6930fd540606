"""The lines pycaffe itself logs (python/caffe/_caffe.cpp), written in one place."""
from .lines import line

message = line("_caffe.cpp:68", "{}")                 # caffe.log(s)
_deprecated = line("_caffe.cpp:139", "DEPRECATION WARNING - deprecated use of Python interface",
                   "W")
_use_instead = line("_caffe.cpp:140", "Use this instead (with the named \"weights\" parameter):",
                    "W")
_instead = line("_caffe.cpp:142", "Net('{}', {}, weights='{}')", "W")


def deprecated_net_constructor(log, network_file, phase, weights):
    """Net(network_file, weights, phase): the legacy constructor's three warnings."""
    _deprecated(log)
    _use_instead(log)
    _instead(log, network_file, phase, weights)
