"""A net prototxt as a Graphviz diagram, drawn the way Caffe's python/draw_net.py draws it.

The conventions (learnt from Caffe's python/caffe/draw.py, written anew here): one box per
layer, labelled with its name, "(Type)" ("(Pooling MAX)" for pooling) and, for convolution,
deconvolution and pooling, kernel size / stride / pad; words are separated by spaces when
the graph runs top-down (TB, BT) and by line breaks when it runs sideways (LR, RL).
Colours: convolution/deconvolution #FF5050, pooling #FF9900, inner product #CC33FF, any
other layer #6495ED, and an in-place layer (one bottom, the same blob as its one top: ReLU,
BatchNorm, Scale, Dropout ...) #90EE90. Blobs are grey (#E0E0E0) octagons; a blob no layer
reads (a net output) is a plain ellipse. An edge from a layer to its top is labelled with
the Data layer's "Batch N" or the num_output of a convolution or inner product. Phase
selection is Caffe's: a layer is drawn in a phase when its include rules name that phase
(or it has none) and no exclude rule names it; ALL draws every layer.

Unlike Caffe's drawing, nodes are keyed by layer and blob names rather than by their labels,
so two layers that happen to share a label stay two boxes.
"""
import shutil

from .errors import UserError
from .proto import caffe_pb2

LAYER_COLOUR = "#6495ED"
IN_PLACE_COLOUR = "#90EE90"
TYPE_COLOURS = {"Convolution": "#FF5050", "Deconvolution": "#FF5050", "Pooling": "#FF9900",
                "InnerProduct": "#CC33FF"}
BLOB_COLOUR = "#E0E0E0"
FORMATS = ("png", "svg", "pdf", "dot")
PHASES = {"TRAIN": caffe_pb2.TRAIN, "TEST": caffe_pb2.TEST, "ALL": None}


def drawn_in(layer, phase):
    """Caffe's draw rule: include rules by phase, exclude rules by phase; None draws all."""
    if phase is None:
        return True
    keep = not layer.include or any(rule.phase == phase for rule in layer.include)
    return keep and not any(rule.phase == phase for rule in layer.exclude)


def _first(values, default):
    return values[0] if len(values) else default


def spatial(layer):
    """(kernel size, stride, pad) as Caffe's drawing prints them, or None."""
    if layer.type == "Pooling":
        p = layer.pooling_param
        return p.kernel_size, p.stride, p.pad
    if layer.type in ("Convolution", "Deconvolution"):
        c = layer.convolution_param
        return _first(c.kernel_size, 1), _first(c.stride, 1), _first(c.pad, 0)
    return None


def lr_mults(layer):
    """The weights' and biases' lr_mult (1 when not given)."""
    mults = [p.lr_mult for p in layer.param][:2]
    return tuple(mults + [1.0] * (2 - len(mults)))


def layer_label(layer, rankdir, show_lr_mult=False):
    separator = " " if rankdir in ("TB", "BT") else "\n"
    kind = layer.type
    if kind == "Pooling":
        kind += " " + caffe_pb2.PoolingParameter.PoolMethod.Name(layer.pooling_param.pool)
    parts = [layer.name, f"({kind})"]
    window = spatial(layer)
    if window is not None:
        parts.append(separator.join(f"{what}: {n}" for what, n in
                                    zip(("kernel size", "stride", "pad"), window)))
    if show_lr_mult and layer.type in ("Convolution", "Deconvolution", "InnerProduct"):
        weights, biases = lr_mults(layer)
        if weights or biases:
            parts.append(f"lr mult: {weights:.1f}, {biases:.1f}")
    return separator.join(parts)


def edge_label(layer):
    if layer.type == "Data":
        return f"Batch {layer.data_param.batch_size}"
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return ""


def is_in_place(layer):
    return len(layer.bottom) == 1 and len(layer.top) == 1 and layer.bottom[0] == layer.top[0]


def layer_colour(layer):
    return IN_PLACE_COLOUR if is_in_place(layer) else TYPE_COLOURS.get(layer.type, LAYER_COLOUR)


def diagram(net, rankdir="LR", phase=None, show_lr_mult=False, label_edges=True):
    """(nodes, edges): nodes as {id: attributes}, in first-seen order; edges as
    (from id, to id, label). Layer ids are 'layer:<name>', blob ids 'blob:<name>'."""
    layers = [layer for layer in net.layer if drawn_in(layer, phase)]
    read = {blob for layer in layers for blob in layer.bottom}
    nodes, edges = {}, []
    for layer in layers:
        lid = f"layer:{layer.name}"
        nodes[lid] = {"label": layer_label(layer, rankdir, show_lr_mult), "shape": "record",
                      "style": "filled", "fillcolor": layer_colour(layer)}
        for blob in list(layer.bottom) + list(layer.top):
            bid = f"blob:{blob}"
            if bid not in nodes:
                nodes[bid] = ({"label": blob, "shape": "octagon", "style": "filled",
                               "fillcolor": BLOB_COLOUR} if blob in read else {"label": blob})
        edges += [(f"blob:{blob}", lid, "") for blob in layer.bottom]
        label = edge_label(layer) if label_edges else ""
        edges += [(lid, f"blob:{blob}", label) for blob in layer.top]
    return nodes, edges


def pydot_graph(net, rankdir="LR", phase=None, show_lr_mult=False):
    pydot = import_pydot()
    graph = pydot.Dot(graph_name=_quoted(net.name or "Net"), graph_type="digraph",
                      rankdir=rankdir)
    nodes, edges = diagram(net, rankdir, phase, show_lr_mult)
    for node_id, attributes in nodes.items():
        graph.add_node(pydot.Node(_quoted(node_id), **{k: _quoted(v) for k, v in attributes.items()}))
    for source, target, label in edges:
        graph.add_edge(pydot.Edge(_quoted(source), _quoted(target), label=_quoted(label)))
    return graph


def _quoted(text):
    """A DOT string literal (ids and labels with ':' or spaces must be quoted)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def import_pydot():
    try:
        import pydot
    except ImportError:
        raise UserError("drawing nets needs pydot: pip install pydot (or the package's "
                        "'draw' extra: pip install 'bnface-caffe[draw]')") from None
    return pydot


def render(net, fmt, rankdir="LR", phase=None, show_lr_mult=False):
    """The diagram as bytes: DOT text for 'dot', else drawn by Graphviz's `dot` program."""
    graph = pydot_graph(net, rankdir, phase, show_lr_mult)
    if fmt == "dot":
        return graph.to_string().encode()
    if shutil.which("dot") is None:
        raise UserError(f"Graphviz's `dot` program is not installed, so no .{fmt} can be drawn: "
                        "install it (Debian/Ubuntu: apt-get install graphviz), or write "
                        "OUT.dot and render that elsewhere")
    try:
        return graph.create(prog="dot", format=fmt)
    except Exception as err:   # noqa: BLE001 - pydot raises plain exceptions with dot's stderr
        message = " ".join(str(err).split())
        raise UserError(f"Graphviz's dot failed: {message[:300]}") from None
