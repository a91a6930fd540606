"""Net: a Caffe NetParameter wired into layers, as net.cpp does it.

Set-up follows Net::Init step by step and logs the same lines: the net is
upgraded, filtered by the NetState, split layers are inserted, then each layer
is created, connected ("name <- blob", "name -> blob (in-place)"), set up, and
its tops logged ("Top shape: 64 32 50 50 (5120000)", "with loss weight",
"Memory required for data"). Any mismatch is a UserError naming the layer.

Running is plain PyTorch: forward calls each layer's torch ops in order and
keeps the graph when the net trains; backward seeds every loss top with its
loss weight (Caffe's top diff) and lets autograd add the gradients into
Param.diff. Splits, in-place layers, propagate_down and lr_mult 0 map onto
tensor identity, rebinding of blob names, detach() and requires_grad.
"""
import torch
from google.protobuf import text_format

from ..errors import UserError
from ..glog import cpp_number, log
from ..proto import caffe_pb2
from . import precision
from .blobs import (array_to_proto, count, proto_shape, proto_shape_matches, proto_to_array,
                    shape_string)
from .layers import create_layer
from .netparam import filter_net, insert_splits
from .upgrade import upgrade_net


class Param:
    """One learnable blob (a blob that owns its memory), in learnable_params order.

    `data` and `diff` are tensors the solver may update in place; `data` shares
    storage with the tensor the layers compute with (`leaf`), and `diff` is that
    tensor's .grad, so backward adds into it.
    """

    def __init__(self, leaf, lr_mult, decay_mult, layer_name, index, name=""):
        self.leaf = leaf
        self.data = leaf.detach()
        if leaf.grad is None:
            diff = torch.zeros_like(leaf)
            if leaf.requires_grad:
                leaf.grad = diff
        else:
            diff = leaf.grad
        self.diff = diff
        self.lr_mult = lr_mult
        self.decay_mult = decay_mult
        self.layer_name = layer_name
        self.index = index
        self.name = name

    def __repr__(self):
        return (f"Param({self.layer_name}[{self.index}] {tuple(self.data.shape)} "
                f"lr_mult={self.lr_mult} decay_mult={self.decay_mult})")


class Node:
    """A layer and its place in the net."""

    def __init__(self, layer, bottoms, tops):
        self.layer = layer
        self.bottoms = bottoms              # blob names read
        self.tops = tops                    # blob names written (auto tops included)
        self.loss_weights = [0.0] * len(tops)
        self.bottom_need_backward = []
        self.need_backward = False
        self.bottom_shapes = []             # the shapes the layer was last reshaped for


class Net:
    def __init__(self, net_param, phase=caffe_pb2.TRAIN, stages=(), level=None, device="cpu",
                 fast=False, source=None, rank=0, world_size=1, logger=log):
        self.source = source or net_param.name or "<net>"
        self.device = torch.device(device)
        self.fast = fast
        self.log = logger
        self.log.info("net.cpp:0", precision.describe(fast, self.device))
        param = upgrade_net(net_param, self.source, self.log)
        state = param.state
        if phase is not None:
            state.phase = phase
        if level is not None:
            state.level = level
        state.stage.extend(stages)
        self.phase = state.phase
        filtered = filter_net(param, state, self.source, self.log)
        text = text_format.MessageToString(filtered).rstrip("\n")
        self.log.info("net.cpp:53", "Initializing net from parameters: \n" + text)
        wired = insert_splits(filtered, self.source)
        self.name = wired.name
        self.force_backward = wired.force_backward
        self._rank, self._world_size = rank, world_size
        self._build(wired)
        self._fold_batchnorm_scale()
        self._to_device()
        self._make_params(set_requires_grad=True)
        self._share_blobs()
        self.values = {}
        self._graph = None

    # -- set-up ----------------------------------------------------------------------
    def _error(self, node_param, message):
        return UserError(f"{self.source}: layer '{node_param.name}' ({node_param.type}): {message}")

    def _build(self, wired):
        L = self.log
        self.nodes = []
        self.shapes = {}             # blob name -> shape
        known = set()                # every blob name made so far
        available = set()            # blobs not yet read by a later layer
        need_grad = {}               # blob name -> blob_need_backward
        self.input_blobs = []        # (name, node index, top index) of Input tops
        memory = 0
        param_owner = {}             # ParamSpec name -> its owner's position in _owners
        self._owners = []            # (node index, blob index, has_lr, lr, has_decay, decay, name)
        self._sharers = []           # (node index, blob index, owner position in _owners)
        for lp_in in wired.layer:
            lp = caffe_pb2.LayerParameter()
            lp.CopyFrom(lp_in)
            if not lp.HasField("phase"):
                lp.phase = self.phase
            if len(lp.propagate_down) and len(lp.propagate_down) != len(lp.bottom):
                raise self._error(lp, f"propagate_down must be given 0 or {len(lp.bottom)} times "
                                  f"(once per bottom), got {len(lp.propagate_down)}")
            layer = create_layer(lp, lp.phase, f"{self.source}: ", self.log)
            layer.fast, layer.device, layer.log = self.fast, self.device, self.log
            if lp.type == "Data":
                layer.rank, layer.world_size = self._rank, self._world_size
            layer.open()
            index = len(self.nodes)
            L.info("net.cpp:86", f"Creating Layer {lp.name}")
            node = Node(layer, list(lp.bottom), [])
            need_backward = False
            for j, blob in enumerate(lp.bottom):
                if blob not in available:
                    raise self._error(lp, f"bottom '{blob}' (bottom index {j}) is not produced by "
                                      "any earlier layer; check the blob names and the layer order")
                L.info("net.cpp:408", f"{lp.name} <- {blob}")
                available.discard(blob)
                wants = need_grad[blob]
                if len(lp.propagate_down):
                    wants = lp.propagate_down[j]
                node.bottom_need_backward.append(wants)
                need_backward |= need_grad[blob]
            for j, blob in enumerate(lp.top):
                if j < len(lp.bottom) and blob == lp.bottom[j]:
                    if not layer.in_place_ok:
                        raise self._error(lp, f"does not allow in-place computation (top '{blob}' "
                                          "is its own bottom); give the top another name")
                    L.info("net.cpp:369", f"{lp.name} -> {blob} (in-place)")
                elif blob in known:
                    raise self._error(lp, f"top blob '{blob}' is produced by multiple sources; "
                                      "give it a unique name (or make the layer in-place)")
                else:
                    L.info("net.cpp:382", f"{lp.name} -> {blob}")
                    known.add(blob)
                    need_grad[blob] = False
                available.add(blob)
                node.tops.append(blob)
                if lp.type == "Input":
                    self.input_blobs.append((blob, index, j))
            if layer.loss_layer and not lp.top:  # Caffe's AutoTopBlobs: an anonymous loss top
                L.info("net.cpp:382", f"{lp.name} -> (automatic)")
                node.tops.append(f"(automatic #{index})")
                need_grad[node.tops[-1]] = False
            self._check_counts(lp, layer, len(node.tops))
            bottom_shapes = [self.shapes[b] for b in node.bottoms]
            layer.setup(bottom_shapes)
            if layer.loss_layer and not len(layer.param.loss_weight):
                layer.param.loss_weight.append(1.0)  # LossLayer: loss_weight 1 by default
            top_shapes = layer.reshape(bottom_shapes)
            node.bottom_shapes = bottom_shapes
            if len(layer.param.loss_weight):
                if len(layer.param.loss_weight) != len(node.tops):
                    raise self._error(lp, f"loss_weight must be unspecified or given once per top "
                                      f"({len(node.tops)}), got {len(layer.param.loss_weight)}")
                node.loss_weights = [float(w) for w in layer.param.loss_weight]
            else:
                node.loss_weights = [0.0] * len(node.tops)
            L.info("net.cpp:124", f"Setting up {lp.name}")
            for blob, shape, weight in zip(node.tops, top_shapes, node.loss_weights):
                self.shapes[blob] = tuple(shape)
                L.info("net.cpp:131", f"Top shape: {shape_string(shape)}")
                if weight:
                    L.info("net.cpp:134", f"    with loss weight {cpp_number(weight)}")
                memory += count(shape)
            L.info("net.cpp:139", f"Memory required for data: {memory * 4}")
            self._append_params(lp, layer, index, param_owner)
            need_backward |= any(layer.param_grad)
            node.need_backward = need_backward
            if need_backward:
                for blob in node.tops:
                    need_grad[blob] = True
            self.nodes.append(node)
        self._analyse_backward()
        if self.force_backward:
            for node in self.nodes:
                node.need_backward = True
                node.bottom_need_backward = [
                    need or node.layer.allow_force_backward(j)
                    for j, need in enumerate(node.bottom_need_backward)]
                node.layer.param_grad = [True] * len(node.layer.blobs)
        self.output_names = sorted(available)
        for name in self.output_names:
            L.info("net.cpp:244", f"This network produces output {name}")
        self.loss_weights = {}
        for node in self.nodes:
            for blob, weight in zip(node.tops, node.loss_weights):
                self.loss_weights[blob] = weight
        self.loss_weights = {name: self.loss_weights.get(name, 0.0) for name in self.output_names}
        L.info("net.cpp:257", "Network initialization done.")

    def _check_counts(self, lp, layer, num_tops):
        for what, n, (lo, hi) in (("bottom", len(lp.bottom), layer.bottoms),
                                  ("top", num_tops, layer.tops)):
            if n < lo or (hi is not None and n > hi):
                want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None
                                                 else f"{lo} to {hi}")
                raise self._error(lp, f"takes {want} {what} blob(s), got {n}")

    def _append_params(self, lp, layer, index, param_owner):
        specs = list(layer.param.param)
        blobs = layer.blobs
        if len(specs) > len(blobs):
            raise self._error(lp, f"too many param {{ }} entries: {len(specs)} for "
                              f"{len(blobs)} blob(s)")
        default = caffe_pb2.ParamSpec()
        layer.param_grad = []
        for i in range(len(blobs)):
            spec = specs[i] if i < len(specs) else default
            layer.param_grad.append(spec.lr_mult != 0 and layer.learnable)
        for i, blob in enumerate(blobs):
            spec = specs[i] if i < len(specs) else default
            name = spec.name
            if not name or name not in param_owner:
                if name:
                    param_owner[name] = len(self._owners)
                self._owners.append([index, i, spec.HasField("lr_mult"), spec.lr_mult,
                                     spec.HasField("decay_mult"), spec.decay_mult, name])
                continue
            owner = param_owner[name]
            entry = self._owners[owner]
            o_layer = self.nodes[entry[0]].layer
            o_blob = o_layer.blobs[entry[1]]
            self.log.info("net.cpp:467", f"Sharing parameters '{name}' owned by layer "
                          f"'{o_layer.name}', param index {entry[1]}")
            if spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE:
                if blob.numel() != o_blob.numel():
                    raise self._error(lp, f"cannot share param '{name}' owned by layer "
                                      f"'{o_layer.name}': count mismatch, owner shape "
                                      f"{shape_string(o_blob.shape)}, this layer's "
                                      f"{shape_string(blob.shape)}")
            elif tuple(blob.shape) != tuple(o_blob.shape):
                raise self._error(lp, f"cannot share param '{name}' owned by layer "
                                  f"'{o_layer.name}': shape mismatch, owner shape "
                                  f"{shape_string(o_blob.shape)}, this layer expects "
                                  f"{shape_string(blob.shape)} (or use share_mode: PERMISSIVE)")
            for has, value, what in ((2, 3, "lr_mult"), (4, 5, "decay_mult")):
                if spec.HasField(what):
                    if entry[has] and entry[value] != getattr(spec, what):
                        raise self._error(lp, f"shared param '{name}' has mismatched {what} "
                                          f"({getattr(spec, what)} here, {entry[value]} in "
                                          f"'{o_layer.name}')")
                    entry[has], entry[value] = True, getattr(spec, what)
            self._sharers.append((index, i, owner))

    def _analyse_backward(self):
        """Net::Init's backward pass: which layers contribute to a loss (and log it)."""
        under_loss, skip = set(), set()
        for node in reversed(self.nodes):
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
            name = node.layer.name
            if node.need_backward:
                self.log.info("net.cpp:200", f"{name} needs backward computation.")
            else:
                self.log.info("net.cpp:202", f"{name} does not need backward computation.")
            for j, blob in enumerate(node.bottoms):
                if contributes:
                    under_loss.add(blob)
                else:
                    node.bottom_need_backward[j] = False
                if not node.bottom_need_backward[j]:
                    skip.add(blob)

    def _fold_batchnorm_scale(self):
        """BatchNorm then an in-place per-channel Scale on its top: let BatchNorm apply
        the scale and bias in its own kernel (y = xhat * gamma + beta), as PyTorch's
        affine batch_norm does; the Scale passes its bottom through. Nothing can read
        the unscaled values in between (a second reader would have a Split), and the
        blob holds what Caffe's would, so only speed changes."""
        for bn, scale in zip(self.nodes, self.nodes[1:]):
            if bn.layer.type != "BatchNorm" or scale.layer.type != "Scale":
                continue
            s = scale.layer
            if (s.per_channel() and scale.bottoms == [bn.tops[0]] == scale.tops[:1]
                    and not len(s.param.propagate_down) and not bn.loss_weights[0]
                    and bn.layer.channels == s.blobs[0].shape[0]):
                bn.layer.scale_layer = s
                s.folded = True

    def _to_device(self):
        moved = {}
        for node in self.nodes:
            layer = node.layer
            new = []
            for blob in layer.blobs:
                if id(blob) not in moved:
                    t = blob.detach().to(self.device, torch.float32)
                    if self.fast and t.dim() == 4:
                        t = t.contiguous(memory_format=torch.channels_last)
                    moved[id(blob)] = t
                new.append(moved[id(blob)])
            layer.blobs = new

    def _share_blobs(self):
        """Net::ShareWeights: a sharing layer computes with its owner's tensor (viewed in
        its own shape under share_mode PERMISSIVE), so gradients of both uses add."""
        for node_index, blob_index, owner in self._sharers:
            o_node, o_blob = self._owners[owner][:2]
            source = self.nodes[o_node].layer.blobs[o_blob]
            layer = self.nodes[node_index].layer
            shape = tuple(layer.blobs[blob_index].shape)
            layer.blobs[blob_index] = source if tuple(source.shape) == shape else source.view(shape)

    def _make_params(self, set_requires_grad):
        """learnable_params: owners in layer order, with their (possibly adopted) multipliers."""
        wants_grad = [self.nodes[n].layer.param_grad[i] for n, i, *_ in self._owners]
        for n, i, owner in self._sharers:
            wants_grad[owner] = wants_grad[owner] or self.nodes[n].layer.param_grad[i]
        self.learnable_params = []
        for k, (node_index, blob_index, _, lr, _, decay, name) in enumerate(self._owners):
            layer = self.nodes[node_index].layer
            leaf = layer.blobs[blob_index]
            if set_requires_grad:
                leaf.requires_grad_(wants_grad[k])
            self.learnable_params.append(Param(leaf, lr, decay, layer.name, blob_index, name))

    # -- running -----------------------------------------------------------------------
    @property
    def builds_graph(self):
        return self.phase == caffe_pb2.TRAIN or self.force_backward

    def forward(self, build_graph=None):
        """Run every layer once; returns the weighted loss (Caffe's Forward(&loss))."""
        grad = self.builds_graph if build_graph is None else build_graph
        precision.apply(self.fast)
        self.values = {}
        self._graph = None
        values = self.values
        terms = []
        with torch.set_grad_enabled(grad), precision.autocast(self.fast, self.device):
            for node in self.nodes:
                bottoms = [values[b] for b in node.bottoms]
                if grad:
                    bottoms = [x if need else x.detach()
                               for x, need in zip(bottoms, node.bottom_need_backward)]
                shapes = [tuple(x.shape) for x in bottoms]
                if shapes != node.bottom_shapes:  # a data-dependent top (Filter) upstream:
                    node.layer.reshape(shapes)    # Caffe reshapes each layer on every forward
                    node.bottom_shapes = shapes
                tops = node.layer.forward(bottoms)
                for blob, top, weight in zip(node.tops, tops, node.loss_weights):
                    values[blob] = top
                    if weight:
                        terms.append((top, weight))
        if grad:
            self._graph = terms
        if not terms:
            return 0.0
        with torch.no_grad():
            loss = sum(top.detach().float().sum() * weight for top, weight in terms)
        return float(loss)

    def backward(self):
        """Add this pass's gradients into every Param.diff (Caffe's Backward)."""
        if self._graph is None:
            raise RuntimeError("Net.backward() needs a forward() that kept the graph "
                               "(TRAIN phase, force_backward, or forward(build_graph=True))")
        precision.apply(self.fast)
        tensors, grads = [], []
        for top, weight in self._graph:
            if top.requires_grad:
                tensors.append(top)
                grads.append(torch.full_like(top, weight))
        self._graph = None
        if tensors:
            torch.autograd.backward(tensors, grads)

    def forward_backward(self):
        loss = self.forward(build_graph=True)
        self.backward()
        return loss

    def close(self):
        """Stop the Data layers' prefetch threads (they are daemons; this just frees them early)."""
        for node in self.nodes:
            node.layer.close()

    def clear_param_diffs(self):
        for p in self.learnable_params:
            p.diff.zero_()

    def outputs(self):
        return [(name, self.blob(name)) for name in self.output_names]

    def blob(self, name):
        """The current value of blob `name` as a float32 numpy array."""
        if name not in self.values:
            if name not in self.shapes:
                raise UserError(f"{self.source}: no blob named '{name}'; blobs are "
                                f"{', '.join(self.blob_names)}")
            raise UserError(f"{self.source}: blob '{name}' has no value yet; run forward() first")
        return self.values[name].detach().float().cpu().numpy()

    @property
    def blob_names(self):
        return list(self.shapes)

    @property
    def layers(self):
        return [node.layer for node in self.nodes]

    @property
    def params(self):
        """pycaffe's net.params: layer name -> list of blob tensors (layers with blobs)."""
        return {n.layer.name: n.layer.blobs for n in self.nodes if n.layer.blobs}

    # -- inputs --------------------------------------------------------------------------
    @property
    def input_names(self):
        return [name for name, _, _ in self.input_blobs]

    def _input(self, name):
        for blob, node_index, top_index in self.input_blobs:
            if blob == name:
                return self.nodes[node_index].layer, top_index
        raise UserError(f"{self.source}: '{name}' is not an input blob of the net; inputs are "
                        f"{', '.join(self.input_names) or 'none (it has no Input layer)'}")

    def set_input(self, name, array):
        """Give Input blob `name` a value of its current shape (see reshape)."""
        layer, i = self._input(name)
        value = torch.as_tensor(array, dtype=torch.float32).to(self.device)
        want = self.shapes[name]
        if tuple(value.shape) != tuple(want):
            raise UserError(f"{self.source}: input '{name}' must have shape {shape_string(want)}, "
                            f"got {shape_string(tuple(value.shape))}")
        layer.values[i] = value

    def reshape(self, input_shapes):
        """Give Input blobs new shapes and re-infer every top shape (Net::Reshape)."""
        for name, shape in input_shapes.items():
            layer, i = self._input(name)
            layer.set_shape(i, shape)
        for node in self.nodes:
            bottom_shapes = [self.shapes[b] for b in node.bottoms]
            node.bottom_shapes = bottom_shapes
            for blob, shape in zip(node.tops, node.layer.reshape(bottom_shapes)):
                self.shapes[blob] = tuple(shape)

    # -- weights -------------------------------------------------------------------------
    def _first_node(self, name):
        for node in self.nodes:
            if node.layer.name == name:
                return node
        return None

    def copy_trained_layers_from(self, net_parameter, source="weights"):
        """Net::CopyTrainedLayersFrom: copy blobs by layer name, checking counts and shapes.
        Everything is checked before anything is copied."""
        param = upgrade_net(net_parameter, source, self.log)
        plan = []
        for src in param.layer:
            node = self._first_node(src.name)
            if node is None:
                self.log.info("net.cpp:746", f"Ignoring source layer {src.name}")
                continue
            blobs = node.layer.blobs
            if len(src.blobs) != len(blobs):
                raise UserError(f"{source}: layer '{src.name}' holds {len(src.blobs)} blob(s) but "
                                f"the net's layer '{src.name}' ({node.layer.type}) has "
                                f"{len(blobs)}; incompatible number of blobs")
            for j, (sb, tb) in enumerate(zip(src.blobs, blobs)):
                if not proto_shape_matches(sb, tb.shape):
                    raise UserError(f"{source}: cannot copy param {j} weights from layer "
                                    f"'{src.name}': shape mismatch, source shape "
                                    f"{shape_string(proto_shape(sb))}, target shape "
                                    f"{shape_string(tuple(tb.shape))}; to learn this layer from "
                                    "scratch instead, rename it")
                plan.append((sb, tb))
        with torch.no_grad():
            for sb, tb in plan:
                values = torch.from_numpy(proto_to_array(sb).reshape(tuple(tb.shape)))
                tb.copy_(values)

    def copy_trained_layers_from_file(self, path):
        """--weights semantics for one .caffemodel file."""
        from .. import prototxt
        if str(path).endswith(".h5"):
            raise UserError(f"{path}: HDF5 caffemodels are not supported; convert it to a binary "
                            ".caffemodel")
        self.copy_trained_layers_from(prototxt.read_binary(path, caffe_pb2.NetParameter), path)

    def share_trained_layers_with(self, other):
        """Net::ShareTrainedLayersWith: same-named layers use `other`'s blob tensors."""
        for src in other.nodes:
            node = self._first_node(src.layer.name)
            if node is None:
                continue
            sblobs, tblobs = src.layer.blobs, node.layer.blobs
            if len(sblobs) != len(tblobs):
                raise UserError(f"{self.source}: layer '{src.layer.name}' has {len(tblobs)} "
                                f"blob(s), the net it shares with has {len(sblobs)}; "
                                "incompatible number of blobs")
            for j, (sb, tb) in enumerate(zip(sblobs, tblobs)):
                if tuple(sb.shape) != tuple(tb.shape):
                    raise UserError(f"{self.source}: cannot share param {j} weights from layer "
                                    f"'{src.layer.name}': shape mismatch, source shape "
                                    f"{shape_string(tuple(sb.shape))}, target shape "
                                    f"{shape_string(tuple(tb.shape))}")
                node.layer.blobs[j] = sb
        self._make_params(set_requires_grad=False)

    def to_proto(self, write_diff=False):
        """Net::ToProto: every layer's parameters (as set up) with its blobs."""
        diffs = {id(p.leaf): p.diff for p in self.learnable_params}
        out = caffe_pb2.NetParameter(name=self.name)
        for node in self.nodes:
            lp = out.layer.add()
            lp.CopyFrom(node.layer.param)
            lp.ClearField("blobs")
            for blob in node.layer.blobs:
                diff = diffs.get(id(blob)) if write_diff else None
                if write_diff and diff is None:
                    diff = torch.zeros_like(blob)
                lp.blobs.append(array_to_proto(blob, diff))
        return out
