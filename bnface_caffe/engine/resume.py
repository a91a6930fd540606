"""Exact resume: the training state a `.solverstate` forgets, captured and put back.

`capture(loop)` takes, cheaply, what decides the rest of a run beyond the weights and the
solver's history: torch's random state (CPU, and CUDA's when used: dropout), every data
layer's position (with its Transformer's own generator: mirror, crop), the smoothed-loss
window and the last display's iteration. The loop captures it at the start of every
iteration, so a snapshot taken in the middle of one still describes its start. numpy's and
Python's global generators, which nothing in a training iteration draws from, are read when
the sidecar is written (reading numpy's costs ~0.1 ms, too much for every iteration).
`to_document` turns it into the sidecar's JSON (formats/resume_state.py documents the
format); `restore_beside` reads the sidecar next to a `.solverstate` and applies it, or says
why the run resumes as Caffe does.
"""
import base64
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from ..formats import resume_state, solver_log

f32 = np.float32


@dataclass
class Captured:
    torch_cpu: torch.Tensor
    torch_cuda: list
    data_layers: list          # [{"net", "layer", "type", "state"}]
    losses: list
    smoothed_loss: float
    window_start: int
    last_display_iter: int


def nets_of(loop):
    """(label, net) for the train net and each test net, as the sidecar names them."""
    return [("train", loop.net)] + [(f"test#{i}", n) for i, n in enumerate(loop.test_nets)]


def data_layers(loop):
    """(label, layer) for every layer that keeps a data position (it has resume_state)."""
    return [(label, node.layer) for label, net in nets_of(loop) for node in net.nodes
            if hasattr(node.layer, "resume_state")]


# Caffe layer types that keep a read position or a generator of their own; one without
# resume_state/restore_resume_state cannot be put back where it was.
STATEFUL_DATA_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData")


def layers_left_out(loop):
    """(net label, layer) of data layers whose position a sidecar cannot hold."""
    return [(label, node.layer) for label, net in nets_of(loop) for node in net.nodes
            if node.layer.type in STATEFUL_DATA_TYPES and not hasattr(node.layer, "resume_state")]


def capture(loop, layers=None):
    """The state now; `layers`: data_layers(loop), when the caller keeps it."""
    on_cuda = loop.net.device.type == "cuda"
    return Captured(
        torch_cpu=torch.get_rng_state(),
        torch_cuda=torch.cuda.get_rng_state_all() if on_cuda else None,
        data_layers=[{"net": label, "layer": layer.name, "type": layer.type,
                      "state": layer.resume_state()}
                     for label, layer in (data_layers(loop) if layers is None else layers)],
        losses=list(loop.losses), smoothed_loss=loop.smoothed_loss,
        window_start=loop.window_start, last_display_iter=loop.iterations_last)


def _b64(tensor):
    return base64.b64encode(tensor.numpy().tobytes()).decode("ascii")


def _tensor(text):
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def to_document(state):
    """The sidecar's JSON object, less what the snapshot writer adds (iter, file, hash)."""
    name, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "format": resume_state.FORMAT, "version": resume_state.VERSION,
        "world_size": 1,
        "rng": {
            "torch_cpu": _b64(state.torch_cpu),
            "torch_cuda": None if state.torch_cuda is None else [_b64(t) for t in state.torch_cuda],
            "numpy": {"bit_generator": name, "key": [int(k) for k in key], "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        },
        "data_layers": state.data_layers,
        "loss_window": {"start_iter": int(state.window_start),
                        "losses": [float(x) for x in state.losses],
                        "smoothed_loss": float(state.smoothed_loss)},
        "last_display_iter": int(state.last_display_iter),
    }


def restore_beside(state_path, loop, log):
    """Apply the sidecar of `state_path` to a loop whose solver was just restored from it.
    Returns True when the run resumes exactly, False when it resumes as Caffe does (no
    sidecar, one of another state, or one that does not fit this run: a line says which)."""
    path = resume_state.path_for(state_path)
    if loop.world.size > 1:
        solver_log.resume_as_caffe_warning(log, f"exact resume is single-process only (this "
                                                f"run has {loop.world.size} processes)")
        return False
    if not os.path.exists(path):
        solver_log.resume_as_caffe(log, f"no {path} beside the solver state")
        return False
    document = resume_state.read(path)
    with open(state_path, "rb") as f:
        reason = resume_state.mismatch(document, f.read())
    try:
        if reason is None:
            reason = _misfit(document, loop)
        if reason is not None:
            solver_log.resume_as_caffe_warning(log, f"ignoring {path}: {reason}")
            return False
        _apply(document, loop)
        cpu_only = document["rng"].get("torch_cuda") is None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise UserError(f"{path}: a malformed resume sidecar ({type(err).__name__}: {err}); "
                        "delete it to resume as Caffe does") from None
    solver_log.resume_exact(log, path)
    for label, layer in layers_left_out(loop):
        solver_log.resume_partial(log, f"layer '{layer.name}' ({layer.type}) of the {label} net "
                                       "keeps no resume state: it reads from its start again")
    if cpu_only and loop.net.device.type == "cuda":
        solver_log.resume_partial(log, f"{path} was written by a CPU run: CUDA's random state "
                                       "(dropout on the GPU) starts afresh")
    return True


def _misfit(document, loop):
    """Why the sidecar's contents cannot be applied to this run, or None."""
    if document.get("world_size", 1) != 1:
        return f"it was written by a run of {document.get('world_size')} processes"
    want = {(d["net"], d["layer"]) for d in document.get("data_layers", [])}
    have = {(label, layer.name) for label, layer in data_layers(loop)}
    if want != have:
        return (f"its data layers {sorted(want)} are not this run's {sorted(have)} (was the "
                "net changed?)")
    window = document.get("loss_window", {})
    if len(window.get("losses", [])) > loop.param.average_loss:
        return (f"its loss window holds {len(window['losses'])} losses, more than this "
                f"solver's average_loss {loop.param.average_loss}")
    return None


def _apply(document, loop):
    rng = document["rng"]
    torch.set_rng_state(_tensor(rng["torch_cpu"]))
    if rng.get("torch_cuda") is not None and loop.net.device.type == "cuda":
        torch.cuda.set_rng_state_all([_tensor(t) for t in rng["torch_cuda"]])
    n = rng["numpy"]
    np.random.set_state((n["bit_generator"], np.asarray(n["key"], dtype=np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    states = {(d["net"], d["layer"]): d["state"] for d in document["data_layers"]}
    for label, layer in data_layers(loop):
        layer.restore_resume_state(states[(label, layer.name)])
    window = document["loss_window"]
    loop.restore_window([f32(x) for x in window["losses"]], f32(window["smoothed_loss"]),
                        int(window["start_iter"]))
    loop.iterations_last = int(document.get("last_display_iter", loop.iterations_last))
