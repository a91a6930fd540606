"""The flags every tool shares (cli/options.py): --version and --debug in every --help, and
glog's switches (GLOG_minloglevel, GLOG_log_dir, GLOG_logtostderr) with -q/--quiet on the
tools that log."""
import importlib
import os

import pytest

from bnface_caffe import __version__
from bnface_caffe.cli import scripts, time_net, train
from conftest import call_main
from solver_fixtures import make_setup
from test_engine_cli import DEPLOY

TOOLS = sorted(name for name in vars(scripts) if not name.startswith("_") and name != "console")


def test_every_console_script_is_a_tool_here():
    assert len(TOOLS) >= 11 and {"train", "forward", "parse_log"} <= set(TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_version_and_debug_in_every_tool(tool, capsys):
    main = importlib.import_module(f"bnface_caffe.cli.{tool}").main
    status, out, _ = call_main(main, ["--version"], capsys)
    if tool == "caffe":    # the `caffe` front end answers as Caffe's binary does, then says what it is
        assert status == 0 and f"version 1.0.0 (bnface-caffe {__version__}" in out
    else:
        assert status == 0 and out.strip().endswith(f"(bnface-caffe) {__version__}")
    status, out, _ = call_main(main, ["--help"], capsys)
    assert status == 0 and "--version" in out
    assert "--debug" in out and "traceback" in " ".join(out.split())


@pytest.fixture
def deploy(tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text(DEPLOY)
    return path


def info_lines(text):
    return [line for line in text.splitlines() if line.startswith("I")]


@pytest.fixture(autouse=True)
def no_glog_settings(monkeypatch):
    for name in ("GLOG_logtostderr", "GLOG_minloglevel", "GLOG_log_dir"):
        monkeypatch.delenv(name, raising=False)


def test_time_net_quiet_and_glog_minloglevel(deploy, capsys, monkeypatch):
    status, _, err = call_main(time_net.main, [deploy, "--iterations", "1"], capsys)
    assert status == 0 and any("Top shape:" in line for line in info_lines(err))
    # -q: the set-up lines go, the timings (what the tool is for) stay
    status, _, err = call_main(time_net.main, [deploy, "--iterations", "1", "-q"], capsys)
    assert status == 0 and not any("Top shape:" in line for line in err.splitlines())
    assert any("Average Forward pass:" in line for line in err.splitlines())
    # GLOG_minloglevel=1, glog's own switch: no INFO line at all
    monkeypatch.setenv("GLOG_minloglevel", "1")
    status, _, err = call_main(time_net.main, [deploy, "--iterations", "1"], capsys)
    assert status == 0 and info_lines(err) == []


def test_glog_log_dir_and_logtostderr(deploy, tmp_path, capsys, monkeypatch):
    logs = tmp_path / "glog"
    monkeypatch.setenv("GLOG_log_dir", str(logs))
    status, _, err = call_main(time_net.main, [deploy, "--iterations", "1"], capsys)
    (name,) = [f for f in os.listdir(logs) if ".log.INFO." in f]
    assert name.startswith("time_net.") and os.readlink(logs / "time_net.INFO") == name
    assert info_lines((logs / name).read_text()) == info_lines(err)
    # GLOG_logtostderr=1: stderr only, no file
    monkeypatch.setenv("GLOG_logtostderr", "1")
    monkeypatch.setenv("GLOG_log_dir", str(tmp_path / "other"))
    status, _, err = call_main(time_net.main, [deploy, "--iterations", "1"], capsys)
    assert status == 0 and info_lines(err) and not (tmp_path / "other").exists()


def test_train_quiet_keeps_the_log_file_whole_and_warnings_on_stderr(tmp_path, capsys, monkeypatch):
    # display 5 > max_iter 2: a warning that must survive -q
    make_setup(tmp_path, {"max_iter": 2, "snapshot": 0, "test_interval": 2, "display": 5,
                          "snapshot_after_train": False})
    monkeypatch.chdir(tmp_path)
    status, _, err = call_main(train.main, ["solver.prototxt", "--backend", "engine", "-q",
                                            "--log", "run.log"], capsys)
    log = (tmp_path / "run.log").read_text()
    assert status == 0 and info_lines(err) == []
    (warning,) = err.splitlines()
    assert warning.startswith("W") and warning.endswith(
        "] display 5 is larger than max_iter 2: only iteration 0 will be displayed")
    assert warning in log.splitlines()
    assert "Optimization Done." in log and "Train net output #0" in log
