"""`.solverstate`: a SolverState proto (iter, learned_net, current_step, history blobs).

The history blobs are in learnable-param order, shape + float data (Blob::ToProto without
diff). `learned_net` names the snapshot's .caffemodel as it was written; a moved run still
resumes because we also look beside the .solverstate.
"""
import os

from ..errors import UserError
from ..proto import caffe_pb2
from . import prototxt
from .blobproto import array_to_proto, proto_to_array


def snapshot_paths(prefix, iteration, hdf5=False):
    """(`<prefix>_iter_N.caffemodel`, `<prefix>_iter_N.solverstate`), Caffe's names
    (`.caffemodel.h5`, `.solverstate.h5` with snapshot_format: HDF5)."""
    base = f"{prefix}_iter_{iteration}"
    if hdf5:
        return base + ".caffemodel.h5", base + ".solverstate.h5"
    return base + ".caffemodel", base + ".solverstate"


def make(iteration, learned_net, current_step, history):
    state = caffe_pb2.SolverState(iter=iteration, learned_net=learned_net,
                                  current_step=current_step)
    state.history.extend(array_to_proto(h) for h in history)
    return state


def write(state, path):
    prototxt.write_binary(state, path)


def read(path):
    """A binary .solverstate (an .h5 one is read by formats/hdf5.read_solverstate)."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such solver state file (give the .solverstate written "
                        "by a snapshot)")
    return prototxt.read_binary(path, caffe_pb2.SolverState)


def history_arrays(state, path):
    """The history blobs as float32 arrays, or a UserError naming the bad one."""
    out = []
    for i, blob in enumerate(state.history):
        try:
            out.append(proto_to_array(blob))
        except ValueError as err:
            raise UserError(f"{path}: history blob {i}: {err}") from None
    return out


def learned_net_path(state, state_path):
    """The caffemodel a state points to. Caffe opens the path as written (relative to where
    it runs); if that is gone we also look beside the .solverstate, so a moved run resumes."""
    path = state.learned_net
    if os.path.exists(path):
        return path
    beside = os.path.join(os.path.dirname(os.path.abspath(state_path)), os.path.basename(path))
    if os.path.exists(beside):
        return beside
    raise UserError(f"{state_path}: its learned_net \"{path}\" does not exist (nor beside the "
                    ".solverstate)")
