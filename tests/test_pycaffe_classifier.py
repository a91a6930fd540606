"""caffe.Classifier (bnface_caffe/pycaffe/classifier.py) on constant-colour images, whose
class probabilities are worked out by hand (images already of image_dims: caffe.io's resize
would blur the borders); it needs caffe.io (skipped without it)."""
import numpy as np
import pytest

import bnface_caffe.pycaffe as caffe
from pycaffe_util import write

DEPLOY = """name: "cls"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 10 dim: 3 dim: 4 dim: 4 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_predict_on_constant_images(tmp_path):
    if not hasattr(caffe, "io"):
        with pytest.raises(Exception, match="needs caffe.io"):
            caffe.Classifier(write(tmp_path, "d.prototxt", DEPLOY), None)
        pytest.skip("caffe.io (bnface_caffe.pycaffe.io) is not in this tree")
    proto = write(tmp_path, "d.prototxt", DEPLOY)
    net = caffe.Net(proto, caffe.TEST)
    w = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]], np.float32) * 0.01
    net.params["fc"][0].data[...] = w
    net.params["fc"][1].data[...] = [0.1, 0.0, 0.2]
    net.save(str(tmp_path / "w.caffemodel"))
    clf = caffe.Classifier(proto, str(tmp_path / "w.caffemodel"), image_dims=(5, 7),
                           mean=np.array([0.1, 0.2, 0.3]), raw_scale=255, channel_swap=(2, 1, 0))
    colours = [np.array([0.2, 0.4, 0.6]), np.array([0.9, 0.1, 0.5])]
    images = [np.ones((5, 7, 3)) * c for c in colours]
    for oversample in (False, True):
        probs = clf.predict(images, oversample=oversample)
        for c, p in zip(colours, probs):
            pixel = c[::-1] * 255 - np.array([0.1, 0.2, 0.3])   # swap, scale, minus mean
            scores = w @ pixel + [0.1, 0.0, 0.2]
            want = np.exp(scores - scores.max())
            assert np.allclose(p, want / want.sum(), atol=1e-5)
