"""Two ways to train one solver prototxt: real Caffe through pycaffe, or the engine.

`auto` takes pycaffe when `import caffe` works. With pycaffe, Caffe itself trains
(caffe.get_solver + solve); we add what `caffe train` adds around it: device choice,
--weights / --snapshot, SIGINT/SIGHUP effects, and the log: Caffe's glog lines go to
stderr, which we pass through to the log file as well (glog writes to fd 2 before it is
initialised, and we never initialise it).
"""
import codecs
import contextlib
import os
import sys
import threading

from .errors import UserError
from .formats import caffemodel, hdf5, solver_log, tool_log
from .formats.glog import cpp_number
from .engine.signals import NONE, SNAPSHOT, STOP, SignalActions

BACKENDS = ("auto", "caffe", "engine")


def pycaffe_importable():
    # C++ glog reads its GLOG_* flags from the environment when libglog loads (during the
    # import): Caffe's lines must go to stderr, where we copy them into --log. Our own Glog
    # reads the user's settings afterwards, so they are put back as they were.
    saved = {name: os.environ.get(name) for name in ("GLOG_logtostderr", "GLOG_minloglevel")}
    os.environ.setdefault("GLOG_logtostderr", "1")
    os.environ.setdefault("GLOG_minloglevel", "0")
    try:
        import caffe  # noqa: F401
    except Exception:
        return False
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return hasattr(caffe, "get_solver")


def resolve(name):
    if name not in BACKENDS:
        raise UserError(f"unknown backend \"{name}\"; choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "caffe" if pycaffe_importable() else "engine"
    if name == "caffe" and not pycaffe_importable():
        raise UserError("--backend caffe: `import caffe` fails in this Python; install pycaffe "
                        "(e.g. Ubuntu's python3-caffe-cpu or python3-caffe-cuda, or a Caffe "
                        "build's python/ folder on PYTHONPATH), or use --backend engine")
    return name


def pycaffe_has_gpu():
    """Whether the imported Caffe was built with CUDA (a CPU-only build aborts in GPU mode)."""
    try:
        with open("/proc/self/maps") as maps:
            return "libcudart" in maps.read()
    except OSError:
        return True


@contextlib.contextmanager
def stderr_also_to(log_path, line_sink=None):
    """Copy everything written to file descriptor 2 (C++ glog and Python alike) into
    `log_path` too, and the text to `line_sink.write` (e.g. a TensorBoard writer), through
    a pipe read by a thread."""
    if not log_path and line_sink is None:
        yield
        return
    log_file = None
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        log_file = open(log_path, "ab")
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def pump():
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            os.write(saved, chunk)
            if log_file is not None:
                log_file.write(chunk)
                log_file.flush()
            if line_sink is not None:
                line_sink.write(decoder.decode(chunk))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)         # closes the pipe's last write end: the pump sees EOF
        thread.join()
        os.close(read_end)
        os.close(saved)
        if log_file is not None:
            log_file.close()


class _StopRequested(Exception):
    pass


class _Diverged(Exception):
    pass


def _net_loss(net):
    """The net's weighted loss from its output blobs, as Net::Forward sums it."""
    import numpy as np
    total = 0.0
    for name, weight in net.blob_loss_weights.items():
        if weight:
            total += float(weight) * float(np.sum(net.blobs[name].data))
    return total


def train_with_pycaffe(opts, param, gpu_ids=(), observer=None, log=None):
    """Train with real Caffe; `param` is the solver as read_solver checked it. Returns 0,
    or raises UserError / loop.TrainingDiverged like the engine."""
    import math

    import caffe
    from .engine.loop import TrainingDiverged

    from .formats.glog import Glog
    log = log if log is not None else Glog()
    caffemodel.check_resume_or_finetune(opts.snapshot, opts.weights)
    if len(gpu_ids) > 1:
        raise UserError("the caffe backend trains on one GPU; for several use Caffe's own "
                        "`caffe train --gpu ...` or --backend engine")
    if gpu_ids:
        if not pycaffe_has_gpu():
            raise UserError("this Caffe was built without CUDA (CPU_ONLY); drop --gpu or use "
                            "--backend engine")
        caffe.set_device(gpu_ids[0])
        caffe.set_mode_gpu()
        tool_log.using_gpus(log, gpu_ids, [f"device {gpu_ids[0]}"])
    else:
        caffe.set_mode_cpu()
        tool_log.use_cpu(log)
    from .engine.solver_setup import prepare_snapshot_dir, test_nets, warn_costly_settings
    prepare_snapshot_dir(param)
    warn_costly_settings(param, test_nets(param, opts.solver_path), log)
    solver = caffe.get_solver(opts.solver_path)
    if opts.weights:
        for path in caffemodel.weight_paths(opts.weights):
            if hdf5.is_hdf5(path):         # our refusals first: Caffe would abort on them
                hdf5.read_caffemodel(path, log)
            else:
                caffemodel.read(path)
            for net in [solver.net] + list(solver.test_nets):
                solver_log.finetuning_from(log, path)
                net.copy_from(path)
    if opts.snapshot:
        if not os.path.exists(opts.snapshot):
            raise UserError(f"{opts.snapshot}: no such solver state file")
        tool_log.resuming_from(log, opts.snapshot)
        solver.restore(opts.snapshot)
    tool_log.starting_optimization(log)

    with SignalActions(opts.sigint_effect, opts.sighup_effect) as actions:
        def on_start():
            pass

        def on_gradients_ready():
            # Runs in Python each iteration, after the backward passes and before the
            # update, so pending signals are seen here (Caffe's loop never returns to us).
            loss = _net_loss(solver.net)
            if observer:
                observer.iteration(solver.iter, loss)
            if not math.isfinite(loss):
                raise _Diverged(loss)
            action = actions.requested_action()
            while action != NONE:
                if action == SNAPSHOT:
                    solver.snapshot()
                elif action == STOP:
                    raise _StopRequested()
                action = actions.requested_action()

        can_hook = hasattr(solver, "add_callback")
        if can_hook:
            solver.add_callback(on_start, on_gradients_ready)
        else:
            solver_log.note(log, "this pycaffe has no Solver.add_callback: SIGINT/SIGHUP effects and "
                          "the divergence check are off")
        try:
            solver.solve()
        except _StopRequested:
            if param.snapshot_after_train and (not param.snapshot or solver.iter % param.snapshot):
                solver.snapshot()
            solver_log.stopped_early(log)
        except _Diverged as diverged:
            loss = diverged.args[0]
            solver_log.diverged(log, solver.iter, loss)
            solver.snapshot()
            prefix = f"{param.snapshot_prefix}_iter_{solver.iter}"
            raise TrainingDiverged(
                f"iteration {solver.iter}: the training loss is {cpp_number(loss)}; the weights "
                f"that gave it are in {prefix}.caffemodel (resume with --snapshot "
                f"{prefix}.solverstate); lower base_lr, or check the data and the net") from None
    tool_log.optimization_done(log)
    return 0
