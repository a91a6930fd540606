"""The Layer base class and the type registry.

A layer mirrors Caffe's Layer: `setup` (LayerSetUp: read the parameters, make
the parameter blobs), `reshape` (top shapes from bottom shapes, with Caffe's
checks) and `forward` (torch ops on tensors). Backward is torch autograd; a
layer whose gradient differs from what autograd would give wraps its own
torch.autograd.Function. Adding a layer = one class with @register + one test.
"""
import torch

from ...errors import UserError
from ...formats import net_log
from ...formats.glog import Glog
from .. import fillers
from ...formats.blobproto import proto_shape, proto_shape_matches, proto_to_array
from ...shapes import canonical_axis, shape_string

LAYERS = {}


def register(cls):
    LAYERS[cls.type] = cls
    return cls


def layer_type_list():
    """Every supported layer type, sorted (pycaffe's caffe.layer_type_list())."""
    return sorted(LAYERS)


def create_layer(param, phase, where="", logger=None):
    """A new layer of `param.type` (Caffe's LayerRegistry::CreateLayer)."""
    log = logger if logger is not None else Glog.silent()
    net_log.creating_layer(log, param.name)
    cls = LAYERS.get(param.type)
    if cls is None:
        what = f"unknown layer type '{param.type}'" if param.type else "no layer type given"
        raise UserError(f"{where}layer '{param.name}': {what}; the engine supports "
                        f"{', '.join(layer_type_list())}")
    layer = cls(param, phase)
    layer.log = log
    return layer


class Layer:
    type = ""
    bottoms = (1, 1)       # (min, max) bottom count; max None = any number
    tops = (1, 1)          # (min, max) top count
    loss_layer = False     # Caffe's LossLayer: loss_weight 1 on top 0 by default, auto top
    in_place_ok = True
    learnable = True       # False: blobs are statistics, never differentiated (BatchNorm)

    def __init__(self, param, phase):
        self.param = param          # our own copy; setup may add loss_weight / ParamSpec
        self.name = param.name
        self.phase = phase
        self.blobs = []             # torch tensors in Caffe's blob order
        self.param_grad = []        # per blob: this layer computes its gradient (lr_mult != 0)
        self.fast = False           # set by Net: fast (autocast) mode
        self.device = "cpu"         # set by Net: where tops made from nothing (data) go
        self.log = Glog.silent()    # create_layer gives the net's logger

    # -- helpers -------------------------------------------------------------------
    def error(self, message):
        return UserError(f"layer '{self.name}' ({self.type}): {message}")

    def axis_of(self, axis, shape):
        """Caffe's CanonicalAxisIndex (negative counts from the end), or a UserError."""
        a = canonical_axis(axis, len(shape))
        if a is None:
            raise self.error(f"axis {axis} is out of range for the {len(shape)}-axis input "
                             f"{shape_string(shape)}")
        return a

    def legacy_dim(self, shape, index):
        """Blob::LegacyShape (num/channels/height/width): axes past the end count as 1;
        Caffe refuses these accessors on blobs of more than 4 axes."""
        if len(shape) > 4:
            raise self.error(f"input {shape_string(shape)} has more than 4 axes; this layer "
                             "reads it as num x channels x height x width")
        return int(shape[index]) if index < len(shape) else 1

    def make_blobs(self, specs):
        """Create the parameter blobs from [(shape, FillerParameter)], or take the
        ones the LayerParameter already carries (Caffe: 'Skipping parameter
        initialization'), checking their shapes."""
        if len(self.param.blobs):
            net_log.skipping_parameter_initialization(self.log)
            if len(self.param.blobs) != len(specs):
                raise self.error(f"the layer definition carries {len(self.param.blobs)} blobs, "
                                 f"expected {len(specs)}")
            self.blobs = []
            for i, (shape, _) in enumerate(specs):
                blob = self.param.blobs[i]
                if not proto_shape_matches(blob, shape):
                    raise self.error(f"blob {i} has shape {shape_string(proto_shape(blob))}, "
                                     f"expected {shape_string(shape)}")
                self.blobs.append(torch.from_numpy(proto_to_array(blob).reshape(shape).copy()))
        else:
            self.blobs = [fillers.fill(f, shape, where=f"layer '{self.name}'") for shape, f in specs]

    def make_weight_and_bias(self, weight_shape, p):
        """Blobs [weight, bias] (bias when p.bias_term) from a Convolution- or
        InnerProduct-style parameter: weight_filler, bias_filler, bias_term, num_output."""
        self.bias_term = p.bias_term
        specs = [(weight_shape, p.weight_filler)]
        if self.bias_term:
            specs.append(((p.num_output,), p.bias_filler))
        self.make_blobs(specs)

    def weight(self, i):
        """Blob i as this layer computes with it: detached when this layer must not
        produce its gradient (lr_mult 0 here while a sharer learns it)."""
        blob = self.blobs[i]
        return blob if self.param_grad[i] else blob.detach()

    # -- the Caffe layer interface ---------------------------------------------------
    def open(self):
        """What Caffe's layer constructor does beyond storing the parameters (the Data
        layer opens its database here); called by Net before connecting the layer."""

    def setup(self, bottom_shapes):
        """LayerSetUp: read parameters, create blobs."""

    def reshape(self, bottom_shapes):
        """Top shapes (tuples) from bottom shapes; raise self.error(...) on a mismatch."""
        raise NotImplementedError

    def forward(self, bottoms):
        """List of top tensors from the list of bottom tensors."""
        raise NotImplementedError

    def allow_force_backward(self, bottom_index):
        return True

    def backward_refused(self, bottom_index):
        """Why Caffe's Backward stops with LOG(FATAL) when this bottom needs a gradient
        (e.g. a loss's label input), or None. Net turns it into a UserError at set-up."""
        return None

    def close(self):
        """Release what the layer holds open (the Data layer's reader thread)."""
