"""torch.compile for the net's layers, on request (Net(..., compile=True), train --compile).

Consecutive layers whose forward is plain tensor algebra (convolutions, BatchNorm, Scale, ReLU,
pooling, InnerProduct, ...) become one compiled function each ("run"): it takes the blobs the
run reads from earlier layers and returns every blob the run produces (what Net.values holds
after a forward, as eagerly), so the compiler may fuse BatchNorm + Scale + ReLU passes and drop
the intermediate values in-place chains overwrite. Data and Input layers, loss and Accuracy
layers, Dropout (its RNG) and layers with a loss weight stay eager. Backward is autograd through
the compiled graphs; BatchNorm's statistics blobs are updated in place as eagerly.

Compilation needs a working backend (inductor needs a C++ compiler on a CPU, Triton on a GPU).
It is probed once per process when a net asks for it; where it fails — and if a run fails to
compile later — the net logs one line saying so and runs those layers eagerly: same results,
eager speed. On the CPUs measured in BENCHMARKS.md compiling was slower than the eager kernels
(oneDNN convolutions, vectorised BatchNorm), so it is off by default.
"""
import os

import torch

BACKEND_SWITCH = "BNFACE_COMPILE_BACKEND"     # e.g. aot_eager: compile without code generation
# Layers whose forward reads only plain attributes and tensors (no protobuf fields, which the
# compiler cannot trace); any other layer ends a run and runs eagerly.
COMPILABLE = {"Convolution", "Deconvolution", "BatchNorm", "Scale", "Bias", "ReLU", "PReLU",
              "Sigmoid", "TanH", "AbsVal", "Pooling", "InnerProduct", "Concat", "LRN"}
_probe = {}


def torch_compile(fn, backend):
    """torch.compile of a whole function: fullgraph, so anything it cannot capture fails at
    compile time, before any of it has run (a fallback never repeats a BatchNorm update). A
    seam: tests replace it to play a machine without a compiler."""
    return torch.compile(fn, backend=backend, dynamic=False, fullgraph=True)


def backend():
    return os.environ.get(BACKEND_SWITCH, "inductor")


def _why(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160] if text else ''}".rstrip(": ")


def available(device):
    """None when compiling works here (a tiny function compiled and run), else the reason."""
    key = (backend(), torch.device(device).type)
    if key not in _probe:
        try:
            probe = torch_compile(lambda x: torch.relu(x * 2 + 1), key[0])
            probe(torch.ones(4, device=device))
            _probe[key] = None
        except Exception as err:  # noqa: BLE001 - any failure means: stay eager
            _probe[key] = _why(err)
    return _probe[key]


def runs(nodes):
    """[(first, last)] index ranges of consecutive compilable nodes (two or more)."""
    out, start = [], None
    for i, node in enumerate(nodes + [None]):
        ok = (node is not None and node.layer.type in COMPILABLE
              and not any(node.loss_weights))
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start >= 2:
                out.append((start, i - 1))
            start = None
    return out


class CompiledRun:
    """Nodes first..last as one compiled function; falls back to eager (one log line) if the
    compiler fails on it."""

    def __init__(self, nodes, first, last, device, log):
        self.nodes = nodes[first:last + 1]
        self.first, self.last = first, last
        self.log = log
        made, reads = set(), []
        for node in self.nodes:
            for blob in node.bottoms:
                if blob not in made and blob not in reads:
                    reads.append(blob)
            made.update(node.tops)
        self.reads = reads
        self.writes = list(dict.fromkeys(b for node in self.nodes for b in node.tops))
        self.compiled = torch_compile(self._run, backend())
        self.failed = False

    def _run(self, grad, *tensors):
        values = dict(zip(self.reads, tensors))
        for node in self.nodes:
            bottoms = [values[b] for b in node.bottoms]
            if grad:
                bottoms = [x if need else x.detach()
                           for x, need in zip(bottoms, node.bottom_need_backward)]
            for blob, top in zip(node.tops, node.layer.forward(bottoms)):
                values[blob] = top
        return tuple(values[b] for b in self.writes)

    def __call__(self, values, grad):
        tensors = [values[b] for b in self.reads]
        if not self.failed:
            try:
                tops = self.compiled(grad, *tensors)
            except Exception as err:  # noqa: BLE001 - a compile failure: run eagerly
                self.failed = True
                names = f"{self.nodes[0].layer.name}..{self.nodes[-1].layer.name}"
                self.log.warning("net.cpp:0", f"Compiling layers {names} failed ({_why(err)}); "
                                              "running them eagerly")
            else:
                values.update(zip(self.writes, tops))
                return
        values.update(zip(self.writes, self._run(grad, *tensors)))
