"""`caffe train` on the engine: build the solver and its nets, then run the loop.

The order is tools/caffe.cpp train() and Solver::Init's: read and check the solver → device
→ seed (random_seed + rank, before any net is built, so fillers repeat) → train net, its
weights → test nets, their weights → resume or fine-tune → "Starting Optimization" → Solve.
"""
import random
from dataclasses import dataclass

import numpy as np
import torch

from ..proto import caffe_pb2
from ..formats import caffemodel, prototxt, solver_log, tool_log
from ..formats.glog import Glog
from . import precision, snapshot, solver_setup
from .distributed import World
from .loop import Loop
from .signals import NoSignals, SignalActions
from .solver import Solver


@dataclass
class TrainOptions:
    solver_path: str
    weights: str = None        # comma-separated caffemodels to fine-tune from
    snapshot: str = None       # a .solverstate to resume from
    device: str = "cpu"        # "cpu" or "cuda:N"
    fast: bool = False         # the Net's opt-in fast mode (not bit-faithful)
    sigint_effect: str = "stop"
    sighup_effect: str = "snapshot"
    level: int = 0             # caffe train --level / --stage: added to train_state
    stages: tuple = ()
    param: object = None       # the SolverParameter, if the caller already read it


def seed_everything(seed):
    """Caffe::set_random_seed: fillers and the data layer's RNGs repeat from here."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def build(opts, world, log):
    """(solver param, Solver, train net, test nets), logging as Solver::Init does."""
    from .net import Net
    caffemodel.check_resume_or_finetune(opts.snapshot, opts.weights)
    param = opts.param
    if param is None:
        param = solver_setup.read_solver(opts.solver_path, log=log if world.is_root else None)
    param = caffe_pb2.SolverParameter.FromString(param.SerializeToString())   # ours to edit
    param.train_state.level = opts.level
    param.train_state.stage.extend(opts.stages)
    if opts.snapshot:
        param.ClearField("weights")
    elif opts.weights:
        param.ClearField("weights")
        param.weights.append(opts.weights)
    if world.is_root:
        solver_log.initializing_solver(log, prototxt.format_text(param))
        solver_setup.warn_costly_settings(param, solver_setup.test_nets(param, opts.solver_path), log)
        solver_setup.prepare_snapshot_dir(param)
    if param.random_seed >= 0:
        seed_everything(param.random_seed + world.rank)
    train_param, origin = solver_setup.train_net(param, opts.solver_path)
    if world.is_root:
        solver_log.creating_train_net(log, origin)
    net = _make_net(Net, train_param, opts, origin[1] or origin[0], log, world)
    for weights in param.weights:
        snapshot.load_weights([net], weights, log)
    test_nets = []
    if world.is_root:      # only the root solver tests (Caffe: test nets on the root only)
        for i, (test_param, source) in enumerate(solver_setup.test_nets(param, opts.solver_path)):
            solver_log.creating_test_net(log, i, source)
            test_nets.append(_make_net(Net, test_param, opts, source.split(": ")[-1], log))
            for weights in param.weights:
                snapshot.load_weights([test_nets[-1]], weights, log)
        solver_log.scaffolding_done(log)
    return param, Solver(param, net, log), net, test_nets


def _make_net(Net, net_param, opts, source, log, world=None):
    """A Net in its merged NetState; the train net of rank r reads every world_size-th record."""
    # net_param.state already is the merged NetState (Caffe copies it into the net's
    # parameters); the Net must not add the stages a second time.
    phase = net_param.state.phase
    rank, size = (world.rank, world.size) if world is not None else (0, 1)
    return Net(net_param, phase=phase, stages=(), level=None, device=opts.device,
               fast=opts.fast, source=source, rank=rank, world_size=size, logger=log)


def train(opts, observer=None, log=None):
    """Train as `caffe train` would; returns the Loop (its solver holds the final state).
    Raises UserError on bad input and loop.TrainingDiverged on a non-finite loss. Logs to `log`
    (stderr by default); in a multi-process run give the other ranks a silent one, as Caffe
    logs from the root solver only."""
    log = log if log is not None else Glog()
    precision.configure(opts.fast)
    world = World(opts.device)
    try:
        param, solver, net, test_nets = build(opts, world, log)
        actions = (SignalActions(opts.sigint_effect, opts.sighup_effect) if world.is_root
                   else NoSignals())
        with actions:
            if opts.snapshot:
                if world.is_root:
                    tool_log.resuming_from(log, opts.snapshot)
                snapshot.restore(solver, net, opts.snapshot, log)
            if world.is_root:
                tool_log.starting_optimization(log)
            world.broadcast_tensors(solver.datas + solver.history)
            loop = Loop(solver, net, test_nets, actions, world, observer, log)
            loop.solve()
        if world.is_root:
            tool_log.optimization_done(log)
        return loop
    finally:
        world.close()
