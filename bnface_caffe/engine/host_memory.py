"""Keep freed CPU memory for the next iteration instead of handing it back to the kernel.

PyTorch allocates CPU tensors with malloc. glibc serves blocks above its mmap threshold (at
most 32 MB) with a fresh mmap and unmaps them on free, and trims the heap top whenever a large
block is freed, so every iteration touches its big activations (the paper nets' first layers:
64×64×50×50 floats = 41 MB) as new pages: one page fault per 4 KB, about 1.7 µs each on the
machine this was measured on, which is 80,000 faults and 15–20% of a CPU training iteration.
Turning mmap off for malloc and never trimming makes the second iteration reuse the first one's
blocks: the arithmetic is unchanged, the peak RSS stays at its high-water mark (what a training
process needs anyway).
"""
import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # mallopt parameters (malloc.h)
_state = {"done": False, "active": False}


def reuse_freed_memory():
    """Ask glibc's malloc to keep freed memory (once per process). Returns True when it took
    effect; False on a C library without mallopt (macOS, musl), where nothing changes."""
    if _state["done"]:
        return _state["active"]
    _state["done"] = True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(M_MMAP_MAX, 0) == 1
    ok = mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    _state["active"] = ok
    return ok
