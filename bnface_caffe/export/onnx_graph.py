"""The engine's Net -> an ONNX model, built node by node with onnx.helper.

Tensor names: ONNX wants each tensor written once, Caffe rewrites blobs in place. A top
gets the blob's own name when its layer is the blob's last writer (so graph outputs and
the tensors a user looks for carry Caffe's blob names), else `blob@layer`. Layers that
pass a blob through (Split, Dropout, a folded Scale) add no node.

Dynamic batch: the net is reshaped to two other batch sizes; a dimension that changes with
the batch is left symbolic ("N" when it equals the batch), and the shape constants of
Flatten/Reshape/InnerProduct write -1 there. Spatial sizes stay those of the deploy net's
Input. Opset 17 (ONNX IR 8), which onnxruntime 1.14 and later run.
"""
import numpy as np

from ..errors import UserError
from ..proto import caffe_pb2
from . import onnx_layers

OPSET = 17
IR_VERSION = 8
PASS_THROUGH = {"Split", "Dropout"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install 'bnface-caffe[onnx]' "
                        "(make install puts it in .venv)") from None
    return onnx


def check_net_param(net_param, source):
    """Refuse a net with a layer ONNX export cannot convert, before it is built (a train_val
    net would otherwise open its LMDBs first)."""
    from ..engine.netparam import filter_net
    from ..formats.glog import Glog

    state = caffe_pb2.NetState(phase=caffe_pb2.TEST)
    for layer in filter_net(net_param, state, source, Glog(stderr=False)).layer:
        onnx_layers.check_supported(layer, source)


def batch_dependent_dims(net):
    """{blob: set of axes whose size follows the batch}, or None when the net does not take
    another batch size (a layer fixes it). The net is left at its own shapes."""
    original = {name: net.shapes[name] for name in net.input_names}
    probes = []
    try:
        for extra in (2, 3):
            net.reshape({name: (shape[0] + extra,) + tuple(shape[1:])
                         for name, shape in original.items()})
            probes.append(dict(net.shapes))
    except UserError:
        return None
    finally:
        net.reshape(original)
    return {blob: {i for i, (a, b) in enumerate(zip(probes[0][blob], probes[1][blob])) if a != b}
            for blob in net.shapes}


class Graph:
    def __init__(self, net, source, batch_dims):
        self.onnx = _onnx()
        self.net, self.source = net, source
        self.shapes = dict(net.shapes)
        self.batch_dims = batch_dims or {blob: set() for blob in net.shapes}
        self.dynamic = batch_dims is not None
        self.nodes, self.initializers, self.inputs = [], [], []
        self.current = {}
        self.input_names = set(net.input_names)
        self.final_writer = {}
        for index, node in enumerate(net.nodes):
            if node.layer.type in PASS_THROUGH or getattr(node.layer, "folded", False):
                continue
            for blob in node.tops:
                self.final_writer[blob] = index
        self.names = set(self.final_writer) | self.input_names
        self.node_index = None

    # -- names -------------------------------------------------------------------------
    def _unique(self, name):
        candidate, k = name, 1
        while candidate in self.names:
            k += 1
            candidate = f"{name}_{k}"
        self.names.add(candidate)
        return candidate

    def value(self, blob):
        return self.current[blob]

    def top(self, node, j):
        blob = node.tops[j]
        if self.final_writer.get(blob) == self.node_index and blob not in self.input_names:
            return blob
        return self._unique(f"{blob}@{node.layer.name}")

    def temp(self, hint):
        return self._unique(hint)

    # -- values ------------------------------------------------------------------------
    def initializer(self, name, values):
        """A float32 weight (torch tensor or array) as an initializer; returns its name."""
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        return self.constant(name, np.asarray(values, np.float32))

    def constant(self, name, array):
        name = self._unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op, inputs, outputs, **attrs):
        """One node; returns its output name (or names, when given a list)."""
        outs = [outputs] if isinstance(outputs, str) else list(outputs)
        layer = self.net.nodes[self.node_index].layer.name
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outs,
                                                     name=self._unique(f"{layer}/{op}"),
                                                     **attrs))
        return outputs

    def reshape_to(self, x, blob, out):
        """Reshape x to blob's shape, -1 on the axis that follows the batch."""
        shape = list(self.shapes[blob])
        varying = sorted(self.batch_dims[blob])
        if len(varying) > 1:
            layer = self.net.nodes[self.node_index].layer
            raise UserError(f"{self.source}: layer '{layer.name}' ({layer.type}): its output "
                            f"{blob} has {len(varying)} axes that follow the batch size; "
                            "export with --static-batch")
        for axis in varying:
            shape[axis] = -1
        target = self.constant(f"{out}/shape", np.array(shape, np.int64))
        return self.add("Reshape", [x, target], out)

    # -- inputs and outputs ------------------------------------------------------------
    def _value_info(self, name, blob):
        dims = []
        batch = self.shapes[self.net.input_names[0]][0] if self.net.input_names else None
        for axis, size in enumerate(self.shapes[blob]):
            if axis in self.batch_dims[blob]:
                dims.append("N" if size == batch else None)
            else:
                dims.append(int(size))
        return self.onnx.helper.make_tensor_value_info(name, self.onnx.TensorProto.FLOAT, dims)

    def graph_input(self, blob):
        self.inputs.append(self._value_info(blob, blob))
        return blob

    def graph_outputs(self, blobs):
        outputs = []
        for blob in blobs:
            name = self.current[blob]
            if name != blob and blob not in self.input_names:
                self.node_index = len(self.net.nodes) - 1
                self.nodes.append(self.onnx.helper.make_node("Identity", [name], [blob],
                                                             name=self._unique(f"{blob}/output")))
                name = blob
            outputs.append(self._value_info(name, blob))
        return outputs


def export(net, source, outputs=None, dynamic_batch=True):
    """(ModelProto, dynamic: bool) for an engine Net in the TEST phase with its weights."""
    onnx = _onnx()
    for node in net.nodes:
        onnx_layers.check_supported(node.layer.param, source)
    wanted = list(outputs or net.output_names)
    for blob in wanted:
        if blob not in net.shapes:
            raise UserError(f"--outputs {blob}: {source} has no blob '{blob}'; its blobs are "
                            f"{', '.join(net.blob_names)}")
    batch_dims = batch_dependent_dims(net) if dynamic_batch else None
    g = Graph(net, source, batch_dims)
    for index, node in enumerate(net.nodes):
        g.node_index = index
        tops = onnx_layers.CONVERTERS[node.layer.type](g, node)
        for blob, name in zip(node.tops, tops):
            g.current[blob] = name
    graph_outputs = g.graph_outputs(wanted)
    graph = onnx.helper.make_graph(g.nodes, net.name or "net", g.inputs, graph_outputs,
                                   g.initializers)
    model = onnx.helper.make_model(graph, producer_name="bnface-caffe",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = (f"Exported from the Caffe net {source} by bnface-caffe "
                        f"(tools/export_onnx.py): Caffe semantics, opset {OPSET}, "
                        f"{'dynamic' if g.dynamic else 'fixed'} batch.")
    onnx.checker.check_model(model, full_check=True)
    return model, g.dynamic
