"""Weights in and out of a Net: copy from a caffemodel, share with another net, write ToProto.

Net::CopyTrainedLayersFrom copies blobs by layer name (source layers the net lacks are
logged and skipped; a count or shape mismatch is an error, checked before anything is
copied). Net::ShareTrainedLayersWith makes same-named layers compute with the other net's
tensors (a test net and its train net). Net::ToProto writes every layer with its blobs. The HDF5 forms (.caffemodel.h5, Net::ToHDF5
and CopyTrainedLayersFromHDF5) are read and written here too, the files by formats/hdf5.py.
"""
import torch

from ..errors import UserError
from ..formats import caffemodel, hdf5, net_log
from ..formats.blobproto import array_to_proto, proto_shape, proto_shape_matches, proto_to_array
from ..formats.upgrade import upgrade_net
from ..proto import caffe_pb2
from ..shapes import shape_string


def first_node(net, name):
    return next((node for node in net.nodes if node.layer.name == name), None)


def copy_trained_layers(net, net_parameter, source="weights"):
    """Copy `net_parameter`'s blobs into `net` by layer name; returns the names copied.
    A file that copies no layer at all is an error naming both sides' layers (training
    from scratch by mistake costs hours); Caffe's "Ignoring source layer" lines stay."""
    param = upgrade_net(net_parameter, source, net.log)
    plan, copied, ignored = [], [], []
    for src in param.layer:
        node = first_node(net, src.name)
        if node is None:
            net_log.ignoring_source_layer(net.log, src.name)
            ignored.append(src.name)
            continue
        blobs = node.layer.blobs
        if len(src.blobs) != len(blobs):
            raise UserError(f"{source}: layer '{src.name}' holds {len(src.blobs)} blob(s) but the "
                            f"net's layer '{src.name}' ({node.layer.type}) has {len(blobs)}; "
                            "incompatible number of blobs")
        for j, (sb, tb) in enumerate(zip(src.blobs, blobs)):
            if not proto_shape_matches(sb, tb.shape):
                raise UserError(f"{source}: cannot copy param {j} weights from layer '{src.name}': "
                                f"shape mismatch, source shape {shape_string(proto_shape(sb))}, "
                                f"target shape {shape_string(tuple(tb.shape))}; to learn this "
                                "layer from scratch instead, rename it")
            plan.append((sb, tb))
        if blobs:
            copied.append(src.name)
    with_blobs = [node.layer.name for node in net.nodes if node.layer.blobs]
    if with_blobs and not copied:
        held = [layer.name for layer in param.layer if len(layer.blobs)]
        raise UserError(f"{source}: copies no weights into this net: the net's layers with "
                        f"weights are {', '.join(with_blobs)}; the file's are "
                        f"{', '.join(held) or 'none (it holds no blobs)'}; is it the right file?")
    with torch.no_grad():
        for sb, tb in plan:
            tb.copy_(torch.from_numpy(proto_to_array(sb).reshape(tuple(tb.shape))))
    return copied


def share_trained_layers(net, other):
    """Same-named layers of `net` compute with `other`'s blob tensors."""
    for src in other.nodes:
        node = first_node(net, src.layer.name)
        if node is None:
            continue
        sblobs, tblobs = src.layer.blobs, node.layer.blobs
        if len(sblobs) != len(tblobs):
            raise UserError(f"{net.source}: layer '{src.layer.name}' has {len(tblobs)} blob(s), "
                            f"the net it shares with has {len(sblobs)}; incompatible number of blobs")
        for j, (sb, tb) in enumerate(zip(sblobs, tblobs)):
            if tuple(sb.shape) != tuple(tb.shape):
                raise UserError(f"{net.source}: cannot share param {j} weights from layer "
                                f"'{src.layer.name}': shape mismatch, source shape "
                                f"{shape_string(tuple(sb.shape))}, target shape "
                                f"{shape_string(tuple(tb.shape))}")
            node.layer.blobs[j] = sb


def to_proto(net, write_diff=False):
    """Net::ToProto: every layer's parameters (as set up) with its blobs."""
    diffs = {id(p.leaf): p.diff for p in net.learnable_params}
    out = caffe_pb2.NetParameter(name=net.name)
    for node in net.nodes:
        lp = out.layer.add()
        lp.CopyFrom(node.layer.param)
        lp.ClearField("blobs")
        for blob in node.layer.blobs:
            diff = diffs.get(id(blob)) if write_diff else None
            if write_diff and diff is None:
                diff = torch.zeros_like(blob)
            lp.blobs.append(array_to_proto(blob, diff))
    return out


def _shared(net):
    """(node index, blob index) of every blob that computes with another layer's."""
    return {(s.node, s.blob) for s in net._sharers}


def to_hdf5(net, path, write_diff=False):
    """Net::ToHDF5: each layer's owned blobs (and with write_diff every blob's diff)."""
    diffs = {id(p.leaf): p.diff for p in net.learnable_params}
    shared = _shared(net)
    layers = []
    for i, node in enumerate(net.nodes):
        blobs = [None if (i, j) in shared else b.detach().float().cpu().numpy()
                 for j, b in enumerate(node.layer.blobs)]
        grads = None
        if write_diff:
            grads = [(diffs[id(b)] if id(b) in diffs else torch.zeros_like(b)).float().cpu().numpy()
                     for b in node.layer.blobs]
        layers.append((node.layer.name, blobs, grads))
    hdf5.write_caffemodel(path, layers)


def copy_trained_layers_hdf5(net, path):
    """Net::CopyTrainedLayersFromHDF5: by layer name (the last layer of that name), exact
    shapes, a missing dataset allowed only for a shared blob; everything checked before
    anything is copied. Returns the names copied."""
    by_name = {node.layer.name: i for i, node in enumerate(net.nodes)}
    shared = _shared(net)
    plan, copied = [], []
    for name, arrays in hdf5.read_caffemodel(path, net.log):
        if name not in by_name:
            net_log.ignoring_source_layer_hdf5(net.log, name)
            continue
        i = by_name[name]
        layer = net.nodes[i].layer
        if len(arrays) > len(layer.blobs) or any(j >= len(layer.blobs) for j in arrays):
            raise UserError(f"{path}: layer '{name}' holds {len(arrays)} blob(s) but the net's "
                            f"layer '{name}' ({layer.type}) has {len(layer.blobs)}; "
                            "incompatible number of blobs")
        for j, blob in enumerate(layer.blobs):
            if j not in arrays:
                if (i, j) in shared:
                    continue          # written with the layer that owns it
                raise UserError(f"{path}: layer '{name}' has no blob {j}, which the net's layer "
                                f"'{name}' ({layer.type}) owns; incompatible number of blobs")
            hdf5.check_blob_shape(path, name, j, arrays[j], blob.shape)
            plan.append((arrays[j], blob))
        if layer.blobs:
            copied.append(name)
    with torch.no_grad():
        for array, blob in plan:
            blob.copy_(torch.from_numpy(array))
    return copied


def copy_trained_layers_from_file(net, path):
    """Net::CopyTrainedLayersFrom(filename): an HDF5 file (told apart by its content, as
    Caffe does) or a binary .caffemodel."""
    if hdf5.is_hdf5(path):
        return copy_trained_layers_hdf5(net, path)
    return copy_trained_layers(net, caffemodel.read(path), path)
