"""What the benchmarks share: the paper nets with an Input layer, the step functions timed,
clocks robust to a busy machine, memory high-water marks, and the machine's description.

Timing on a shared machine: every benchmark runs its candidates in alternating rounds (so a
burst of load slows all of them alike) and keeps the best round of each, the least disturbed
(timeit's advice). Two clocks: `wall` (time.perf_counter; what a user waits) and `cpu` (the
process's CPU time divided by the torch threads: on a loaded machine it leaves out the time the
scheduler gave to other programs; OpenMP threads that spin at a barrier still count, so it
errs on the slow side). Ratios (engine / plain, % of peak) always compare the same clock.
"""
import os
import platform
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bnface_caffe import paper  # noqa: E402
from bnface_caffe.architectures import DEFAULT_WIDTHS as PAPER_WIDTHS  # noqa: E402

CLASSES = paper.NUM_CLASSES
PAPER_ITERATIONS = paper.ORIGINAL_MAX_ITER
LR, MOMENTUM, DECAY = 0.01, 0.9, 5e-4   # the paper's original run (lr changes nothing in time)


def clock(kind):
    """A function giving seconds on the `wall` or `cpu` clock (see the module's docstring)."""
    if kind == "wall":
        return time.perf_counter
    if kind != "cpu":
        raise ValueError(f"unknown clock {kind!r}: wall or cpu")
    import torch

    def cpu_seconds():
        return time.process_time() / max(1, torch.get_num_threads())
    return cpu_seconds


def alternate(candidates, rounds, now, warmup=1):
    """Run each candidate `warmup` times, then `rounds` rounds of one call each in turn.
    candidates: {name: fn() -> work done (e.g. FLOPs or images) or None}. Returns
    {name: {"best": seconds, "median": seconds, "samples": [...]}}."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = now()
            fn()
            samples[name].append(now() - start)
    return {name: {"best": min(s), "median": statistics.median(s), "samples": s}
            for name, s in samples.items()}


def peak_rss_mb():
    """This process's resident-set high-water mark in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def paper_widths(fraction):
    """The paper's eight conv widths times `fraction` (at least 1 each)."""
    return tuple(max(1, round(w * fraction)) for w in PAPER_WIDTHS)


def input_net_param(bn, batch, classes=CLASSES, widths=PAPER_WIDTHS):
    """The generated train net with its Data layers replaced by an Input layer of the same
    shapes (data [batch,1,50,50], label [batch]): what the step benchmarks run."""
    from bnface_caffe.architectures import NetOptions, build_net, fed_by_input
    p = build_net(NetOptions(bn=bn, num_classes=classes, widths=tuple(widths)))
    return fed_by_input(p, batch)


def engine_step(net_param, device, fast, batch, classes, seed=0, compile=False):
    """(net, solver, step): the engine's TRAIN net on a fixed random batch and its own Solver
    (Caffe's SGD: lr 0.01, momentum 0.9, weight decay 5e-4). step() is one iteration:
    clear the diffs, forward + backward, update; it returns nothing (no sync on the loss)."""
    import torch
    from bnface_caffe.engine import Net
    from bnface_caffe.engine.solver import Solver
    from bnface_caffe.formats.glog import Glog
    from bnface_caffe.proto import caffe_pb2
    torch.manual_seed(seed)
    net = Net(net_param, phase=caffe_pb2.TRAIN, device=device, fast=fast, logger=Glog.silent(),
              compile=compile)
    net.set_input("data", torch.rand(batch, 1, 50, 50, device=device))
    net.set_input("label", torch.randint(0, classes, (batch,), device=device).float())
    solver = Solver(caffe_pb2.SolverParameter(base_lr=LR, lr_policy="fixed", momentum=MOMENTUM,
                                              weight_decay=DECAY), net)
    sync = _sync(device)

    def step():
        net.clear_param_diffs()
        net.forward_backward()
        solver.apply_update()
        sync()
    return net, solver, step


def plain_step(net_param, device, fast, batch, classes, seed=0):
    """(model, step): the same net as a hand-written torch.nn model (plain.Plain) with
    torch.optim.SGD (its fused kernel where torch has it), cross-entropy, and in fast mode bf16
    autocast where the engine uses it; channels-last wherever the engine is."""
    import torch
    import torch.nn.functional as F
    from plain import Plain
    from bnface_caffe.engine import precision
    torch.manual_seed(seed)
    device = torch.device(device)
    model = Plain(net_param=net_param).to(device)
    if precision.channels_last(fast, device):
        model = model.to(memory_format=torch.channels_last)
    try:
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY,
                              fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    x = torch.rand(batch, 1, 50, 50, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    bf16 = precision.uses_bf16(fast, device)
    sync = _sync(device)

    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        sync()
    return model, step


def _sync(device):
    import torch
    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def cpu_flags():
    """The SIMD features that matter here, as /proc/cpuinfo lists them."""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [flag for flag in wanted if flag in flags]


def machine():
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "flags": cpu_flags(), "gpu": gpu,
            "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def find_caffe(given=None):
    """The `caffe` binary: --caffe PATH, else the one on PATH, else None."""
    import shutil
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise SystemExit(f"--caffe {given}: not an executable file")
        return os.path.abspath(given)
    return shutil.which("caffe")


def caffe_env(caffe, threads):
    """Environment for running real Caffe: its BLAS on `threads` threads, glog to stderr, and
    its build's lib/ on LD_LIBRARY_PATH (build/tools/caffe -> build/lib) when that exists."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), GLOG_logtostderr="1", GLOG_minloglevel="0")
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(caffe))), "lib")
    if os.path.isdir(lib):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (lib, env.get("LD_LIBRARY_PATH")) if p)
    return env
