"""`.solverstate` bytes by hand: SolverState iter = 1, learned_net = 2, history = 3,
current_step = 4; and the refusals."""
import struct

import numpy as np
import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.formats import solverstate


def test_state_bytes_are_caffes(tmp_path):
    state = solverstate.make(12, "snap_iter_12.caffemodel", 2, [np.array([0.5, -1.0], np.float32)])
    history = b"\x2a\x08" + struct.pack("<2f", 0.5, -1.0) + b"\x3a\x03\x0a\x01\x02"
    want = (b"\x08\x0c" + b"\x12\x17" + b"snap_iter_12.caffemodel"
            + b"\x1a" + bytes([len(history)]) + history + b"\x20\x02")
    path = str(tmp_path / "s.solverstate")
    solverstate.write(state, path)
    assert open(path, "rb").read() == want
    back = solverstate.read(path)
    assert back.iter == 12 and back.current_step == 2
    np.testing.assert_array_equal(solverstate.history_arrays(back, path)[0], [0.5, -1.0])


def test_names_and_learned_net_found_beside_a_moved_state(tmp_path):
    assert solverstate.snapshot_paths("out/run", 40) == ("out/run_iter_40.caffemodel",
                                                         "out/run_iter_40.solverstate")
    (tmp_path / "m.caffemodel").write_bytes(b"x")
    state = solverstate.make(1, "/gone/elsewhere/m.caffemodel", 0, [])
    found = solverstate.learned_net_path(state, str(tmp_path / "s.solverstate"))
    assert found == str(tmp_path / "m.caffemodel")
    with pytest.raises(UserError, match="does not exist"):
        solverstate.learned_net_path(solverstate.make(1, "/gone/x.caffemodel", 0, []),
                                     str(tmp_path / "s.solverstate"))


def test_refusals(tmp_path):
    with pytest.raises(UserError, match="no such solver state file"):
        solverstate.read(str(tmp_path / "none.solverstate"))
    assert solverstate.snapshot_paths("snap/x", 7, hdf5=True) == (   # snapshot_format: HDF5
        "snap/x_iter_7.caffemodel.h5", "snap/x_iter_7.solverstate.h5")
