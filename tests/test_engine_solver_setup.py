"""Reading a solver prototxt as `caffe train` does: upgrades, checks, which nets, NetState."""
import os

import pytest

from bnface_caffe.engine import solver_setup
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2

NET = 'name: "n"\nstate { stage: "from_net" level: 3 }\nlayer { name: "d" type: "Input" top: "x" }\n'


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.prototxt").write_text(NET)


def write(text, name="solver.prototxt"):
    with open(name, "w") as f:
        f.write(text)
    return name


BASE = 'base_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 10\n'


def test_snapshot_prefix_defaults_to_the_solver_path_without_extension():
    os.makedirs("runs.x")
    s = solver_setup.read_solver(write(BASE + 'net: "net.prototxt"\n', "runs.x/solver.prototxt"))
    assert s.snapshot_prefix == "runs.x/solver"


def test_snapshot_prefix_naming_a_directory_gets_the_solver_stem():
    os.makedirs("snaps")
    s = solver_setup.read_solver(write(BASE + 'net: "net.prototxt"\nsnapshot_prefix: "snaps"\n',
                                       "my_solver.prototxt"))
    assert s.snapshot_prefix == os.path.join("snaps", "my_solver")


def test_deprecated_solver_type_enum_becomes_the_type_string():
    s = solver_setup.read_solver(write(BASE + 'net: "net.prototxt"\nsolver_type: NESTEROV\n'))
    assert s.type == "Nesterov" and not s.HasField("solver_type")
    with pytest.raises(UserError, match="cannot both be given"):
        solver_setup.read_solver(write(BASE + 'net: "net.prototxt"\nsolver_type: ADAM\ntype: "Adam"\n'))


@pytest.mark.parametrize("extra, message", [
    ("", "no net to train; give one of net, net_param, train_net, train_net_param"),
    ('net: "net.prototxt"\ntrain_net: "net.prototxt"\n', "more than one train net"),
    ('net: "net.prototxt"\ntest_iter: 5\n', "test_iter is given but test_interval is not"),
    ('train_net: "net.prototxt"\ntest_iter: 5\ntest_interval: 10\n',
     "test_iter must be given once for each test net"),
    ('train_net: "net.prototxt"\ntest_net: "net.prototxt"\n',
     "test_iter must be given once for each test net"),
    ('net: "net.prototxt"\ntest_iter: 1\ntest_iter: 1\ntest_interval: 5\ntest_state { stage: "a" }\n',
     "test_state must be given once per test net"),
    ('net: "net.prototxt"\naverage_loss: 0\n', "average_loss must be at least 1"),
    ('net: "net.prototxt"\niter_size: 0\n', "iter_size must be at least 1"),
    ('net: "net.prototxt"\ntype: "AdaGrad"\nmomentum: 0.9\n', "momentum cannot be used with AdaGrad"),
    ('net: "net.prototxt"\nregularization_type: "L3"\n', "unknown regularization_type"),
    ('net: "net.prototxt"\nsnapshot_format: HDF5\n', "HDF5 is not supported"),
])
def test_caffe_checks_become_one_line_errors(extra, message):
    with pytest.raises(UserError, match=message) as err:
        solver_setup.read_solver(write(BASE + extra))
    assert "\n" not in str(err.value) and str(err.value).startswith("solver.prototxt: ")


def test_bad_schedule_and_missing_files_name_the_solver():
    with pytest.raises(UserError, match=r"^solver\.prototxt: .*stepsize > 0"):
        solver_setup.read_solver(write('base_lr: 0.1\nlr_policy: "step"\nnet: "net.prototxt"\n'))
    with pytest.raises(UserError, match="no such solver file"):
        solver_setup.read_solver("nope.prototxt")
    s = solver_setup.read_solver(write(BASE + 'net: "missing.prototxt"\n'))
    with pytest.raises(UserError, match=r'net "missing.prototxt": no such file \(paths in a solver'):
        solver_setup.train_net(s, "solver.prototxt")


def test_net_state_precedence_and_test_net_order():
    s = solver_setup.read_solver(write(
        BASE + 'net: "net.prototxt"\ntest_net: "net.prototxt"\ntest_iter: 2\ntest_iter: 3\n'
        'test_interval: 5\ntrain_state { level: 7 }\n'
        'test_state { stage: "t0" }\ntest_state { level: 1 }\n'))
    train, origin = solver_setup.train_net(s, "solver.prototxt")
    assert origin == ("net", "net.prototxt")
    assert solver_setup.net_state_args(train) == (caffe_pb2.TRAIN, ("from_net",), 7)
    tests = solver_setup.test_nets(s, "solver.prototxt")
    assert [d for _, d in tests] == ["test_net file: net.prototxt", "net file: net.prototxt"]
    assert solver_setup.net_state_args(tests[0][0]) == (caffe_pb2.TEST, ("from_net", "t0"), 3)
    assert solver_setup.net_state_args(tests[1][0]) == (caffe_pb2.TEST, ("from_net",), 1)


def test_generic_net_without_test_iter_has_no_test_net():
    s = solver_setup.read_solver(write(BASE + 'net: "net.prototxt"\n'))
    assert solver_setup.test_nets(s, "solver.prototxt") == []


def test_missing_lmdb_is_named():
    net = caffe_pb2.NetParameter()
    layer = net.layer.add(name="data", type="Data")
    layer.data_param.source = "no/such_lmdb"
    layer.data_param.backend = caffe_pb2.DataParameter.LMDB
    with pytest.raises(UserError, match=r"layer 'data': data source \"no/such_lmdb\" does not exist"):
        solver_setup.check_data_sources([(net, "train net")])


def test_snapshot_folder_is_created_and_probed(tmp_path):
    s = caffe_pb2.SolverParameter(snapshot=5, snapshot_prefix=str(tmp_path / "a" / "b" / "run"))
    solver_setup.prepare_snapshot_dir(s)
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
