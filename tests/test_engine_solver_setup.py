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


def warnings_for(solver_text, records=None):
    """The W lines warn_costly_settings logs for a solver (a 10-record test LMDB when asked)."""
    import io

    from bnface_caffe.formats.glog import Glog
    from solver_fixtures import make_lmdb
    if records is not None:
        make_lmdb("test_lmdb", records, seed=0)
        with open("tv.prototxt", "w") as f:
            f.write('name: "tv"\n'
                    'layer { name: "d" type: "Data" top: "x" top: "y" include { phase: TRAIN }\n'
                    '  data_param { source: "train_lmdb" batch_size: 64 backend: LMDB } }\n'
                    'layer { name: "d" type: "Data" top: "x" top: "y" include { phase: TEST }\n'
                    '  data_param { source: "test_lmdb" batch_size: 4 backend: LMDB } }\n')
    log, buffer = Glog(stderr=False), io.StringIO()
    log.sinks.append(buffer)
    solver = solver_setup.read_solver(write(solver_text))
    solver_setup.warn_costly_settings(solver, solver_setup.test_nets(solver, "solver.prototxt"), log)
    lines = buffer.getvalue().splitlines()
    assert all(line.startswith("W") for line in lines)
    return [line.split("] ", 1)[1] for line in lines]


def test_warnings_that_save_hours():
    sane = 'base_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 100\nmomentum: 0.9\ndisplay: 10\n'
    assert warnings_for(sane + 'net: "net.prototxt"\n') == []
    assert warnings_for(sane.replace("0.01", "-0.1") + 'net: "net.prototxt"\n') == [
        "base_lr -0.1 is negative: every update climbs the loss instead of descending it"]
    (line,) = warnings_for(sane.replace("0.9", "2") + 'net: "net.prototxt"\n')
    assert line.startswith("momentum 2 is not below 1")
    (line,) = warnings_for(sane.replace("0.9", "1") + 'net: "net.prototxt"\n')
    assert line.startswith("momentum 1 is not below 1")
    assert warnings_for(sane.replace("display: 10", "display: 200") + 'net: "net.prototxt"\n') == [
        "display 200 is larger than max_iter 100: only iteration 0 will be displayed"]
    assert warnings_for(sane + 'net: "net.prototxt"\ntest_iter: 1\ntest_interval: 101\n') == [
        "test_interval 101 is larger than max_iter 100: the nets are tested at iteration 0 only"]


@pytest.mark.parametrize("test_iter, warned", [(2, False), (3, False), (4, True), (30, True)])
def test_warning_when_a_test_reads_its_lmdb_more_than_once(test_iter, warned):
    # 10 records in batches of 4: 3 batches read each record (the third wraps, as in Caffe)
    solver = (f'net: "tv.prototxt"\ntest_iter: {test_iter}\ntest_interval: 50\nbase_lr: 0.01\n'
              'lr_policy: "fixed"\nmax_iter: 100\n')
    lines = warnings_for(solver, records=10)
    if not warned:
        assert lines == []
        return
    reads = test_iter * 4 / 10
    assert lines == [f"Test net #0: test_iter {test_iter} x batch 4 = {test_iter * 4} images per "
                     f"test, but test_lmdb holds 10 records: every test reads them {reads:.1f} "
                     "times over; test_iter 3 reads each once"]
