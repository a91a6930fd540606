"""pycaffe's process-wide settings: CPU or GPU, the device, the random seed, the log, timers,
and the multi-GPU (NCCL) names.

The mode and device are read when a Net or Solver is built: set them first, as pycaffe
scripts do (`caffe.set_device(0); caffe.set_mode_gpu()`). The log is one Glog for the whole
process, made from glog's environment (GLOG_minloglevel, GLOG_logtostderr, GLOG_log_dir):
like pycaffe before init_log(), every line goes to stderr; init_log() then leaves only ERROR
and FATAL there unless logtostderr, as glog does once initialised.

Multi-GPU training through pycaffe (caffe.NCCL, several solvers in one script) is not
supported: has_nccl() is False, a solver count or rank other than 1 / 0 is refused in one
line, and caffe.NCCL refuses to be built. Train on several GPUs with `bnface-train --gpu 0,1`.
"""
import time

import torch

from ..errors import UserError, like
from ..formats import pycaffe_log
from ..formats.glog import Glog


class _Settings:
    gpu = False
    device_id = 0
    solver_count = 1
    solver_rank = 0
    multiprocess = False
    log = None


settings = _Settings()


def current_log():
    """The process's pycaffe log (made on first use)."""
    if settings.log is None:
        settings.log = Glog.from_environment("pycaffe")
    return settings.log


def device():
    """Where nets built now compute: 'cpu' or 'cuda:N'."""
    return f"cuda:{settings.device_id}" if settings.gpu else "cpu"


def _need_cuda(what):
    if not torch.cuda.is_available():
        raise like(RuntimeError, f"{what}: no CUDA device is visible to this process "
                                 "(torch.cuda.is_available() is False); use caffe.set_mode_cpu()")


def set_mode_cpu():
    settings.gpu = False


def set_mode_gpu():
    _need_cuda("caffe.set_mode_gpu()")
    settings.gpu = True


def set_device(device_id):
    _need_cuda(f"caffe.set_device({device_id})")
    n = torch.cuda.device_count()
    if not 0 <= int(device_id) < n:
        raise like(RuntimeError, f"caffe.set_device({device_id}): this machine has {n} CUDA "
                                 f"device(s), 0..{n - 1}")
    settings.device_id = int(device_id)


def set_random_seed(seed):
    """Caffe::set_random_seed: fillers, Dropout and the data layers' shuffles repeat."""
    from ..engine.train import seed_everything
    seed_everything(int(seed))


def layer_type_list():
    """Every layer type the engine can build, sorted (LayerRegistry::LayerTypeList)."""
    from ..engine.layers import LAYERS
    return sorted(LAYERS)


def init_log(level=None, stderr=None):
    """init_log(), init_log(level), init_log(level, stderr): glog's initialisation with
    minloglevel = level and logtostderr = stderr (defaults: glog's environment)."""
    import os
    log = current_log()
    if level is not None:
        log.min_level = max(0, min(3, int(level)))
    if stderr is None:
        stderr = os.environ.get("GLOG_logtostderr", "0") in ("1", "true", "yes")
    log.stderr_level = 0 if stderr else 2     # initialised glog: ERROR and up on stderr


def log(message):
    """LOG(INFO) << message."""
    pycaffe_log.message(current_log(), str(message))


class Timer:
    """caffe.Timer: start(), stop(), ms (milliseconds between them; while running, until now)."""

    def __init__(self):
        self._start = self._stop = None

    def start(self):
        self._start, self._stop = time.perf_counter(), None

    def stop(self):
        if self._start is not None and self._stop is None:
            self._stop = time.perf_counter()

    @property
    def ms(self):
        if self._start is None:
            return 0.0
        self.stop()
        return (self._stop - self._start) * 1000.0


# -- multi-GPU ---------------------------------------------------------------------------------
MULTI_GPU = ("multi-GPU training through pycaffe (NCCL, several solvers) is not supported by "
             "bnface-caffe; train on several GPUs with `bnface-train --gpu 0,1` (torchrun)")


def has_nccl():
    return False


class NCCL:
    """caffe.NCCL: refused (see MULTI_GPU)."""

    def __init__(self, solver=None, uid=None):
        raise UserError(f"caffe.NCCL: {MULTI_GPU}")

    @staticmethod
    def new_uid():
        raise UserError(f"caffe.NCCL.new_uid(): {MULTI_GPU}")


def solver_count():
    return settings.solver_count


def set_solver_count(count):
    if int(count) != 1:
        raise UserError(f"caffe.set_solver_count({count}): {MULTI_GPU}")
    settings.solver_count = 1


def solver_rank():
    return settings.solver_rank


def set_solver_rank(rank):
    if int(rank) != 0:
        raise UserError(f"caffe.set_solver_rank({rank}): {MULTI_GPU}")
    settings.solver_rank = 0


def set_multiprocess(multiprocess):
    settings.multiprocess = bool(multiprocess)
