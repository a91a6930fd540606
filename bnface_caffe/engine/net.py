"""Net: a Caffe NetParameter wired into layers and run, as net.cpp does it.

Set-up follows Net::Init: the net is upgraded, filtered by the NetState, split layers are
inserted, then net_build.wire creates, connects, sets up and logs every layer ("Top shape:
64 32 50 50 (5120000)", "with loss weight", "Memory required for data") and records who
owns each parameter. Weights in and out (copy, share, ToProto) are in net_weights.py.

Running is plain PyTorch: forward calls each layer's torch ops in order and keeps the graph
when the net trains; backward seeds every loss top with its loss weight (Caffe's top diff)
and lets autograd add the gradients into Param.diff. Splits, in-place layers,
propagate_down and lr_mult 0 map onto tensor identity, rebinding of blob names, detach()
and requires_grad.
"""
from google.protobuf import text_format
import torch

from ..errors import UserError
from ..formats import net_log
from ..formats.glog import Glog
from ..formats.upgrade import upgrade_net
from ..proto import caffe_pb2
from ..shapes import shape_string
from . import compiled, net_weights, precision
from .net_build import fold_batchnorm_scale, wire
from .netparam import filter_net, insert_splits


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


class Net:
    def __init__(self, net_param, phase=caffe_pb2.TRAIN, stages=(), level=None, device="cpu",
                 fast=False, source=None, rank=0, world_size=1, logger=None, compile=False):
        self.source = source or net_param.name or "<net>"
        self.device = torch.device(device)
        self.fast = fast
        self.log = logger if logger is not None else Glog()
        precision.configure(fast)
        self.log.info("net.cpp:0", precision.describe(fast, self.device))
        param = upgrade_net(net_param, self.source, self.log)
        state = param.state
        if phase is not None:
            state.phase = phase
        if level is not None:
            state.level = level
        if stages:   # an unrolled recurrent net has no state at all, as in Caffe
            state.stage.extend(stages)
        self.phase = state.phase
        filtered = filter_net(param, state, self.log, self.source)
        net_log.initializing_net(self.log, text_format.MessageToString(filtered).rstrip("\n"))
        wired = insert_splits(filtered, self.source)
        self.name = wired.name
        self.force_backward = wired.force_backward

        def configure_layer(layer, lp):
            layer.fast, layer.device, layer.log = self.fast, self.device, self.log
            layer.channels_last = precision.channels_last(fast, self.device)
            if lp.type in ("Data", "HDF5Data", "ImageData"):
                layer.rank, layer.world_size = rank, world_size

        w = wire(wired, self.phase, self.source, self.log, configure_layer)
        self.nodes, self.shapes, self.input_blobs = w.nodes, w.shapes, w.input_blobs
        self.output_names, self.loss_weights = w.output_names, w.loss_weights
        self._owners, self._sharers = w.owners, w.sharers
        fold_batchnorm_scale(self.nodes)
        self._to_device()
        self._make_params(set_requires_grad=True)
        self._share_blobs()
        self.values = {}
        self._graph = None
        # pycaffe's hook: (node index, tops) -> tops, called after each layer's forward
        self.forward_hook = None
        self.compiled_runs = self._compile() if compile else {}

    # -- set-up ----------------------------------------------------------------------
    def _to_device(self):
        moved = {}
        for node in self.nodes:
            layer = node.layer
            new = []
            for blob in layer.blobs:
                if id(blob) not in moved:
                    # weights keep Caffe's layout: oneDNN/cuDNN reorder them per call anyway
                    moved[id(blob)] = blob.detach().to(self.device, torch.float32).contiguous()
                new.append(moved[id(blob)])
            layer.blobs = new

    def _share_blobs(self):
        """Net::ShareWeights: a sharing layer computes with its owner's tensor (viewed in
        its own shape under share_mode PERMISSIVE), so gradients of both uses add."""
        for sharer in self._sharers:
            owner = self._owners[sharer.owner]
            source = self.nodes[owner.node].layer.blobs[owner.blob]
            layer = self.nodes[sharer.node].layer
            shape = tuple(layer.blobs[sharer.blob].shape)
            layer.blobs[sharer.blob] = source if tuple(source.shape) == shape else source.view(shape)

    def _make_params(self, set_requires_grad):
        """learnable_params: owners in layer order, with their (possibly adopted) multipliers."""
        wants_grad = [self.nodes[o.node].layer.param_grad[o.blob] for o in self._owners]
        for sharer in self._sharers:
            wants_grad[sharer.owner] |= self.nodes[sharer.node].layer.param_grad[sharer.blob]
        self.learnable_params = []
        for owner, grad in zip(self._owners, wants_grad):
            layer = self.nodes[owner.node].layer
            leaf = layer.blobs[owner.blob]
            if set_requires_grad:
                leaf.requires_grad_(grad)
            self.learnable_params.append(Param(leaf, owner.lr_mult, owner.decay_mult, layer.name,
                                               owner.blob, owner.name))

    def _compile(self):
        """{first node index: CompiledRun} (engine/compiled.py), or {} with one log line saying
        why not."""
        why = compiled.available(self.device)
        if why:
            self.log.warning("net.cpp:0", f"torch.compile is unavailable here ({why}); running "
                                          "the layers eagerly")
            return {}
        runs = {first: compiled.CompiledRun(self.nodes, first, last, self.device, self.log)
                for first, last in compiled.runs(self.nodes)}
        self.log.info("net.cpp:0", f"Compiling {len(runs)} run(s) of layers with torch.compile "
                                   f"(backend {compiled.backend()})")
        return runs

    # -- running -----------------------------------------------------------------------
    @property
    def builds_graph(self):
        return self.phase == caffe_pb2.TRAIN or self.force_backward

    def forward(self, build_graph=None):
        """Run every layer once; returns the weighted loss (Caffe's Forward(&loss))."""
        loss = self._forward(build_graph)
        return 0.0 if loss is None else float(loss)

    def _forward(self, build_graph):
        """forward() with the loss left as a tensor (None without loss outputs)."""
        grad = self.builds_graph if build_graph is None else build_graph
        self.values = {}
        self._graph = None
        values = self.values
        terms = []
        with torch.set_grad_enabled(grad), precision.autocast(self.fast, self.device):
            skip_to = 0
            for index, node in enumerate(self.nodes):
                if index < skip_to:
                    continue
                run = self.compiled_runs.get(index)
                if run is not None:     # layers first..last in one compiled call (no losses)
                    run(values, grad)
                    skip_to = run.last + 1
                    continue
                bottoms = [values[b] for b in node.bottoms]
                if grad:
                    bottoms = [x if need else x.detach()
                               for x, need in zip(bottoms, node.bottom_need_backward)]
                shapes = [tuple(x.shape) for x in bottoms]
                if shapes != node.bottom_shapes:  # a data-dependent top (Filter) upstream:
                    node.layer.reshape(shapes)    # Caffe reshapes each layer on every forward
                    node.bottom_shapes = shapes
                tops = node.layer.forward(bottoms)
                if self.forward_hook is not None:
                    tops = self.forward_hook(index, tops)
                for blob, top, weight in zip(node.tops, tops, node.loss_weights):
                    values[blob] = top
                    if weight:
                        terms.append((top, weight))
        if grad:
            self._graph = terms
        if not terms:
            return None
        with torch.no_grad():
            return sum(top.detach().float().sum() * weight for top, weight in terms)

    def backward(self):
        """Add this pass's gradients into every Param.diff (Caffe's Backward)."""
        if self._graph is None:
            raise RuntimeError("Net.backward() needs a forward() that kept the graph "
                               "(TRAIN phase, force_backward, or forward(build_graph=True))")
        tensors, grads = [], []
        for top, weight in self._graph:
            if top.requires_grad:
                tensors.append(top)
                grads.append(torch.full_like(top, weight))
        self._graph = None
        if tensors:
            torch.autograd.backward(tensors, grads)

    def forward_backward(self):
        loss = self._forward(build_graph=True)
        self.backward()
        # read only now: on a GPU the iteration's one host sync waits behind the queued backward
        return 0.0 if loss is None else float(loss)

    def close(self):
        """Stop the Data layers' prefetch threads (they are daemons; this just frees them early)."""
        for node in self.nodes:
            node.layer.close()

    def clear_param_diffs(self):
        diffs = [p.diff for p in self.learnable_params]
        if diffs:   # torch's foreach kernels refuse an empty list (a net of loss layers only)
            torch._foreach_zero_(diffs)

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

    def set_input_arrays(self, data, labels):
        """pycaffe's Net.set_input_arrays: arrays for the MemoryData layer that must be
        the net's first layer (float32, C-contiguous, N a multiple of its batch_size)."""
        layer = self.nodes[0].layer if self.nodes else None
        if layer is None or layer.type != "MemoryData":
            raise UserError(f"{self.source}: set_input_arrays may only be called if the first "
                            "layer is a MemoryData layer")
        layer.set_input_arrays(data, labels)

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
    def copy_trained_layers_from(self, net_parameter, source="weights"):
        """Net::CopyTrainedLayersFrom (see net_weights.copy_trained_layers)."""
        return net_weights.copy_trained_layers(self, net_parameter, source)

    def copy_trained_layers_from_file(self, path):
        """--weights semantics for one .caffemodel file (refusals in formats/caffemodel.py);
        an HDF5 file (told apart by its content, as Caffe does) is a .caffemodel.h5."""
        return net_weights.copy_trained_layers_from_file(self, path)

    def share_trained_layers_with(self, other):
        """Net::ShareTrainedLayersWith: same-named layers use `other`'s blob tensors."""
        net_weights.share_trained_layers(self, other)
        self._make_params(set_requires_grad=False)

    def to_proto(self, write_diff=False):
        """Net::ToProto: every layer's parameters (as set up) with its blobs."""
        return net_weights.to_proto(self, write_diff)
