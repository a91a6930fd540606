"""The resume sidecar `<prefix>_iter_N.resume.json`: what a `.solverstate` does not hold.

Caffe's `.solverstate` keeps the iteration, the weights' file, the lr step and the update
history. A run resumed from it reads its data from the first record again, draws new random
numbers and starts with an empty smoothed-loss window, so it repeats the uninterrupted run
only by luck. The engine writes this sidecar beside each snapshot (after the `.caffemodel`,
before the `.solverstate`, which stays exactly Caffe's: real Caffe still resumes from it and
ignores the sidecar) and reads it back on `--snapshot` / `--resume`.

Format, version 1: one UTF-8 JSON object (no pickle; NaN or Infinity, which only a diverged
loss can produce, use the usual JSON extension tokens). Keys not listed are ignored; a
higher version is refused.

    {"format": "bnface-caffe resume sidecar", "version": 1,
     "iter": 1200,                                  # the snapshot's iteration
     "solverstate": "run_iter_1200.solverstate",    # base name of the state it completes
                                                    # (or run_iter_1200.solverstate.h5)
     "solverstate_sha256": "9f2c…",                 # hex SHA-256 of that file's bytes: a
                                                    # sidecar beside another state is ignored
     "world_size": 1,                               # written by single-process runs only
     "rng": {
       "torch_cpu": "<base64>",                     # torch.get_rng_state(): dropout
       "torch_cuda": ["<base64>", ...] | null,      # torch.cuda.get_rng_state_all() on CUDA
       "numpy": {"bit_generator": "MT19937", "key": [624 ints], "pos": 624,
                 "has_gauss": 0, "cached_gaussian": 0.0},   # numpy.random's global state
       "python": {"version": 3, "internal": [625 ints], "gauss_next": null}},  # random module
     "data_layers": [                               # every layer reading data, all nets
       {"net": "train" | "test#0" | ..., "layer": "data", "type": "Data",
        "state": {"offset": 45,                     # records consumed (across wraps and ranks)
                  "next_key": "3030303030303435" | null,   # hex LMDB key of the next record
                  "transform_rng": {...}}}],        # the Transformer's numpy Generator
                                                    # (bit_generator.state: mirror/crop draws)
     "loss_window": {"start_iter": 0,               # the iteration the ring of losses counts from
                     "losses": [float32 values],    # the last average_loss training losses
                     "smoothed_loss": 1.2345},
     "last_display_iter": 1190}                     # the iteration of the last display line

A data position is that of the next batch the net will take, not of the prefetch thread,
which has read ahead. The states describe the start of iteration `iter` (before its test):
a snapshot taken in the middle of an iteration (a signal during a test, a diverged loss, a
bad record) records the state from that iteration's start (numpy's and Python's generators,
which no training iteration draws from, as they are when the file is written).
"""
import hashlib
import json

from ..errors import UserError
from . import prototxt

FORMAT = "bnface-caffe resume sidecar"
VERSION = 1
SUFFIX = ".resume.json"


def path_for(state_path):
    """The sidecar of `X_iter_N.solverstate` (or `.solverstate.h5`): `X_iter_N.resume.json`."""
    state_path = str(state_path)
    for ending in (".solverstate", ".solverstate.h5"):
        if state_path.endswith(ending):
            return state_path[:-len(ending)] + SUFFIX
    return state_path + SUFFIX


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def encode(document):
    return (json.dumps(document, separators=(",", ":")) + "\n").encode()


def write(document, path, before_rename=None):
    prototxt.write_bytes(path, encode(document), before_rename)


def read(path):
    """The sidecar's JSON object, or a UserError naming the file and what is wrong."""
    try:
        with open(path, "rb") as f:
            document = json.loads(f.read().decode())
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path}: not a resume sidecar ({err}); delete it to resume as Caffe "
                        "does") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserError(f"{path}: not a resume sidecar (no \"format\": \"{FORMAT}\"); delete it "
                        "to resume as Caffe does")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UserError(f"{path}: sidecar version {version!r}; this bnface-caffe reads version "
                        f"{VERSION} and older (upgrade it, or delete the file to resume as "
                        "Caffe does)")
    return document


def mismatch(document, state_bytes):
    """Why the sidecar does not belong to a state with these bytes, or None when it does."""
    want = document.get("solverstate_sha256")
    if want != sha256_hex(state_bytes):
        return (f"it was written for another {document.get('solverstate', '.solverstate')} "
                "(its SHA-256 differs)")
    return None
