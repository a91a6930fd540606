"""Faithful numerics by default, fast ones on request.

Faithful: float32 everywhere, no TF32, deterministic algorithms (warn-only, so a
CUDA op without a deterministic kernel still runs), cuDNN autotuning off. Fast:
TF32 matmuls/convs, bf16 autocast on CUDA, channels-last activations, cuDNN
autotuning. The switches are process-wide in torch: each Net sets them once when it is
built (one process runs one mode).
"""
import contextlib
import os

import torch

# cuBLAS needs this set before its first use to be deterministic.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def configure(fast):
    """Set the process-wide torch switches for a run in this mode (once per net or run)."""
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    torch.backends.cudnn.benchmark = fast
    torch.backends.cudnn.deterministic = not fast
    if torch.are_deterministic_algorithms_enabled() == fast:
        torch.use_deterministic_algorithms(not fast, warn_only=True)
    # Deterministic mode would also NaN-fill every new empty tensor: pure cost
    # (every buffer here is written before it is read), a third of a CPU step.
    torch.utils.deterministic.fill_uninitialized_memory = False


def autocast(fast, device):
    """bf16 autocast for fast mode on CUDA; on CPUs bf16 is rarely faster, so fp32 stays."""
    if fast and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(fast, device):
    """The line the set-up log prints about numerics."""
    kind = torch.device(device).type
    if not fast:
        return ("Numerics: faithful (float32, no TF32, deterministic algorithms) on "
                f"{kind.upper()}")
    parts = ["channels-last"]
    if kind == "cuda":
        parts = ["TF32", "bf16 autocast", "cuDNN autotuning"] + parts
    return f"Numerics: FAST mode ({', '.join(parts)}) on {kind.upper()}; results differ from Caffe's"
