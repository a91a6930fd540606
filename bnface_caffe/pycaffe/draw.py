"""caffe.draw on bnface_caffe/net_diagram.py: a NetParameter drawn as Caffe's draw.py draws it
(pydot; Graphviz's `dot` for images). get_pydot_graph, draw_net, draw_net_to_file and the
label/colour helpers take pycaffe's arguments; phase None draws every layer.
"""
import os

from .. import net_diagram
from ..formats import prototxt


def get_pooling_types_dict():
    """{PoolMethod value: name}."""
    from ..proto import caffe_pb2
    return {v.number: v.name for v in caffe_pb2.PoolingParameter.PoolMethod.DESCRIPTOR.values}


def get_edge_label(layer):
    return net_diagram.edge_label(layer)


def get_layer_label(layer, rankdir, display_lrm=False):
    return net_diagram.layer_label(layer, rankdir, display_lrm)


def choose_color_by_layertype(layertype):
    return net_diagram.TYPE_COLOURS.get(layertype, net_diagram.LAYER_COLOUR)


def get_pydot_graph(caffe_net, rankdir, label_edges=True, phase=None, display_lrm=False):
    if not label_edges:
        pydot = net_diagram.import_pydot()
        nodes, edges = net_diagram.diagram(caffe_net, rankdir, phase, display_lrm, label_edges)
        quoted = net_diagram._quoted
        graph = pydot.Dot(graph_name=quoted(caffe_net.name or "Net"), graph_type="digraph",
                          rankdir=rankdir)
        for node_id, attributes in nodes.items():
            graph.add_node(pydot.Node(quoted(node_id),
                                      **{k: quoted(v) for k, v in attributes.items()}))
        for source, target, _ in edges:
            graph.add_edge(pydot.Edge(quoted(source), quoted(target)))
        return graph
    return net_diagram.pydot_graph(caffe_net, rankdir, phase, display_lrm)


def draw_net(caffe_net, rankdir, ext="png", phase=None, display_lrm=False):
    """The drawing as bytes in format `ext`."""
    return net_diagram.render(caffe_net, ext, rankdir, phase, display_lrm)


def draw_net_to_file(caffe_net, filename, rankdir="LR", phase=None, display_lrm=False):
    """Draw into `filename`, its format from its extension."""
    ext = os.path.splitext(filename)[1][1:] or "png"
    prototxt.write_bytes(filename, draw_net(caffe_net, rankdir, ext, phase, display_lrm))
