"""Turn the inputs into 50×50 gray pixels, in parallel, into an on-disk array (so a
CASIA-sized set never has to fit in memory): decode + face-crop image files, or render the
synthetic identities. Each worker ignores SIGINT; Ctrl-C reaches only the parent."""
import contextlib
import multiprocessing
import os
import signal
import threading

import cv2
import numpy as np
from tqdm import tqdm

from . import faces, synthetic

_state = {}
_HELD = {signal.SIGINT, signal.SIGTERM}


def _setup(detect, size, margin):
    cv2.setNumThreads(1)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # libjpeg chatter
    _state.update(size=size, margin=margin, cascade=faces.load_cascade() if detect else None)


def _init_worker(*args):
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)      # pool.terminate() ends us quietly
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    _setup(*args)


def _load_one(job):
    index, path = job
    crop, how = faces.load_face(path, _state["size"], _state["cascade"], _state["margin"])
    return index, (None if crop is None else crop.tobytes()), how


def _render_one(job):
    k, count, seed, difficulty = job
    return k, synthetic.render_identity(seed, k, count, _state["size"], difficulty).tobytes()


def _pool_map(func, jobs, workers, init_args, chunksize):
    """Ordered-or-not map over jobs in `workers` processes (in-process when workers == 1)."""
    if workers <= 1:
        _setup(*init_args)
        yield from map(func, jobs)
        return
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    pool = None
    try:
        with _signals_held():
            pool = ctx.Pool(workers, _init_worker, init_args)
        yield from pool.imap_unordered(func, jobs, chunksize)
        pool.close()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


@contextlib.contextmanager
def _signals_held():
    """Start workers with Ctrl-C/SIGTERM held back. The workers inherit the blocked mask and
    unblock only after setting their own handlers (else pool.terminate()'s SIGTERM could reach
    a worker still running ours, and it would linger). In the parent, a signal arriving now is
    only recorded, then re-raised on the way out: raised as KeyboardInterrupt inside fork's
    own hooks it would be swallowed ("Exception ignored") and the build would run on."""
    received = []
    main = threading.current_thread() is threading.main_thread()
    saved = {sig: signal.signal(sig, lambda num, frame: received.append(num))
             for sig in _HELD} if main else {}
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])


def load_files(paths, store, detect, size, margin, workers, progress):
    """Fill store[i] with the crop of paths[i]; returns per-item outcome: "face", "centre",
    "as-is", or the reason the file was skipped (store[i] then stays zero)."""
    outcome = [None] * len(paths)
    jobs = list(enumerate(paths))
    bar = tqdm(total=len(paths), desc="crop faces" if detect else "load", unit="img",
               disable=not progress, leave=False)
    for index, pixels, how in _pool_map(_load_one, jobs, workers, (detect, size, margin), 64):
        if pixels is not None:
            store[index] = np.frombuffer(pixels, np.uint8).reshape(size, size)
        outcome[index] = how
        bar.update(1)
    bar.close()
    return outcome


def render_synthetic(identities, per_identity, store, seed, difficulty, size, workers, progress):
    """store[k*per_identity + j] = image j of identity k."""
    jobs = [(k, per_identity, seed, difficulty) for k in range(identities)]
    bar = tqdm(total=identities * per_identity, desc="render faces", unit="img",
               disable=not progress, leave=False)
    for k, pixels in _pool_map(_render_one, jobs, workers, (False, size, 0.0), 4):
        store[k * per_identity:(k + 1) * per_identity] = \
            np.frombuffer(pixels, np.uint8).reshape(per_identity, size, size)
        bar.update(per_identity)
    bar.close()



def is_skipped(how):
    """Outcomes other than a usable crop are skip reasons."""
    return how not in ("face", "face-fitted", "face-padded", "centre", "as-is", "rendered")
