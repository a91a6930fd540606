"""caffe.SGDSolver and its family on the engine's solver and training loop.

`SGDSolver(path)` is Solver::Init on the engine (engine/train.py's build: read and check the
solver, seed with random_seed, the train net and its weights, the test nets), so it logs what
Caffe logs. As in Caffe, the class decides the update rule, whatever the file's `type` says
(`get_solver(path)` picks the class from `type`). `step(n)` and `solve()` are the engine's own
loop (engine/loop.py: tests every test_interval, display lines, snapshots, the lr schedule),
running the engine's whole-net pass; afterwards the nets' blobs hold the last pass's values,
as Caffe's do. `.net` and `.test_nets` are pycaffe Nets over the engine's nets; the test nets
share the train net's weights from the first test on (Solver::Test), as in Caffe.
"""
import contextlib

from ..engine import snapshot as snapshots
from ..engine import solver_setup
from ..engine.loop import Loop, SingleProcess
from ..engine.solver import Solver as EngineSolver
from ..engine.train import TrainOptions, build
from ..errors import UserError, like
from ..formats import solver_log
from ..proto import caffe_pb2
from . import mode
from .net import Net


class Solver:
    """pycaffe's Solver: net, test_nets, iter, param, step, solve, restore, snapshot,
    apply_update, add_callback, share_weights."""
    type = None

    def __init__(self, solver_file):
        log = mode.current_log()
        param = solver_setup.read_solver(str(solver_file), log=log)
        self._setup(param, str(solver_file), log)

    def _setup(self, param, path, log):
        opts = TrainOptions(solver_path=path, device=mode.device(), param=param)
        param, engine_solver, net, test_nets = build(opts, SingleProcess(), log)
        if self.type is not None and param.type != self.type:
            param = caffe_pb2.SolverParameter.FromString(param.SerializeToString())
            param.type = self.type
            engine_solver = EngineSolver(param, net, log)
        # scripts read param.diff after step(): Caffe leaves each update there, the fused path
        # the gradient
        engine_solver.fused = False
        self._solver, self._log = engine_solver, log
        self.net = Net._wrap(net)
        self.test_nets = [Net._wrap(t) for t in test_nets]
        self._loop = Loop(engine_solver, net, test_nets, log=log)

    @property
    def iter(self):
        return self._solver.iter

    @property
    def param(self):
        return self._solver.param

    @contextlib.contextmanager
    def _engine_pass(self):
        with contextlib.ExitStack() as stack:
            for net in [self.net] + self.test_nets:
                stack.enter_context(net._engine_pass())
            yield

    def step(self, iters):
        """Solver::Step: `iters` iterations of the engine's loop."""
        with self._engine_pass():
            self._loop.step(int(iters))

    def solve(self, resume=None):
        """Solver::Solve: train to max_iter (resuming from a .solverstate first if given)."""
        def restore():
            solver_log.restoring(self._log, resume)
            self._restore(resume)
        with self._engine_pass():
            self._loop.solve(restore if resume is not None else None)

    def restore(self, path):
        """Solver::Restore: iter, weights, history from a .solverstate."""
        with self.net._computing():
            self._restore(path)

    def _restore(self, path):
        snapshots.restore(self._solver, self._loop.net, str(path), self._log)

    def snapshot(self):
        """Solver::Snapshot: <prefix>_iter_N.caffemodel and .solverstate."""
        with self.net._computing():
            self._loop.snapshot()

    def apply_update(self):
        """SGDSolver::ApplyUpdate: one update from the diffs as they are (iter + 1)."""
        p = self.param
        display = bool(p.display) and self.iter % p.display == 0
        with self.net._computing():
            self._solver.apply_update(display)

    def add_callback(self, on_start, on_gradients_ready=None):
        """Solver::add_callback: on_start() before each iteration's passes,
        on_gradients_ready() before its update."""
        if on_gradients_ready is None:
            raise like(TypeError, "solver.add_callback(on_start, on_gradients_ready): give both "
                                  "functions (an NCCL object is not supported here)")
        self._loop.callbacks.append(_Callback(self, on_start, on_gradients_ready))

    def share_weights(self, net):
        """`net` computes with this solver's train-net weights."""
        net.share_with(self.net)


class _Callback:
    """Runs a Python callback in the middle of the engine's loop: the nets' blobs first take
    the engine's latest values (the callback may read them, as in Caffe), and what the
    callback writes into parameters goes back to the device before the loop goes on."""

    def __init__(self, solver, on_start, on_gradients_ready):
        self.solver, self.functions = solver, (on_start, on_gradients_ready)

    def _call(self, function):
        nets = [self.solver.net] + self.solver.test_nets
        for net in nets:
            net._runner.pull()
        try:
            function()
        finally:
            for net in nets:
                for storage in net._host_copies():
                    storage.push()

    def on_start(self):
        self._call(self.functions[0])

    def on_gradients_ready(self):
        self._call(self.functions[1])


class SGDSolver(Solver):
    type = "SGD"

    @property
    def lr(self):
        """GetLearningRate at the current iter."""
        return float(self._solver.learning_rate())


class NesterovSolver(SGDSolver):
    type = "Nesterov"


class AdaGradSolver(SGDSolver):
    type = "AdaGrad"


class RMSPropSolver(SGDSolver):
    type = "RMSProp"


class AdaDeltaSolver(SGDSolver):
    type = "AdaDelta"


class AdamSolver(SGDSolver):
    type = "Adam"


SOLVERS = {cls.type: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
                                     AdaDeltaSolver, AdamSolver)}


def get_solver(solver_file):
    """The solver of the file's `type` (SolverRegistry::CreateSolver)."""
    log = mode.current_log()
    param = solver_setup.read_solver(str(solver_file), log=log)
    cls = SOLVERS.get(param.type)
    if cls is None:
        raise UserError(f"{solver_file}: unknown solver type \"{param.type}\" (known types: "
                        f"{', '.join(sorted(SOLVERS))})")
    solver = cls.__new__(cls)
    solver._setup(param, str(solver_file), log)
    return solver
