"""The resume sidecar's file: its name, its JSON read back, refusals, the tie to its state."""
import hashlib
import json

import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.formats import resume_state

# written by hand from the format in the module's docstring
HAND_WRITTEN = b"""{"format": "bnface-caffe resume sidecar", "version": 1, "iter": 12,
 "solverstate": "run_iter_12.solverstate", "solverstate_sha256": "%s", "world_size": 1,
 "rng": {"torch_cpu": "AAEC", "torch_cuda": null,
         "numpy": {"bit_generator": "MT19937", "key": [1, 2], "pos": 624, "has_gauss": 0,
                   "cached_gaussian": 0.0},
         "python": {"version": 3, "internal": [5, 6], "gauss_next": null}},
 "data_layers": [{"net": "train", "layer": "data", "type": "Data",
                  "state": {"offset": 96, "next_key": "3030303030303136",
                            "transform_rng": {"bit_generator": "PCG64",
                                              "state": {"state": 340282366920938463463374607431768211455,
                                                        "inc": 1},
                                              "has_uint32": 0, "uinteger": 0}}}],
 "loss_window": {"start_iter": 0, "losses": [1.5, 0.25, NaN], "smoothed_loss": 0.875},
 "last_display_iter": 10, "a key of a later version": true}
"""


def test_the_sidecar_sits_beside_its_state():
    assert resume_state.path_for("snap/run_iter_12.solverstate") == "snap/run_iter_12.resume.json"
    assert resume_state.path_for("snap/run_iter_12.solverstate.h5") == "snap/run_iter_12.resume.json"
    assert resume_state.path_for("odd_name") == "odd_name.resume.json"


def test_a_hand_written_sidecar_reads_back_whole(tmp_path):
    state_bytes = b"\x08\x0c\x12\x05bytes"
    path = tmp_path / "run_iter_12.resume.json"
    path.write_bytes(HAND_WRITTEN % hashlib.sha256(state_bytes).hexdigest().encode())
    doc = resume_state.read(str(path))
    assert doc["iter"] == 12 and doc["data_layers"][0]["state"]["offset"] == 96
    assert doc["data_layers"][0]["state"]["transform_rng"]["state"]["state"] == 2**128 - 1
    assert doc["loss_window"]["losses"][:2] == [1.5, 0.25]
    assert doc["loss_window"]["losses"][2] != doc["loss_window"]["losses"][2]     # NaN
    assert resume_state.mismatch(doc, state_bytes) is None
    assert resume_state.mismatch(doc, state_bytes + b"x") == (
        "it was written for another run_iter_12.solverstate (its SHA-256 differs)")


def test_write_then_read_is_the_same_document(tmp_path):
    doc = {"format": resume_state.FORMAT, "version": 1, "iter": 3, "big": 2**127 + 5,
           "losses": [0.1, float("inf")]}
    resume_state.write(doc, str(tmp_path / "x.resume.json"))
    assert resume_state.read(str(tmp_path / "x.resume.json")) == doc
    assert json.loads((tmp_path / "x.resume.json").read_text())["big"] == 2**127 + 5


@pytest.mark.parametrize("content, fragment", [
    (b"\x00\x01 not json", "not a resume sidecar ("),
    (b"[1, 2]", 'not a resume sidecar (no "format": "bnface-caffe resume sidecar")'),
    (b'{"format": "something else", "version": 1}', "not a resume sidecar"),
    (b'{"format": "bnface-caffe resume sidecar", "version": 2}',
     "sidecar version 2; this bnface-caffe reads version 1 and older")])
def test_what_is_not_a_sidecar_is_one_clear_error(tmp_path, content, fragment):
    path = tmp_path / "x.resume.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        resume_state.read(str(path))
    assert str(err.value).startswith(f"{path}: ") and fragment in str(err.value)
    assert "\n" not in str(err.value)
