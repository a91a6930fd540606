"""Faithful numerics by default, fast ones on request.

Faithful: float32 everywhere, no TF32, deterministic algorithms (warn-only, so a
CUDA op without a deterministic kernel still runs), cuDNN autotuning off. Fast:
bf16 autocast (on CUDA; on a CPU only where it has bf16 units: avx512_bf16 or AMX),
TF32 matmuls/convs and cuDNN autotuning on CUDA. The switches are process-wide in torch:
each Net sets them once when it is built (one process runs one mode).

Layout is not numerics: on a CPU both modes keep 4-D activations channels-last (oneDNN's
convolutions and torch's pooling are several times faster on it, and a float32 sum is a float32
sum in either order Caffe's im2col+GEMM would not share anyway); on CUDA only fast mode does,
as before. Freed host memory is kept for reuse in both modes (host_memory.py).
"""
import contextlib
import os

import torch

from . import host_memory

# cuBLAS needs this set before its first use to be deterministic.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

# BNFACE_CPU_BF16=0 keeps fast mode in float32 on a CPU that has bf16 units (for comparisons,
# and to check the fallback on any machine).
CPU_BF16_SWITCH = "BNFACE_CPU_BF16"


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
    host_memory.reuse_freed_memory()


def cpu_has_bf16():
    """True when this CPU computes bf16 natively (avx512_bf16 or AMX tiles); without them oneDNN
    emulates bf16 with conversions and it is slower than float32."""
    if os.environ.get(CPU_BF16_SWITCH, "1") == "0":
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported",
                                                     "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def uses_bf16(fast, device):
    kind = torch.device(device).type
    return fast and (kind == "cuda" or (kind == "cpu" and cpu_has_bf16()))


def channels_last(fast, device):
    """Whether 4-D activations run channels-last (see the module's docstring)."""
    return torch.device(device).type == "cpu" or fast


def autocast(fast, device):
    """bf16 autocast in fast mode where the device computes bf16 natively; else float32."""
    if uses_bf16(fast, device):
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(fast, device):
    """The line the set-up log prints about numerics (one line, also saying what fell back)."""
    kind = torch.device(device).type
    if not fast:
        return ("Numerics: faithful (float32, no TF32, deterministic algorithms) on "
                f"{kind.upper()}")
    parts = ["channels-last"]
    if kind == "cuda":
        parts = ["TF32", "bf16 autocast", "cuDNN autotuning"] + parts
    elif uses_bf16(fast, device):
        parts = ["bf16 autocast"] + parts
    else:
        why = ("off by BNFACE_CPU_BF16=0" if os.environ.get(CPU_BF16_SWITCH, "1") == "0"
               else "this CPU has no bf16 units (avx512_bf16/AMX)")
        parts = [f"float32: bf16 autocast {why}"] + parts
    return f"Numerics: FAST mode ({', '.join(parts)}) on {kind.upper()}; results differ from Caffe's"
