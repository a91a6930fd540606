"""Caffe's HDF5 files: `.caffemodel.h5` weights, `.solverstate.h5` solver states, and the
dataset reading that the HDF5Data layer shares with them (util/hdf5.cpp).

.caffemodel.h5 (Net::ToHDF5 / CopyTrainedLayersFromHDF5): a group /data with one group
per layer (every layer, in net order, empty when it has no blobs) holding float32
datasets "0", "1", ... for the blobs the layer owns (a blob shared from an earlier
layer is not written), and with snapshot_diff a group /diff holding every blob's
gradient. Reading takes the layers by name (the last layer of that name), each
dataset must have the blob's exact shape, and a missing dataset is allowed only for a
shared blob.

.solverstate.h5 (SGDSolver::SnapshotSolverStateToHDF5): int32 datasets "iter" and
"current_step" of shape (1), a scalar null-terminated string "learned_net" (the
model's path as written), and group "history" with datasets "0", "1", ... in
learnable-parameter order.

Datasets are read as float32 from any float or integer type, logging Caffe's
"Datatype class: H5T_FLOAT" (or H5T_INTEGER) the first time in the process.
Caffe recognises an HDF5 weights file by its content (H5Fis_hdf5), a solver state
by the name ending in ".h5".
"""
import os
import tempfile

import numpy as np
import torch

from ..errors import UserError
from ..glog import log
from .blobs import shape_string

SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_BLOB_AXES = 32            # Caffe's kMaxBlobAxes
_logged_classes = set()       # LOG_FIRST_N(INFO, 1) per datatype class, process-wide


def _h5py():
    import h5py
    return h5py


def is_hdf5(path):
    """H5Fis_hdf5: the superblock signature at offset 0, 512, 1024, 2048, ..."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset + len(SIGNATURE) <= size:
                f.seek(offset)
                if f.read(len(SIGNATURE)) == SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False
    return False


def open_file(path, mode, what):
    h5py = _h5py()
    try:
        return h5py.File(path, mode)
    except (OSError, ValueError) as err:
        verb = "read" if mode == "r" else "write"
        raise UserError(f"{path}: cannot {verb} it as an HDF5 file ({what}): {err}") from None


def load_dataset(group, name, where, min_dim=0, max_dim=MAX_BLOB_AXES, logger=log):
    """hdf5_load_nd_dataset: a float32 array from dataset `name` directly in `group`."""
    h5py = _h5py()
    if group.get(name, getclass=True) is not h5py.Dataset:
        raise UserError(f"{where}: no HDF5 dataset '{name}' in {group.name} of "
                        f"{group.file.filename}")
    dataset = group[name]
    if not min_dim <= dataset.ndim <= max_dim:
        raise UserError(f"{where}: HDF5 dataset '{name}' has {dataset.ndim} axes; {min_dim} "
                        f"to {max_dim} are allowed")
    kind = dataset.id.get_type().get_class()
    if kind == h5py.h5t.FLOAT:
        label = "H5T_FLOAT"
    elif kind == h5py.h5t.INTEGER:
        label = "H5T_INTEGER"
    else:
        names = {h5py.h5t.STRING: "H5T_STRING", h5py.h5t.COMPOUND: "H5T_COMPOUND",
                 h5py.h5t.ENUM: "H5T_ENUM", h5py.h5t.OPAQUE: "H5T_OPAQUE",
                 h5py.h5t.BITFIELD: "H5T_BITFIELD", h5py.h5t.VLEN: "H5T_VLEN",
                 h5py.h5t.ARRAY: "H5T_ARRAY", h5py.h5t.REFERENCE: "H5T_REFERENCE",
                 h5py.h5t.TIME: "H5T_TIME"}
        raise UserError(f"{where}: HDF5 dataset '{name}' has unsupported datatype class "
                        f"{names.get(kind, 'unknown')}; store floats or integers")
    if label not in _logged_classes:
        _logged_classes.add(label)
        logger.info("hdf5.cpp:" + ("33" if label == "H5T_FLOAT" else "36"),
                    f"Datatype class: {label}")
    return np.asarray(dataset[()], dtype=np.float32)


def _save(group, name, array):
    """hdf5_save_nd_dataset<float>: a contiguous float32 dataset of the blob's shape."""
    group.create_dataset(name, data=np.ascontiguousarray(array, dtype=np.float32))


def _atomic(path, write):
    """Write through a temporary file beside `path`, then rename (nothing half-written)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=folder)
    os.close(fd)
    try:
        with open_file(tmp, "w", "snapshot") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- weights

def _owner_flags(net):
    """Per layer, per blob: does this layer own the blob (not shared from an earlier one)."""
    seen, flags = set(), []
    for node in net.nodes:
        row = []
        for blob in node.layer.blobs:
            key = blob.untyped_storage().data_ptr() if blob.numel() else id(blob)
            row.append(key not in seen)
            seen.add(key)
        flags.append(row)
    return flags


def write_caffemodel(net, path, write_diff=False):
    """Net::ToHDF5."""
    diffs = {id(p.leaf): p.diff for p in net.learnable_params}
    owned = _owner_flags(net)

    def write(f):
        data = f.create_group("data")
        diff = f.create_group("diff") if write_diff else None
        for node, flags in zip(net.nodes, owned):
            name = node.layer.name
            if not name or "/" in name or name in data:
                raise UserError(f"{path}: cannot store layer '{name}' in HDF5 (layer names must "
                                "be unique, non-empty and without '/')")
            layer_data = data.create_group(name)
            layer_diff = diff.create_group(name) if diff is not None else None
            for j, blob in enumerate(node.layer.blobs):
                if flags[j]:
                    _save(layer_data, str(j), blob.detach().float().cpu().numpy())
                if layer_diff is not None:
                    g = diffs.get(id(blob))
                    g = torch.zeros_like(blob) if g is None else g
                    _save(layer_diff, str(j), g.detach().float().cpu().numpy())

    _atomic(path, write)


def copy_trained_layers(net, path, logger=log):
    """Net::CopyTrainedLayersFromHDF5, everything checked before anything is copied."""
    owned = _owner_flags(net)
    by_name = {}
    for node, flags in zip(net.nodes, owned):
        by_name[node.layer.name] = (node.layer, flags)      # the last layer of a name
    plan = []
    with open_file(path, "r", "weights") as f:
        if "data" not in f:
            raise UserError(f"{path}: no /data group; not a Caffe .caffemodel.h5")
        data = f["data"]
        for name in data:
            if name not in by_name:
                logger.info("net.cpp:801", f"Ignoring source layer {name}")
                continue
            layer, flags = by_name[name]
            group = data[name]
            if len(group) > len(layer.blobs):
                raise UserError(f"{path}: layer '{name}' holds {len(group)} blob(s) but the "
                                f"net's layer '{name}' ({layer.type}) has {len(layer.blobs)}; "
                                "incompatible number of blobs")
            for j, blob in enumerate(layer.blobs):
                if str(j) not in group:
                    if flags[j]:
                        raise UserError(f"{path}: layer '{name}' has no blob {j}, which the "
                                        f"net's layer '{name}' ({layer.type}) owns; incompatible "
                                        "number of blobs")
                    continue      # shared from an earlier layer: written there
                array = load_dataset(group, str(j), f"{path}: layer '{name}'", logger=logger)
                if array.shape != tuple(blob.shape):
                    raise UserError(f"{path}: cannot load blob {j} of layer '{name}' from hdf5; "
                                    f"shape mismatch, source shape {shape_string(array.shape)}, "
                                    f"target shape {shape_string(tuple(blob.shape))}")
                plan.append((array, blob))
    with torch.no_grad():
        for array, blob in plan:
            blob.copy_(torch.from_numpy(array))


# ---------------------------------------------------------------- solver state

def _save_int(f, name, value):
    f.create_dataset(name, data=np.array([value], dtype="<i4"))


def _save_string(f, name, text):
    """H5LTmake_dataset_string: a scalar, null-terminated fixed-length string."""
    h5py = _h5py()
    raw = text.encode()
    kind = h5py.h5t.C_S1.copy()
    kind.set_size(len(raw) + 1)
    kind.set_strpad(h5py.h5t.STR_NULLTERM)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    dataset = h5py.h5d.create(f.id, name.encode(), kind, space)
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(raw, dtype=f"S{len(raw) + 1}"),
                  mtype=kind)


def write_state(solver, path, model_path):
    """SGDSolver::SnapshotSolverStateToHDF5."""
    def write(f):
        _save_int(f, "iter", solver.iter)
        _save_string(f, "learned_net", model_path)
        _save_int(f, "current_step", solver.current_step)
        history = f.create_group("history")
        for i, h in enumerate(solver.history):
            _save(history, str(i), h.detach().float().cpu().numpy())

    _atomic(path, write)


def _load_int(f, name, path):
    if name not in f:
        raise UserError(f"{path}: no '{name}' dataset; not a Caffe .solverstate.h5")
    return int(np.asarray(f[name][()]).reshape(-1)[0])


def read_state(path):
    """(iter, learned_net or None, current_step, [history arrays]) of a .solverstate.h5."""
    with open_file(path, "r", "solver state") as f:
        it = _load_int(f, "iter", path)
        learned = None
        if "learned_net" in f:
            raw = np.asarray(f["learned_net"][()]).reshape(-1)[0]
            raw = raw if isinstance(raw, bytes) else str(raw).encode()
            learned = raw.split(b"\0")[0].decode()
        step = _load_int(f, "current_step", path)
        if "history" not in f:
            raise UserError(f"{path}: no history group; not a Caffe .solverstate.h5")
        group = f["history"]
        history = [load_dataset(group, str(i), f"{path}: history") for i in range(len(group))]
    return it, learned, step, history


def restore(solver, net, path, learned_net_path):
    """SGDSolver::RestoreSolverStateFromHDF5: iter, weights (.caffemodel or .h5 by content),
    current_step, history with exact shapes. `learned_net_path(state_path, recorded)`
    finds the weights file the state names."""
    it, learned, step, history = read_state(path)
    solver.iter = it
    if learned is not None:
        load_weights_file(net, learned_net_path(learned))
    solver.current_step = step
    if len(history) != len(solver.history):
        raise UserError(f"{path}: {len(history)} history blobs, but this solver "
                        f"({solver.param.type} on this net) keeps {len(solver.history)}; "
                        "incorrect length of history blobs (is it the same net and solver type?)")
    for i, (array, h) in enumerate(zip(history, solver.history)):
        if array.shape != tuple(h.shape):
            raise UserError(f"{path}: cannot load history blob {i} from hdf5; shape mismatch, "
                            f"source shape {shape_string(array.shape)}, target shape "
                            f"{shape_string(tuple(h.shape))}")
        h.copy_(torch.from_numpy(array))


def load_weights_file(net, path):
    """Net::CopyTrainedLayersFrom(filename): HDF5 by content, else a binary caffemodel."""
    if is_hdf5(path):
        copy_trained_layers(net, path, net.log)
        return
    from .. import prototxt
    from ..proto import caffe_pb2
    net.copy_trained_layers_from(prototxt.read_binary(path, caffe_pb2.NetParameter), path)
