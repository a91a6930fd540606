"""Caffe's HDF5 files (util/hdf5.cpp): `.caffemodel.h5` weights, `.solverstate.h5` solver
states, and the dataset reading the HDF5Data layer shares with them.

.caffemodel.h5 (Net::ToHDF5): a group /data with one group per layer (every layer, in
net order, empty when it has no blobs) holding float32 datasets "0", "1", ... for the
blobs the layer owns (a blob shared from an earlier layer is not written), and with
snapshot_diff a group /diff holding every blob's gradient.

.solverstate.h5 (SGDSolver::SnapshotSolverStateToHDF5): int32 datasets "iter" and
"current_step" of shape (1), a scalar null-terminated string "learned_net" (the
model's path as written), and a group "history" of datasets "0", "1", ... in
learnable-parameter order.

Datasets are read as float32 from any float or integer type, logging Caffe's
"Datatype class: H5T_FLOAT" (or H5T_INTEGER) the first time in the process. Caffe
tells an HDF5 weights file by its content (H5Fis_hdf5), a solver state by the name
ending in ".h5".
"""
import os
import tempfile

import numpy as np

from ..errors import UserError
from ..shapes import shape_string
from .lines import line

SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_BLOB_AXES = 32            # Caffe's kMaxBlobAxes
_datatype_float = line("hdf5.cpp:33", "Datatype class: H5T_FLOAT")
_datatype_integer = line("hdf5.cpp:36", "Datatype class: H5T_INTEGER")
_logged_classes = set()       # LOG_FIRST_N(INFO, 1) per datatype class, process-wide


def _h5py():
    import h5py               # imported on use: most runs never touch HDF5
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
    """h5py.File, or a UserError naming the file and what it was for."""
    h5py = _h5py()
    try:
        return h5py.File(path, mode)
    except (OSError, ValueError) as err:
        verb = "read" if mode == "r" else "write"
        raise UserError(f"{path}: cannot {verb} it as an HDF5 file ({what}): {err}") from None


def load_dataset(group, name, where, log, min_dim=0, max_dim=MAX_BLOB_AXES):
    """hdf5_load_nd_dataset: dataset `name` directly in `group` as a float32 array."""
    h5py = _h5py()
    if group.get(name, getclass=True) is not h5py.Dataset:
        raise UserError(f"{where}: no HDF5 dataset '{name}' in {group.name} of "
                        f"{group.file.filename}")
    dataset = group[name]
    if not min_dim <= dataset.ndim <= max_dim:
        raise UserError(f"{where}: HDF5 dataset '{name}' has {dataset.ndim} axes; {min_dim} "
                        f"to {max_dim} are allowed")
    kind = dataset.id.get_type().get_class()
    writers = {h5py.h5t.FLOAT: _datatype_float, h5py.h5t.INTEGER: _datatype_integer}
    if kind not in writers:
        names = {h5py.h5t.STRING: "H5T_STRING", h5py.h5t.COMPOUND: "H5T_COMPOUND",
                 h5py.h5t.ENUM: "H5T_ENUM", h5py.h5t.OPAQUE: "H5T_OPAQUE",
                 h5py.h5t.BITFIELD: "H5T_BITFIELD", h5py.h5t.VLEN: "H5T_VLEN",
                 h5py.h5t.ARRAY: "H5T_ARRAY", h5py.h5t.REFERENCE: "H5T_REFERENCE",
                 h5py.h5t.TIME: "H5T_TIME"}
        raise UserError(f"{where}: HDF5 dataset '{name}' has unsupported datatype class "
                        f"{names.get(kind, 'unknown')}; store floats or integers")
    if kind not in _logged_classes:
        _logged_classes.add(kind)
        writers[kind](log)
    return np.asarray(dataset[()], dtype=np.float32)


def save_dataset(group, name, array):
    """hdf5_save_nd_dataset<float>: a contiguous float32 dataset of the array's shape."""
    group.create_dataset(name, data=np.ascontiguousarray(array, dtype=np.float32))


def _write_atomic(path, write):
    """Write through a temporary file beside `path`, then rename (nothing half-written)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=folder)
    except OSError as err:
        raise UserError(f"{path}: cannot write it ({err.strerror})") from None
    os.close(fd)
    try:
        with open_file(tmp, "w", path) as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- .caffemodel.h5

def write_caffemodel(path, layers):
    """Net::ToHDF5. `layers`: [(name, [blob array or None (not owned)], [diffs] or None)]."""
    def write(f):
        data = f.create_group("data")
        diff = f.create_group("diff") if any(d is not None for _, _, d in layers) else None
        for name, blobs, diffs in layers:
            if not name or "/" in name or name in data:
                raise UserError(f"{path}: cannot store layer '{name}' in HDF5 (layer names must "
                                "be unique, non-empty and without '/')")
            group = data.create_group(name)
            for j, blob in enumerate(blobs):
                if blob is not None:
                    save_dataset(group, str(j), blob)
            if diff is not None:
                group = diff.create_group(name)
                for j, d in enumerate(diffs or []):
                    save_dataset(group, str(j), d)

    _write_atomic(path, write)


def read_caffemodel(path, log):
    """[(layer name, {blob index: float32 array})] of a .caffemodel.h5, in the file's
    (name) order, as CopyTrainedLayersFromHDF5 walks it."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such weights file")
    with open_file(path, "r", "weights") as f:
        if "data" not in f:
            raise UserError(f"{path}: no /data group; not a Caffe .caffemodel.h5")
        out = []
        for name, group in f["data"].items():
            blobs = {}
            for key in group:
                if not key.isdigit():
                    raise UserError(f"{path}: layer '{name}' holds '{key}'; Caffe's blobs are "
                                    "datasets named 0, 1, ...")
                blobs[int(key)] = load_dataset(group, key, f"{path}: layer '{name}'", log)
            out.append((name, blobs))
    return out


def check_blob_shape(path, layer, j, array, shape):
    if array.shape != tuple(shape):
        raise UserError(f"{path}: cannot load blob {j} of layer '{layer}' from hdf5; shape "
                        f"mismatch, source shape {shape_string(array.shape)}, target shape "
                        f"{shape_string(tuple(shape))}")


# ---------------------------------------------------------------- .solverstate.h5

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


def write_solverstate(path, iteration, learned_net, current_step, history):
    """SGDSolver::SnapshotSolverStateToHDF5; `history`: arrays in learnable-param order."""
    def write(f):
        _save_int(f, "iter", iteration)
        _save_string(f, "learned_net", learned_net)
        _save_int(f, "current_step", current_step)
        group = f.create_group("history")
        for i, h in enumerate(history):
            save_dataset(group, str(i), h)

    _write_atomic(path, write)


def _load_int(f, name, path):
    if name not in f:
        raise UserError(f"{path}: no '{name}' dataset; not a Caffe .solverstate.h5")
    return int(np.asarray(f[name][()]).reshape(-1)[0])


def read_solverstate(path, log):
    """(iter, learned_net or None, current_step, [history arrays]) of a .solverstate.h5."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such solver state file (give the .solverstate.h5 written "
                        "by a snapshot)")
    with open_file(path, "r", "solver state") as f:
        iteration = _load_int(f, "iter", path)
        learned = None
        if "learned_net" in f:
            raw = np.asarray(f["learned_net"][()]).reshape(-1)[0]
            raw = raw if isinstance(raw, bytes) else str(raw).encode()
            learned = raw.split(b"\0")[0].decode()
        step = _load_int(f, "current_step", path)
        if "history" not in f:
            raise UserError(f"{path}: no history group; not a Caffe .solverstate.h5")
        group = f["history"]
        history = [load_dataset(group, str(i), f"{path}: history", log)
                   for i in range(len(group))]
    return iteration, learned, step, history
