"""bnface-caffe: a Caffe-faithful toolkit for the BN face-recognition paper."""
__version__ = "0.1.0"
