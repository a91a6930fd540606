"""Net::Init's wiring: layers created, connected, set up and logged, parameters owned or shared.

`wire(net_param, ...)` walks the (filtered, split-inserted) layers in order as Caffe does:
create the layer, connect its bottoms and tops ("name <- blob", "name -> blob (in-place)"),
set it up, log its top shapes and loss weights, then record who owns each parameter blob
(Net::AppendParam). A second pass decides which layers need backward (Net::Init's reverse
walk). Any mismatch is a UserError naming the layer. The result is a `Wiring`: plain data
that engine/net.py runs.
"""
from dataclasses import dataclass, field

from ..errors import UserError
from ..formats import net_log
from ..proto import caffe_pb2
from ..shapes import count, shape_string
from .layers import create_layer


@dataclass
class Node:
    """A layer and its place in the net."""
    layer: object
    bottoms: list                          # blob names read
    tops: list = field(default_factory=list)   # blob names written (auto tops included)
    loss_weights: list = field(default_factory=list)
    bottom_need_backward: list = field(default_factory=list)
    need_backward: bool = False
    bottom_shapes: list = field(default_factory=list)   # what the layer was last reshaped for


@dataclass
class ParamOwner:
    """A parameter blob that owns its memory (a learnable_params entry). Its multipliers are
    its own ParamSpec's, or adopted from a sharer that gives them explicitly (AppendParam)."""
    node: int
    blob: int
    name: str = ""
    lr_mult: float = 1.0
    decay_mult: float = 1.0
    given: set = field(default_factory=set)    # multipliers set explicitly by some ParamSpec

    def adopt(self, spec, what, error):
        if not spec.HasField(what):
            return
        value = getattr(spec, what)
        if what in self.given and getattr(self, what) != value:
            raise error(f"shared param '{self.name}' has mismatched {what} ({value} here, "
                        f"{getattr(self, what)} in its owner)")
        setattr(self, what, value)
        self.given.add(what)


@dataclass
class ParamSharer:
    """A parameter blob that computes with an owner's tensor (same `name` in its ParamSpec)."""
    node: int
    blob: int
    owner: int                             # index into Wiring.owners


@dataclass
class Wiring:
    nodes: list = field(default_factory=list)
    shapes: dict = field(default_factory=dict)        # blob name -> shape, in creation order
    input_blobs: list = field(default_factory=list)   # (name, node index, top index) of Input tops
    owners: list = field(default_factory=list)        # ParamOwner, learnable_params order
    sharers: list = field(default_factory=list)       # ParamSharer
    output_names: list = field(default_factory=list)  # alphabetical (Caffe's std::set)
    loss_weights: dict = field(default_factory=dict)  # output name -> loss weight


def layer_error(source, lp, message):
    return UserError(f"{source}: layer '{lp.name}' ({lp.type}): {message}")


def wire(net_param, phase, source, log, configure_layer):
    """Create and connect every layer of `net_param` (already filtered and split-inserted).
    `configure_layer(layer, lp)` gives each layer what the Net decides (device, mode, log)."""
    w = Wiring()
    known = set()        # every blob name made so far
    available = set()    # blobs not yet read by a later layer
    need_grad = {}       # blob name -> blob_need_backward
    owner_by_name = {}   # ParamSpec name -> index into w.owners
    memory = 0
    for lp_in in net_param.layer:
        lp = caffe_pb2.LayerParameter()
        lp.CopyFrom(lp_in)
        if not lp.HasField("phase"):
            lp.phase = phase
        err = lambda message, lp=lp: layer_error(source, lp, message)  # noqa: E731
        if len(lp.propagate_down) and len(lp.propagate_down) != len(lp.bottom):
            raise err(f"propagate_down must be given 0 or {len(lp.bottom)} times (once per "
                      f"bottom), got {len(lp.propagate_down)}")
        layer = create_layer(lp, lp.phase, f"{source}: ", log)
        configure_layer(layer, lp)
        layer.open()
        index = len(w.nodes)
        net_log.creating_layer_in_net(log, lp.name)
        node = Node(layer, list(lp.bottom))
        need_backward = False
        for j, blob in enumerate(lp.bottom):
            if blob not in available:
                raise err(f"bottom '{blob}' (bottom index {j}) is not produced by any earlier "
                          "layer; check the blob names and the layer order")
            net_log.bottom(log, lp.name, blob)
            available.discard(blob)
            wants = lp.propagate_down[j] if len(lp.propagate_down) else need_grad[blob]
            node.bottom_need_backward.append(wants)
            need_backward |= need_grad[blob]
        for j, blob in enumerate(lp.top):
            if j < len(lp.bottom) and blob == lp.bottom[j]:
                if not layer.in_place_ok:
                    raise err(f"does not allow in-place computation (top '{blob}' is its own "
                              "bottom); give the top another name")
                net_log.top(log, lp.name, blob, in_place=True)
            elif blob in known:
                raise err(f"top blob '{blob}' is produced by multiple sources; give it a unique "
                          "name (or make the layer in-place)")
            else:
                net_log.top(log, lp.name, blob)
                known.add(blob)
                need_grad[blob] = False
            available.add(blob)
            node.tops.append(blob)
            if lp.type == "Input":
                w.input_blobs.append((blob, index, j))
        if layer.loss_layer and not lp.top:   # Caffe's AutoTopBlobs: an anonymous loss top
            net_log.top(log, lp.name, None, automatic=True)
            node.tops.append(f"(automatic #{index})")
            need_grad[node.tops[-1]] = False
        _check_counts(layer, len(lp.bottom), len(node.tops), err)
        bottom_shapes = [w.shapes[b] for b in node.bottoms]
        layer.setup(bottom_shapes)
        if layer.loss_layer and not len(layer.param.loss_weight):
            layer.param.loss_weight.append(1.0)   # LossLayer: loss_weight 1 by default
        top_shapes = layer.reshape(bottom_shapes)
        node.bottom_shapes = bottom_shapes
        node.loss_weights = _loss_weights(layer, len(node.tops), err)
        net_log.setting_up(log, lp.name)
        for blob, shape, weight in zip(node.tops, top_shapes, node.loss_weights):
            w.shapes[blob] = tuple(shape)
            net_log.top_shape(log, shape, weight)
            memory += count(shape)
        net_log.memory_required(log, memory)
        _append_params(w, layer, index, owner_by_name, log, err)
        need_backward |= any(layer.param_grad)
        node.need_backward = need_backward
        if need_backward:
            for blob in node.tops:
                need_grad[blob] = True
        w.nodes.append(node)
    _analyse_backward(w.nodes, log)
    if net_param.force_backward:
        for node in w.nodes:
            node.need_backward = True
            node.bottom_need_backward = [need or node.layer.allow_force_backward(j)
                                         for j, need in enumerate(node.bottom_need_backward)]
            node.layer.param_grad = [True] * len(node.layer.blobs)
    if phase == caffe_pb2.TRAIN or net_param.force_backward:   # a net that runs backward
        _check_refused_backward(w.nodes, source)
    w.output_names = sorted(available)
    for name in w.output_names:
        net_log.produces_output(log, name)
    weights = {blob: weight for node in w.nodes for blob, weight in zip(node.tops, node.loss_weights)}
    w.loss_weights = {name: weights.get(name, 0.0) for name in w.output_names}
    net_log.initialization_done(log)
    return w


def _check_refused_backward(nodes, source):
    """Where Caffe's Backward would stop with LOG(FATAL) (a label input that needs a
    gradient, through propagate_down or force_backward), fail now with the reason."""
    for node in nodes:
        for j, need in enumerate(node.bottom_need_backward):
            why = node.need_backward and need and node.layer.backward_refused(j)
            if why:
                raise layer_error(source, node.layer.param,
                                  f"bottom {j} ('{node.bottoms[j]}') needs a gradient, but {why}; "
                                  "it must not need one (propagate_down: false for it, and no "
                                  "force_backward)")


def _check_counts(layer, num_bottoms, num_tops, err):
    for what, n, (lo, hi) in (("bottom", num_bottoms, layer.bottoms), ("top", num_tops, layer.tops)):
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise err(f"takes {want} {what} blob(s), got {n}")


def _loss_weights(layer, num_tops, err):
    given = layer.param.loss_weight
    if not len(given):
        return [0.0] * num_tops
    if len(given) != num_tops:
        raise err(f"loss_weight must be unspecified or given once per top ({num_tops}), "
                  f"got {len(given)}")
    return [float(x) for x in given]


def _append_params(w, layer, index, owner_by_name, log, err):
    """Net::AppendParam for each of the layer's blobs: a new owner, or a sharer of the owner
    named by its ParamSpec (shape checked, multipliers adopted)."""
    specs = list(layer.param.param)
    blobs = layer.blobs
    if len(specs) > len(blobs):
        raise err(f"too many param {{ }} entries: {len(specs)} for {len(blobs)} blob(s)")
    specs += [caffe_pb2.ParamSpec()] * (len(blobs) - len(specs))
    layer.param_grad = [spec.lr_mult != 0 and layer.learnable for spec in specs]
    for i, (blob, spec) in enumerate(zip(blobs, specs)):
        name = spec.name
        if not name or name not in owner_by_name:
            if name:
                owner_by_name[name] = len(w.owners)
            owner = ParamOwner(index, i, name, spec.lr_mult, spec.decay_mult)
            owner.given = {f for f in ("lr_mult", "decay_mult") if spec.HasField(f)}
            w.owners.append(owner)
            continue
        k = owner_by_name[name]
        owner = w.owners[k]
        o_layer = w.nodes[owner.node].layer
        o_blob = o_layer.blobs[owner.blob]
        net_log.sharing_parameters(log, name, o_layer.name, owner.blob)
        if spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE:
            if blob.numel() != o_blob.numel():
                raise err(f"cannot share param '{name}' owned by layer '{o_layer.name}': count "
                          f"mismatch, owner shape {shape_string(o_blob.shape)}, this layer's "
                          f"{shape_string(blob.shape)}")
        elif tuple(blob.shape) != tuple(o_blob.shape):
            raise err(f"cannot share param '{name}' owned by layer '{o_layer.name}': shape "
                      f"mismatch, owner shape {shape_string(o_blob.shape)}, this layer expects "
                      f"{shape_string(blob.shape)} (or use share_mode: PERMISSIVE)")
        owner.adopt(spec, "lr_mult", err)
        owner.adopt(spec, "decay_mult", err)
        w.sharers.append(ParamSharer(index, i, k))


def _analyse_backward(nodes, log):
    """Net::Init's reverse walk: which layers contribute to a loss (and log it)."""
    under_loss, skip = set(), set()
    for node in reversed(nodes):
        contributes = False
        skip_all = True
        for blob, weight in zip(node.tops, node.loss_weights):
            if weight or blob in under_loss:
                contributes = True
            if blob not in skip:
                skip_all = False
            if contributes and not skip_all:
                break
        if node.need_backward and skip_all:
            node.need_backward = False
            node.bottom_need_backward = [False] * len(node.bottoms)
        if not contributes:
            node.need_backward = False
        net_log.needs_backward(log, node.layer.name, node.need_backward)
        for j, blob in enumerate(node.bottoms):
            if contributes:
                under_loss.add(blob)
            else:
                node.bottom_need_backward[j] = False
            if not node.bottom_need_backward[j]:
                skip.add(blob)


def fold_batchnorm_scale(nodes):
    """BatchNorm then an in-place per-channel Scale on its top: let BatchNorm apply the scale
    and bias in its own kernel (y = xhat * gamma + beta), as PyTorch's affine batch_norm does;
    the Scale passes its bottom through. Nothing can read the unscaled values in between (a
    second reader would have a Split), and the blob holds what Caffe's would: only speed
    changes."""
    for bn, scale in zip(nodes, nodes[1:]):
        if bn.layer.type != "BatchNorm" or scale.layer.type != "Scale":
            continue
        s = scale.layer
        if (s.per_channel() and scale.bottoms == [bn.tops[0]] == scale.tops[:1]
                and not len(s.param.propagate_down) and not bn.loss_weights[0]
                and bn.layer.channels == s.blobs[0].shape[0]):
            bn.layer.scale_layer = s
            s.folded = True
