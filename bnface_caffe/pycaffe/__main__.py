"""python -m bnface_caffe.pycaffe SCRIPT.py [ARGS...]: run a pycaffe script on the engine."""
from ..cli.pycaffe import entry

entry("bnface-pycaffe")
