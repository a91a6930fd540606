"""Read a solver prototxt the way `caffe train` does, and say clearly what is wrong with it.

ReadSolverParamsFromTextFileOrDie: parse, upgrade the deprecated `solver_type` enum to the
`type` string, fix up `snapshot_prefix`. Then the checks Caffe makes in Solver::Init,
InitTrainNet and InitTestNets (where Caffe dies with a CHECK, we raise a one-line UserError),
and the net parameters each net is built from, with Caffe's NetState precedence:
phase < the net's own `state` < the solver's train_state / test_state[i].

Paths in a solver (net files, snapshot_prefix) are relative to the directory training runs
in, as in Caffe.
"""
import os

from .. import schedules
from ..formats import prototxt, solver_log
from ..errors import UserError
from ..proto import caffe_pb2
from . import updates

TYPE_OF_ENUM = {caffe_pb2.SolverParameter.SGD: "SGD", caffe_pb2.SolverParameter.NESTEROV: "Nesterov",
                caffe_pb2.SolverParameter.ADAGRAD: "AdaGrad",
                caffe_pb2.SolverParameter.RMSPROP: "RMSProp",
                caffe_pb2.SolverParameter.ADADELTA: "AdaDelta", caffe_pb2.SolverParameter.ADAM: "Adam"}
TRAIN_NET_FIELDS = ("net", "net_param", "train_net", "train_net_param")


def read_solver(path, log=None):
    """The SolverParameter in `path`, upgraded and checked as Caffe would (UserError if not);
    the upgrade lines go to `log` when one is given."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such solver file")
    solver = prototxt.read_text(path, caffe_pb2.SolverParameter)
    if solver.HasField("solver_type"):
        if solver.HasField("type"):
            raise UserError(f"{path}: the old solver_type field (enum) and the new type field "
                            "(string) cannot both be given; keep `type`")
        solver.type = TYPE_OF_ENUM[solver.solver_type]
        solver.ClearField("solver_type")
        if log is not None:
            solver_log.solver_type_upgraded(log, path)
    _fix_snapshot_prefix(path, solver, log)
    check(solver, path)
    return solver


def _fix_snapshot_prefix(path, solver, log):
    """Caffe's UpgradeSnapshotPrefixProperty: no prefix → the solver path without its
    extension; a prefix naming a directory → that directory / the solver file's stem."""
    stem = os.path.splitext(path)[0]
    if not solver.HasField("snapshot_prefix"):
        solver.snapshot_prefix = stem
        was_directory = False
    elif os.path.isdir(solver.snapshot_prefix):
        solver.snapshot_prefix = os.path.join(solver.snapshot_prefix, os.path.basename(stem))
        was_directory = True
    else:
        return
    if log is not None:
        solver_log.snapshot_prefix_set(log, solver.snapshot_prefix, was_directory)


def check(solver, source="solver"):
    """Everything Caffe CHECKs about a SolverParameter before training, as UserErrors."""
    given = [f for f in TRAIN_NET_FIELDS if solver.HasField(f)]
    if not given:
        raise UserError(f"{source}: no net to train; give one of {', '.join(TRAIN_NET_FIELDS)}")
    if len(given) > 1:
        raise UserError(f"{source}: more than one train net given ({', '.join(given)}); keep one")
    generic = solver.HasField("net") or solver.HasField("net_param")
    explicit = len(solver.test_net) + len(solver.test_net_param)
    if generic and len(solver.test_iter) < explicit or not generic and len(solver.test_iter) != explicit:
        raise UserError(f"{source}: test_iter must be given once for each test net "
                        f"({explicit} test_net/test_net_param, {len(solver.test_iter)} test_iter)")
    tests = len(solver.test_iter)
    if solver.test_state and len(solver.test_state) != tests:
        raise UserError(f"{source}: test_state must be given once per test net or not at all "
                        f"({tests} test nets, {len(solver.test_state)} test_state)")
    if tests and solver.test_interval <= 0:
        raise UserError(f"{source}: test_iter is given but test_interval is not; set "
                        "test_interval > 0 (how many iterations between tests) or remove test_iter")
    for name in ("test_interval", "display", "snapshot", "max_iter"):
        if getattr(solver, name) < 0:
            raise UserError(f"{source}: {name} must not be negative (got {getattr(solver, name)})")
    if any(n <= 0 for n in solver.test_iter):
        raise UserError(f"{source}: every test_iter must be positive (got {list(solver.test_iter)})")
    if solver.average_loss < 1:
        raise UserError(f"{source}: average_loss must be at least 1 (got {solver.average_loss})")
    if solver.iter_size < 1:
        raise UserError(f"{source}: iter_size must be at least 1 (got {solver.iter_size})")
    try:
        schedules.check(solver, source)
    except UserError as err:
        raise UserError(err if str(err).startswith(source) else f"{source}: {err}") from None
    updates.check_solver_constants(solver, source)


def _read_net(path, source, field):
    if not os.path.exists(path):
        raise UserError(f"{source}: {field} \"{path}\": no such file (paths in a solver are "
                        f"relative to the directory training runs in, {os.getcwd()})")
    return prototxt.read_text(path, caffe_pb2.NetParameter)


def _with_state(net_param, phase, override):
    """Caffe's NetState precedence: phase, then the net's own state, then the solver's."""
    state = caffe_pb2.NetState(phase=phase)
    state.MergeFrom(net_param.state)
    if override is not None:
        state.MergeFrom(override)
    net_param = caffe_pb2.NetParameter.FromString(net_param.SerializeToString())
    net_param.state.CopyFrom(state)
    return net_param


def train_net(solver, source="solver"):
    """(NetParameter with its NetState, (field, path or None)) for the train net."""
    if solver.HasField("train_net_param"):
        net, origin = solver.train_net_param, ("train_net_param", None)
    elif solver.HasField("train_net"):
        net, origin = _read_net(solver.train_net, source, "train_net"), ("train_net", solver.train_net)
    elif solver.HasField("net_param"):
        net, origin = solver.net_param, ("net_param", None)
    else:
        net, origin = _read_net(solver.net, source, "net"), ("net", solver.net)
    return _with_state(net, caffe_pb2.TRAIN, solver.train_state), origin


def test_nets(solver, source="solver"):
    """[(NetParameter with its NetState, description)] for the test nets, in Caffe's order:
    test_net_param, test_net, then copies of net/net_param for the remaining test_iter."""
    nets = [(n, "test_net_param") for n in solver.test_net_param]
    nets += [(_read_net(p, source, "test_net"), f"test_net file: {p}") for p in solver.test_net]
    remaining = len(solver.test_iter) - len(nets)
    if solver.HasField("net_param"):
        nets += [(solver.net_param, "net_param")] * remaining
    elif solver.HasField("net") and remaining:
        generic = _read_net(solver.net, source, "net")
        nets += [(generic, f"net file: {solver.net}")] * remaining
    states = list(solver.test_state) or [None] * len(nets)
    return [(_with_state(n, caffe_pb2.TEST, s), d) for (n, d), s in zip(nets, states)]


def net_state_args(net_param):
    """The (phase, stages, level) the engine Net takes, from a net's merged NetState."""
    state = net_param.state
    return state.phase, tuple(state.stage), state.level


def prepare_snapshot_dir(solver):
    """Make sure snapshots can be written (Caffe's CheckSnapshotWritePermissions); a missing
    folder is created instead of failing later, after hours of training."""
    if solver.snapshot <= 0 and not solver.snapshot_after_train:
        return
    folder = os.path.dirname(os.path.abspath(solver.snapshot_prefix))
    try:
        os.makedirs(folder, exist_ok=True)
        probe = f"{solver.snapshot_prefix}_iter_0.tempfile"
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise UserError(f"cannot write snapshots to snapshot_prefix '{solver.snapshot_prefix}' "
                        f"({err.strerror}); make sure its folder exists and is writable") from None


def check_data_sources(net_params):
    """Every Data layer's LMDB exists: a clear error now rather than deep in net set-up
    (real Caffe would abort with a CHECK failure)."""
    for net_param, description in net_params:
        for layer in net_param.layer:
            if (layer.type == "Data" and layer.HasField("data_param")
                    and layer.data_param.backend == caffe_pb2.DataParameter.LMDB):
                source = layer.data_param.source
                if not os.path.isdir(source) or not os.path.exists(os.path.join(source, "data.mdb")):
                    what = "is not an LMDB folder" if os.path.exists(source) else "does not exist"
                    raise UserError(f"{description}: layer '{layer.name}': data source "
                                    f"\"{source}\" {what} (make one with tools/build_lmdb.py; "
                                    "paths are relative to the directory training runs in)")


def warn_costly_settings(solver, test_net_params, log):
    """Log a warning (W) for each setting Caffe accepts but that wastes the run: a test pass
    that reads its test LMDB more than once (test_iter beyond ceil(records / batch)),
    display or test_interval larger than max_iter, momentum >= 1, a negative base_lr.
    `test_net_params`: test_nets()'s list. Never raises: a warning must not stop training."""
    if solver.base_lr < 0:
        solver_log.negative_base_lr(log, solver.base_lr)
    if solver.momentum >= 1 and solver.type not in ("AdaGrad", "RMSProp", "AdaDelta"):
        solver_log.momentum_at_least_one(log, solver.momentum)
    if solver.max_iter and solver.display > solver.max_iter:
        solver_log.display_past_max_iter(log, solver.display, solver.max_iter)
    if solver.max_iter and solver.test_iter and solver.test_interval > solver.max_iter:
        solver_log.test_interval_past_max_iter(log, solver.test_interval, solver.max_iter)
    for i, ((net_param, _), test_iter) in enumerate(zip(test_net_params, solver.test_iter)):
        for source, batch, records in _lmdb_inputs(net_param):
            once = -(-records // batch)   # the last batch may be partial: it wraps, as Caffe's does
            if records and test_iter > once:
                solver_log.test_rereads_its_data(log, i, test_iter, batch, test_iter * batch,
                                                 source, records, f"{test_iter * batch / records:.1f}", once)


def _lmdb_inputs(net_param):
    """(source, batch_size, records) of the LMDB Data layers a net (in its NetState) reads."""
    from ..formats import lmdb_io
    from ..formats.glog import Glog
    from .netparam import filter_net
    try:
        layers = filter_net(net_param, net_param.state, Glog.silent()).layer
    except UserError:
        return []
    found = []
    for layer in layers:
        if (layer.type == "Data" and layer.data_param.backend == caffe_pb2.DataParameter.LMDB
                and layer.data_param.batch_size > 0):
            try:
                env = lmdb_io.open_readonly(layer.data_param.source)
            except UserError:
                continue
            try:
                records = env.stat()["entries"]
            finally:
                lmdb_io.close_readonly(env)
            found.append((layer.data_param.source, layer.data_param.batch_size, records))
    return found
