"""bnface-pycaffe / python -m bnface_caffe.pycaffe (cli/pycaffe.py): a pycaffe script runs as
`python SCRIPT.py ARGS` would, with `import caffe` meaning bnface's pycaffe (in the modules
its Python layers import too); bad input ends it with one line and exit status 2."""
import os
import subprocess
import sys

import pytest

from bnface_caffe.cli import pycaffe as tool
from conftest import assert_one_line_error, run_tool
from pycaffe_util import HAND_NET, caffe_modules_restored  # noqa: F401

SCRIPT = '''
import os, sys
import caffe
import caffe.proto.caffe_pb2
from caffe.proto import caffe_pb2
import bnface_caffe.proto.caffe_pb2 as ours
import helper_next_to_script
assert caffe_pb2 is ours and caffe.proto.caffe_pb2 is ours
assert caffe.TRAIN == 0 and caffe.TEST == 1 and caffe.__version__ == "1.0.0"
print("argv", sys.argv)
print("name", __name__)
print("path0", sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
net = caffe.Net("hand.prototxt", caffe.TEST)
net.blobs["data"].data[...] = 1
net.forward()
net.blobs["out"].diff[...] = 1
print("diff", net.backward()["data"].shape)
print("layer", net.layers[0].type, "python" if "Python" in caffe.layer_type_list() else "")
sys.exit(int(sys.argv[-1]))
'''


def run_module(folder, *args):
    env = dict(os.environ, PYTHONUNBUFFERED="1", GLOG_minloglevel="1")
    return subprocess.run([sys.executable, "-m", "bnface_caffe.pycaffe", *map(str, args)],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "hand.prototxt").write_text(HAND_NET)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "helper_next_to_script.py").write_text("X = 1\n")
    (tmp_path / "scripts" / "run.py").write_text(SCRIPT)
    return tmp_path


def test_script_runs_as_python_would_run_it(folder):
    result = run_module(folder, "scripts/run.py", "--debug", "-x", "3")
    assert result.returncode == 3, result.stderr            # the script's own exit status
    out = result.stdout.splitlines()
    assert out[0] == "argv ['scripts/run.py', '--debug', '-x', '3']"   # its flags stay its own
    assert out[1:] == ["name __main__", "path0 True", "diff (2, 3)", "layer Input python"]


def test_the_tools_wrapper_runs_scripts_too(folder):
    result = run_tool("pycaffe", "scripts/run.py", "0", cwd=folder,
                      env={"GLOG_minloglevel": "1"})
    assert result.returncode == 0, result.stderr


BAD = {
    "missing_prototxt": ("import caffe\ncaffe.Net('nope.prototxt', caffe.TEST)\n",
                         ["Could not open file nope.prototxt"]),
    "unknown_end": ("import caffe\ncaffe.Net('hand.prototxt', caffe.TEST).forward(end='fc9')\n",
                    ["forward(end=...)", "no layer named 'fc9'"]),
    "wrong_shape": ("import numpy as np, caffe\nnet = caffe.Net('hand.prototxt', caffe.TEST)\n"
                    "net.forward(data=np.zeros((2, 5), np.float32))\n",
                    ["'data' got an array of shape (2, 5)", "the blob is (2, 3)"]),
    "module_not_found": ("import caffe\ncaffe.Net('py.prototxt', caffe.TEST)\n",
                         ["layer 'p' (Python absent_mod.L)", "cannot import module 'absent_mod'"]),
    "layer_raises": ("import caffe\ncaffe.Net('py2.prototxt', caffe.TEST).forward()\n",
                     ["layer 'p' (Python failing_mod.L)", "forward() raised ZeroDivisionError"]),
    "unsupported": ("import caffe.coord_map\n", ["caffe.coord_map", "not supported"]),
    "nccl": ("import caffe\ncaffe.NCCL(None, None)\n", ["caffe.NCCL", "not supported"]),
}
PY_NET = """name: "p"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 }} }} }}
layer {{ name: "p" type: "Python" bottom: "data" top: "out"
  python_param {{ module: "{module}" layer: "L" }} }}
"""
FAILING = '''import caffe
class L(caffe.Layer):
    def setup(self, bottom, top): pass
    def reshape(self, bottom, top): top[0].reshape(1)
    def forward(self, bottom, top): top[0].data[0] = 1 / 0
'''


class Finished:
    """What a run in this process left: exit status and stderr (as a CompletedProcess)."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def run_here(monkeypatch, capsys, *argv):
    """The console entry in this process (a subprocess per case would cost seconds each)."""
    monkeypatch.setattr(sys, "argv", ["bnface-pycaffe", *argv])
    monkeypatch.setattr(sys, "path", list(sys.path))
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        tool.entry("bnface-pycaffe")
    return Finished(done.value.code, capsys.readouterr().err)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2(folder, case, monkeypatch, capsys, caffe_modules_restored):
    (folder / "py.prototxt").write_text(PY_NET.format(module="absent_mod"))
    (folder / "py2.prototxt").write_text(PY_NET.format(module="failing_mod"))
    (folder / "failing_mod.py").write_text(FAILING)
    text, fragments = BAD[case]
    (folder / "bad.py").write_text(text)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GLOG_minloglevel", "2")
    monkeypatch.setattr("bnface_caffe.pycaffe.mode.settings.log", None)
    result = run_here(monkeypatch, capsys, "bad.py")
    sys.modules.pop("failing_mod", None)
    assert_one_line_error(result, "bnface-pycaffe: error:", *fragments)


def test_no_script_or_missing_script(folder, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    assert_one_line_error(run_here(monkeypatch, capsys), "no script given")
    assert_one_line_error(run_here(monkeypatch, capsys, "nothere.py"), "nothere.py: no such script")
    assert_one_line_error(run_here(monkeypatch, capsys, "--bogus", "x.py"), "unknown option --bogus")
    assert run_here(monkeypatch, capsys, "--version").returncode == 0
