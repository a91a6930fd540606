"""Helpers for the pycaffe tests: prototxt files in tmp_path, and `import caffe` left as it was."""
import sys

import pytest


@pytest.fixture
def caffe_modules_restored():
    """Python layers make `import caffe` mean bnface's pycaffe for the rest of the process;
    put sys.modules and sys.meta_path back so other tests see the `caffe` they expect."""
    saved = {k: v for k, v in sys.modules.items() if k == "caffe" or k.startswith("caffe.")}
    meta = list(sys.meta_path)
    yield
    for k in [k for k in sys.modules if k == "caffe" or k.startswith("caffe.")]:
        del sys.modules[k]
    sys.modules.update(saved)
    sys.meta_path[:] = meta


def write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return str(path)


HAND_NET = """name: "hand"
force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip" top: "out"
  inner_product_param { num_output: 1 } }
"""
