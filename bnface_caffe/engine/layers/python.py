"""Python (python_layer.hpp, layer_factory.cpp's GetPythonLayer): a layer written in Python.

`python_param { module: "m" layer: "L" param_str: "..." }` names a class that Caffe imports
with Python's own import (sys.path, so PYTHONPATH or the script's folder) and constructs with
the LayerParameter. The class subclasses caffe.Layer (`PythonLayer` here; bnface_caffe.pycaffe
exports it as caffe.Layer) and Caffe calls it on lists of Blobs whose .data and .diff are
numpy arrays: `param_str` and `phase` are set, then setup(bottom, top) once; reshape(bottom,
top) before every forward; forward(bottom, top); backward(top, propagate_down, bottom). Its
own parameters are `self.blobs` (add_blob), learned like any layer's. A Python layer has no
default loss weight (give `loss_weight` to make it a loss).

Inside the engine's whole-net pass the layer is a torch.autograd.Function: forward copies the
bottom tensors into the bottom blobs and calls reshape + forward; backward puts the incoming
gradients in the top blobs' diff, calls backward, and hands the bottom diffs back. The layer
writes its parameter diffs itself, straight into the tensors the solver reads (its blobs
adopt the engine's parameter tensors and their .grad). pycaffe's layer-by-layer runner calls
the layer on the net's own blobs instead (`bind`).

Errors: a module that cannot be imported, a missing class, or an exception inside the layer's
code become one line naming the layer, its module and class (an exception keeps its type, so
`except ValueError` still catches it).
"""
import importlib

import torch

from ...errors import UserError, like
from ..blob import Blob, BlobVec
from .base import Layer, register


class PythonLayer:
    """What a Python layer subclasses (pycaffe's caffe.Layer)."""

    def __init__(self, param=None):
        self.layer_param = param

    @property
    def blobs(self):
        """The layer's own parameter blobs (a BlobVec: add_blob(*shape))."""
        blobs = self.__dict__.get("_blobs")
        if blobs is None:
            blobs = self.__dict__["_blobs"] = BlobVec()
        return blobs

    @property
    def type(self):
        return "Python"

    def setup(self, bottom, top):
        """Layer::LayerSetUp: nothing by default."""

    def reshape(self, bottom, top):
        raise NotImplementedError("a Python layer must define reshape(self, bottom, top)")

    def forward(self, bottom, top):
        raise NotImplementedError("a Python layer must define forward(self, bottom, top)")

    def backward(self, top, propagate_down, bottom):
        raise NotImplementedError("a Python layer must define backward(self, top, "
                                  "propagate_down, bottom)")


def install_caffe_module():
    """`import caffe` inside a layer's module means bnface_caffe.pycaffe (as under the pycaffe
    runner). Imported here, at run time: the engine otherwise never imports pycaffe."""
    from ...pycaffe import modules
    modules.install()


@register
class Python(Layer):
    type = "Python"
    bottoms = (0, None)
    tops = (0, None)

    def open(self):
        p = self.param.python_param
        self.module_name, self.class_name = p.module, p.layer
        self.what = f"layer '{self.name}' (Python {self.module_name}.{self.class_name})"
        if not p.module or not p.layer:
            raise self.error("python_param needs module and layer (the Python module and the "
                             "class in it)")
        cls = self._load_class()
        self.py = self.call("__init__", cls, self.param)
        if not isinstance(self.py, PythonLayer):
            raise UserError(f"{self.what}: class {self.class_name} is not a subclass of caffe.Layer "
                            f"(bnface_caffe.pycaffe's); make it `class {self.class_name}"
                            "(caffe.Layer)` with `import caffe`")
        for proto in self.param.blobs:        # Caffe's Layer constructor loads them first
            from ...formats.blobproto import proto_shape, proto_to_array
            blob = Blob(proto_shape(proto))
            blob.set_data(torch.from_numpy(proto_to_array(proto).reshape(proto_shape(proto))))
            self.py.blobs.append(blob)
        self.bottom_blobs, self.top_blobs = [], []
        self.bound = False

    def _load_class(self):
        install_caffe_module()
        name = self.module_name
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.split(".")[0] == err.name.split(".")[0]:
                raise UserError(f"{self.what}: cannot import module '{name}': no {name}.py on "
                                "the Python path; put its folder on PYTHONPATH (or next to the "
                                "script that builds the net)") from None
            raise like(ModuleNotFoundError, f"{self.what}: importing module '{name}' failed: "
                                            f"{_one_line(err)}") from err
        except Exception as err:  # noqa: BLE001 - the module's own code failed
            raise like(type(err), f"{self.what}: importing module '{name}' raised "
                                  f"{type(err).__name__}: {_one_line(err)}") from err
        cls = getattr(module, self.class_name, None)
        if cls is None:
            where = getattr(module, "__file__", None) or name
            raise UserError(f"{self.what}: module '{name}' ({where}) has no class "
                            f"'{self.class_name}'")
        return cls

    def call(self, method, fn, *args):
        """Run the layer's own code; its exceptions become one line naming the layer."""
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001
            raise like(type(err), f"{self.what}: {method}() raised {type(err).__name__}: "
                                  f"{_one_line(err)}") from err
        finally:
            for blob in self._all_blobs():
                blob.push()

    def _all_blobs(self):
        return list(getattr(self, "bottom_blobs", [])) + list(getattr(self, "top_blobs", [])) \
            + list(self.py.blobs if hasattr(self, "py") else [])

    # -- set-up -------------------------------------------------------------------------
    def setup(self, bottom_shapes):
        self.bottom_blobs = [Blob(shape, self.device) for shape in bottom_shapes]
        bottom_names = list(self.param.bottom)
        self.top_blobs = []
        for j, name in enumerate(self.param.top):
            in_place = j < len(bottom_names) and bottom_names[j] == name
            self.top_blobs.append(self.bottom_blobs[j] if in_place else Blob((), self.device))
        self.py.param_str = self.param.python_param.param_str
        self.py.phase = int(self.phase)
        self.call("setup", self.py.setup, self.bottom_blobs, self.top_blobs)
        self.blobs = [blob.data_tensor() for blob in self.py.blobs]

    def bind(self, bottom_blobs, top_blobs):
        """Compute on these blobs from now on (pycaffe's net blobs, as Caffe's layer would)."""
        self.bottom_blobs, self.top_blobs = list(bottom_blobs), list(top_blobs)
        self.bound = True

    def bind_params(self):
        """The layer's own blobs compute with the engine's parameter tensors (and their
        .grad, which the solver reads), whatever the Net did to them since set-up."""
        for blob, tensor in zip(self.py.blobs, self.blobs):
            blob.adopt(tensor, tensor.grad)

    def reshape(self, bottom_shapes):
        for blob, shape in zip(self.bottom_blobs, bottom_shapes):
            if tuple(blob.shape) != tuple(shape):
                blob.reshape(*shape)
        self.run_reshape(self.bottom_blobs, self.top_blobs)
        return [tuple(blob.shape) for blob in self.top_blobs]

    # -- running on blobs (pycaffe's runner calls these directly) -------------------------
    def run_reshape(self, bottom, top):
        self.bind_params()
        self.call("reshape", self.py.reshape, bottom, top)

    def run_forward(self, bottom, top):
        """Layer::Forward: Reshape, then Forward."""
        self.run_reshape(bottom, top)
        self.call("forward", self.py.forward, bottom, top)

    def run_backward(self, top, propagate_down, bottom):
        self.bind_params()
        self.call("backward", self.py.backward, top, list(propagate_down), bottom)

    # -- in the engine's whole-net pass -----------------------------------------------------
    def forward(self, bottoms):
        params = [t for t in self.blobs if t.requires_grad]
        wants_graph = torch.is_grad_enabled() and (params or any(b.requires_grad for b in bottoms))
        if wants_graph and self.top_blobs:
            return list(_PythonFunction.apply(self, len(bottoms), *bottoms, *params))
        with torch.no_grad():
            return self.forward_values(bottoms)

    def forward_values(self, bottoms):
        for blob, x in zip(self.bottom_blobs, bottoms):
            blob.set_data(x)
        self.run_forward(self.bottom_blobs, self.top_blobs)
        return [blob.data_tensor().clone() for blob in self.top_blobs]

    def backward_values(self, top_grads, propagate_down):
        for blob, grad in zip(self.top_blobs, top_grads):
            if grad is None:
                grad = torch.zeros(blob.shape, device=self.device)
            blob.set_diff(grad)
        self.run_backward(self.top_blobs, propagate_down, self.bottom_blobs)
        return [blob.diff_tensor().clone() if need else None
                for blob, need in zip(self.bottom_blobs, propagate_down)]


class _PythonFunction(torch.autograd.Function):
    """The layer inside autograd: its own forward and backward, on numpy blobs."""

    @staticmethod
    def forward(ctx, layer, num_bottoms, *tensors):
        ctx.layer, ctx.num_bottoms = layer, num_bottoms
        ctx.num_params = len(tensors) - num_bottoms
        return tuple(layer.forward_values(tensors[:num_bottoms]))

    @staticmethod
    def backward(ctx, *grads):
        n = ctx.num_bottoms
        propagate_down = list(ctx.needs_input_grad[2:2 + n])
        bottom_grads = ctx.layer.backward_values(grads, propagate_down)
        # parameter diffs: written by the layer itself into the tensors the solver reads
        return (None, None, *bottom_grads, *([None] * ctx.num_params))


def _one_line(err):
    text = str(err).strip() or type(err).__name__
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())

