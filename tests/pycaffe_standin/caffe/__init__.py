"""A stand-in for pycaffe, for testing the caffe backend where real pycaffe is absent.

It offers the calls bnface_caffe.backends makes (set_mode_*, set_device, get_solver; a
Solver with net, test_nets, iter, solve, step, snapshot, restore, add_callback; a Net
with copy_from, blobs, blob_loss_weights) and runs them on the engine. Like Caffe's C++
glog, it writes its log lines straight to file descriptor 2, so the backend's fd-level
log capture is what gets tested. Put this folder first on PYTHONPATH to use it.
"""
import os

import numpy as np

from bnface_caffe.formats import glog, prototxt
from bnface_caffe.engine import snapshot as snapshots
from bnface_caffe.engine.loop import Loop
from bnface_caffe.engine.train import TrainOptions, build
from bnface_caffe.proto import caffe_pb2

STANDIN = True
_mode = {"gpu": False, "device": 0}


class _Fd2:
    """glog lines written with os.write(2, ...), as C++ fprintf(stderr) would."""

    def write(self, line):
        os.write(2, line.encode())

    def close(self):
        pass


_log = glog.Glog(stderr=False)
_log.sinks.append(_Fd2())


def set_mode_cpu():
    _mode["gpu"] = False


def set_mode_gpu():
    _mode["gpu"] = True


def set_device(i):
    _mode["device"] = i


class _Blob:
    def __init__(self, data):
        self.data = data


class Net:
    def __init__(self, engine_net):
        self._net = engine_net

    def copy_from(self, path):
        self._net.copy_trained_layers_from(prototxt.read_binary(path, caffe_pb2.NetParameter))

    @property
    def blobs(self):
        return {name: _Blob(np.asarray(v)) for name, v in self._net.outputs()}

    @property
    def blob_loss_weights(self):
        return dict(self._net.loss_weights)


class _World:
    size, rank, is_root = 1, 0, True

    def close(self):
        pass


class Solver:
    def __init__(self, path):
        device = f"cuda:{_mode['device']}" if _mode["gpu"] else "cpu"
        self._param, self._solver, net, tests = build(TrainOptions(path, device=device), _World(),
                                                      _log)
        self.net = Net(net)
        self.test_nets = [Net(t) for t in tests]
        self._loop = Loop(self._solver, net, tests)
        self._callbacks = []
        apply_update = self._solver.apply_update

        def update_after_callbacks(display_now=False):   # Caffe: on_gradients_ready, then update
            for _, on_gradients_ready in self._callbacks:
                on_gradients_ready()
            return apply_update(display_now)
        self._solver.apply_update = update_after_callbacks

    @property
    def iter(self):
        return self._solver.iter

    def add_callback(self, on_start, on_gradients_ready):
        self._callbacks.append((on_start, on_gradients_ready))

    def solve(self, resume_file=None):
        self._loop.solve()

    def step(self, iters):
        self._loop.step(iters)

    def snapshot(self):
        self._loop.snapshot()

    def restore(self, path):
        snapshots.restore(self._solver, self._loop.net, path)


def get_solver(path):
    return Solver(path)
