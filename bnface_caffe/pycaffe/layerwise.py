"""A net run layer by layer over its blobs, as Net::ForwardFromTo / BackwardFromTo run it,
and the blobs kept in step when the engine runs the whole net at once (solver.step).

Every blob is persistent memory (engine/blob.py). Forward of layer i reads its bottom blobs'
current values, whoever wrote them (an earlier layer, or the user through .data), and writes
its tops; layers Caffe's Forward leaves alone (Input; DummyData tops with a constant filler)
write nothing, so what the user put there stays. A layer that needs backward runs its torch
forward on fresh leaf copies of its bottoms and keeps that small graph; backward of layer i
reads its top blobs' .diff (a loss top's diff holds its loss weight, set up once as Caffe's
SetLossWeights does), overwrites the diffs of the bottoms that need one, and adds into its
parameters' diffs, with torch.autograd.grad on the layer's own graph. So start/end ranges,
diffs written by the user, in-place layers (one blob, overwritten) and Python layers (called
on the blobs themselves) compose as in Caffe. Without a graph from a forward (backward
first, or the weights changed since), the layer's forward is re-run on the current bottoms.

The engine's whole-net pass (engine/net.py, what the solver's loop calls) stays the fast path
for training: a hook feeds it the blobs Caffe leaves alone, keeps each layer's tops, and
afterwards `pull` copies the last pass's values into the blobs (and, where backward ran, the
gradient of each blob's first producer: Caffe's diff after an in-place chain).
"""
import contextlib

import torch

from ..engine.layers.python import Python as PythonLayerType
from ..errors import like


def constant_dummy_tops(lp):
    """{top index: value} for DummyData tops whose filler is constant (filled once, at set-up)."""
    p = lp.dummy_data_param
    fillers = list(p.data_filler)
    constants = {}
    for i in range(len(lp.top)):
        spec = fillers[i] if len(fillers) > 1 else (fillers[0] if fillers else None)
        if spec is None or spec.type == "constant":
            constants[i] = spec.value if spec is not None else 0.0
    return constants


class LayerRunner:
    def __init__(self, engine, blobs):
        self.engine = engine                 # the engine's Net
        self.nodes = engine.nodes
        self.blobs = blobs                   # blob name -> Blob
        self.graphs = {}                     # node index -> (bottom leaves, tops)
        self.reshaped_for = {i: [tuple(engine.shapes[b]) for b in node.bottoms]
                             for i, node in enumerate(self.nodes)}
        self.constants = {}                  # node index -> {top index: constant} (DummyData)
        self.kept = {}                       # node index -> top indices its forward never writes
        for i, node in enumerate(self.nodes):
            if node.layer.type == "Input":
                self.kept[i] = set(range(len(node.tops)))
            elif node.layer.type == "DummyData":
                self.constants[i] = constant_dummy_tops(node.layer.param)
                self.kept[i] = set(self.constants[i])
        self.callbacks = {"before_forward": [], "after_forward": [],
                          "before_backward": [], "after_backward": []}
        self.recorded = {}                   # node index -> tops of the engine's last pass
        self._param_cache = (None, {})
        engine.forward_hook = self._engine_hook

    def is_python(self, i):
        return isinstance(self.nodes[i].layer, PythonLayerType)

    def _blobs_of(self, names):
        return [self.blobs[name] for name in names]

    # -- forward -------------------------------------------------------------------------
    def forward(self, start, end):
        loss = 0.0
        for i in range(start, end + 1):
            for callback in self.callbacks["before_forward"]:
                callback(i)
            loss += self._forward_layer(i)
            for callback in self.callbacks["after_forward"]:
                callback(i)
        return loss

    def _forward_layer(self, i):
        node = self.nodes[i]
        bottoms, tops = self._blobs_of(node.bottoms), self._blobs_of(node.tops)
        if node.layer.type == "Input":
            pass                                   # InputLayer::Forward does nothing
        elif self.is_python(i):
            self.graphs.pop(i, None)
            node.layer.run_forward(bottoms, tops)
        else:
            values = [blob.data_tensor() for blob in bottoms]
            shapes = [tuple(blob.shape) for blob in bottoms]
            if shapes != self.reshaped_for[i]:     # Layer::Forward reshapes first
                node.layer.reshape(shapes)
                self.reshaped_for[i] = shapes
            outputs = self._run(i, values)
            kept = self.kept.get(i, ())
            for j, (blob, value) in enumerate(zip(tops, outputs)):
                if j not in kept:
                    blob.set_data(value)
        loss = 0.0
        for blob, weight in zip(tops, node.loss_weights):
            if weight:   # Caffe: the dot product of the top's data and diff (the loss weight)
                loss += float(torch.dot(blob.data_tensor().reshape(-1),
                                        blob.diff_tensor().reshape(-1)))
        return loss

    def _run(self, i, values):
        node = self.nodes[i]
        if not node.need_backward:
            self.graphs.pop(i, None)
            with torch.no_grad():
                return node.layer.forward(values)
        leaves = [x.detach().clone().requires_grad_(bool(need))
                  for x, need in zip(values, node.bottom_need_backward)]
        with torch.enable_grad():
            outputs = node.layer.forward(leaves)
        self.graphs[i] = (leaves, outputs)
        return outputs

    # -- backward ------------------------------------------------------------------------
    def backward(self, start, end):
        for i in range(start, end - 1, -1):
            for callback in self.callbacks["before_backward"]:
                callback(i)
            if self.nodes[i].need_backward:
                self._backward_layer(i)
            for callback in self.callbacks["after_backward"]:
                callback(i)

    def _backward_layer(self, i):
        node = self.nodes[i]
        bottoms, tops = self._blobs_of(node.bottoms), self._blobs_of(node.tops)
        if self.is_python(i):
            node.layer.run_backward(tops, node.bottom_need_backward, bottoms)
            return
        top_diffs = [blob.diff_tensor().clone() for blob in tops]
        params = self._params_of(node)
        bottom_grads, param_grads = self._grads(i, top_diffs, [leaf for leaf, _ in params])
        for blob, need, grad in zip(bottoms, node.bottom_need_backward, bottom_grads):
            if need:   # Caffe's layers overwrite their bottoms' diffs
                blob.set_diff(grad if grad is not None else torch.zeros(blob.shape,
                                                                       device=blob._diff.device))
        with torch.no_grad():
            for (_, param), grad in zip(params, param_grads):
                if grad is not None:    # ... and add into their parameters' diffs
                    param.diff.add_(grad.reshape(param.diff.shape))

    def _grads(self, i, top_diffs, param_leaves):
        node = self.nodes[i]
        graph = self._current_graph(i)
        for attempt in range(2):
            if graph is None:
                graph = self._recompute(i)
            leaves, outputs = graph
            pairs = [(t, d) for t, d in zip(outputs, top_diffs)
                     if t.requires_grad and t.numel() == d.numel()]
            wanted = [leaf for leaf, need in zip(leaves, node.bottom_need_backward)
                      if need and leaf.requires_grad]
            inputs = wanted + list(param_leaves)
            if not pairs or not inputs:
                return [None] * len(leaves), [None] * len(param_leaves)
            try:
                got = torch.autograd.grad([t for t, _ in pairs], inputs,
                                          [d.reshape(t.shape).to(t.dtype) for t, d in pairs],
                                          retain_graph=True, allow_unused=True)
                break
            except RuntimeError:
                if attempt:     # a graph made just now failed: a real error
                    raise
                graph = None    # the graph outlived an in-place change (the weights): redo it
        got = list(got)
        bottom_grads = [got.pop(0) if need and leaf.requires_grad else None
                        for leaf, need in zip(leaves, node.bottom_need_backward)]
        return bottom_grads, got

    def _current_graph(self, i):
        """The graph of this layer's last forward, if it still matches its bottoms' shapes."""
        graph = self.graphs.get(i)
        if graph is None:
            return None
        shapes = [tuple(self.blobs[b].shape) for b in self.nodes[i].bottoms]
        if [tuple(leaf.shape) for leaf in graph[0]] != shapes:
            return None
        return graph

    def _recompute(self, i):
        """Re-run layer i's forward on its bottoms' current values to have its graph; what the
        forward would update in the layer's own blobs (BatchNorm's statistics) stays."""
        node = self.nodes[i]
        values = [self.blobs[b].data_tensor() for b in node.bottoms]
        shapes = [tuple(v.shape) for v in values]
        if shapes != self.reshaped_for[i]:
            node.layer.reshape(shapes)
            self.reshaped_for[i] = shapes
        with _blobs_untouched(node.layer):
            leaves = [x.detach().clone().requires_grad_(bool(need))
                      for x, need in zip(values, node.bottom_need_backward)]
            with torch.enable_grad():
                outputs = node.layer.forward(leaves)
        self.graphs[i] = (leaves, outputs)
        return self.graphs[i]

    def _params_of(self, node):
        """(leaf tensor, Param) of each learnable parameter the layer computes with."""
        params = self.engine.learnable_params
        if self._param_cache[0] is not params:
            self._param_cache = (params, {id(p.leaf): p for p in params})
        by_leaf = self._param_cache[1]
        found, seen = [], set()
        for tensor in node.layer.blobs:
            leaf = tensor if id(tensor) in by_leaf else tensor._base
            param = by_leaf.get(id(leaf)) if leaf is not None else None
            if param is not None and leaf.requires_grad and id(leaf) not in seen:
                seen.add(id(leaf))
                found.append((leaf, param))
        return found

    def param_of(self, tensor):
        """The Param (data and diff the solver uses) behind a layer's blob tensor, or None."""
        params = self.engine.learnable_params
        if self._param_cache[0] is not params:
            self._param_cache = (params, {id(p.leaf): p for p in params})
        by_leaf = self._param_cache[1]
        return by_leaf.get(id(tensor)) or (by_leaf.get(id(tensor._base))
                                           if tensor._base is not None else None)

    # -- reshape -------------------------------------------------------------------------
    def reshape_all(self):
        """Net::Reshape: every layer's Reshape in order (the Input blobs keep their shapes)."""
        for i, node in enumerate(self.nodes):
            bottoms, tops = self._blobs_of(node.bottoms), self._blobs_of(node.tops)
            if node.layer.type == "Input":
                for j, blob in enumerate(tops):
                    node.layer.set_shape(j, tuple(blob.shape))
                continue
            if self.is_python(i):
                node.layer.run_reshape(bottoms, tops)
                continue
            shapes = [tuple(blob.shape) for blob in bottoms]
            top_shapes = node.layer.reshape(shapes)
            self.reshaped_for[i] = shapes
            kept = self.kept.get(i, ())
            for j, (blob, shape) in enumerate(zip(tops, top_shapes)):
                if j not in kept:
                    blob.reshape(*shape)
        for name, blob in self.blobs.items():
            self.engine.shapes[name] = tuple(blob.shape)
        self.graphs.clear()

    def sources_reshaped(self):
        """Whether an Input blob was given a shape the engine's layers were not set up for."""
        return any(tuple(self.blobs[node.tops[j]].shape) != tuple(self.engine.shapes[node.tops[j]])
                   for i, kept in self.kept.items() for j in kept
                   for node in (self.nodes[i],))

    # -- the engine's whole-net pass ---------------------------------------------------------
    def _engine_hook(self, index, tops):
        kept = self.kept.get(index)
        if kept:
            node = self.nodes[index]
            tops = list(tops)
            for j in kept:
                tops[j] = self.blobs[node.tops[j]].data_tensor()
        if torch.is_grad_enabled():
            for t in tops:
                if t.requires_grad and not t.is_leaf:
                    t.retain_grad()
        self.recorded[index] = tops
        return tops

    def pull(self):
        """After the engine's pass: each blob holds that pass's values, and its diff the
        gradient that reached it (blobs backward did not reach keep theirs)."""
        first = {}
        for i, node in enumerate(self.nodes):
            tops = self.recorded.get(i)
            if tops is None:
                continue
            kept = self.kept.get(i, ())
            for j, (name, value) in enumerate(zip(node.tops, tops)):
                if j in kept:
                    continue
                self.blobs[name].set_data(value.detach())
                in_place = j < len(node.bottoms) and node.bottoms[j] == name
                if not in_place:
                    first.setdefault(name, value)
        for name, value in first.items():
            if value.requires_grad and getattr(value, "retains_grad", False) \
                    and value.grad is not None:
                self.blobs[name].set_diff(value.grad)
        self.recorded = {}
        self.graphs.clear()


@contextlib.contextmanager
def _blobs_untouched(layer):
    saved = [b.detach().clone() for b in layer.blobs]
    try:
        yield
    finally:
        with torch.no_grad():
            for blob, value in zip(layer.blobs, saved):
                if not torch.equal(blob, value):   # untouched blobs keep their autograd version
                    blob.copy_(value)


def layer_index(names, name, what):
    """The index of layer `name` (pycaffe looks it up in _layer_names), or one clear error."""
    try:
        return list(names).index(name)
    except ValueError:
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise like(ValueError, f"{what}: the net has no layer named '{name}' (start/end name "
                               f"layers, not blobs); its layers are {shown}") from None

