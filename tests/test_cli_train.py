"""tools/train.py: bad input is one clear line and exit status 2, before any training."""
import pytest

from conftest import assert_one_line_error

NET = ('name: "n"\nlayer { name: "data" type: "Data" top: "data" top: "label"\n'
       '  data_param { source: "no_such_lmdb" batch_size: 4 backend: LMDB } }\n')
BASE = 'base_lr: 0.01\nmax_iter: 10\nsolver_mode: CPU\nlr_policy: "fixed"\n'
CORE = 'max_iter: 10\nsolver_mode: CPU\nnet: "net.prototxt"\n'


@pytest.mark.parametrize("solver_text, fragments", [
    (None, ["missing.prototxt: no such solver file"]),
    (BASE, ["no net to train"]),
    (BASE + 'net: "net.prototxt"\ntest_iter: 3\n', ["test_iter is given but test_interval is not"]),
    (BASE + 'net: "nonet.prototxt"\n', ['net "nonet.prototxt": no such file']),
    (BASE + 'net: "net.prototxt"\n', ["layer 'data'", '"no_such_lmdb" does not exist']),
    (CORE + 'base_lr: 0.1\nlr_policy: "cosine"\n', ['unknown lr_policy "cosine"']),
    (CORE + 'base_lr: oops\n', ["solver.prototxt:4:10: ", "oops"]),
])
def test_bad_input_is_one_line_exit_2(tool, tmp_path, solver_text, fragments):
    (tmp_path / "net.prototxt").write_text(NET)
    name = "missing.prototxt"
    if solver_text is not None:
        name = "solver.prototxt"
        (tmp_path / name).write_text(solver_text)
    result = tool("train", name, "--backend", "engine", cwd=tmp_path)
    assert_one_line_error(result, *fragments)


def test_snapshot_and_weights_together_and_unknown_backend(tool, tmp_path):
    (tmp_path / "s.prototxt").write_text(BASE)
    result = tool("train", "s.prototxt", "--snapshot", "a.solverstate", "--weights", "b.caffemodel",
                  cwd=tmp_path)
    assert_one_line_error(result, "not both")
    result = tool("train", "s.prototxt", "--backend", "tensorflow", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_gpu_request_without_cuda(tool, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    (tmp_path / "s.prototxt").write_text(BASE + 'net: "net.prototxt"\n')
    result = tool("train", "s.prototxt", "--backend", "engine", "--gpu", "0", cwd=tmp_path)
    assert_one_line_error(result, "--gpu 0: no CUDA devices visible here")


@pytest.mark.parametrize("content, fragment", [
    (b"", "the file is empty (0 bytes)"),
    (b"\x0a\x01n\xa2\x06\x03\x0a\x01a", "holds 1 layer(s) but no weights"),   # name "n", layer "a"
])
def test_weights_that_cannot_be_used_are_refused_before_training(tool, tmp_path, content, fragment):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "s.prototxt").write_text(BASE + 'net: "net.prototxt"\n')
    (tmp_path / "w.caffemodel").write_bytes(content)
    result = tool("train", "s.prototxt", "--backend", "engine", "--weights", "w.caffemodel",
                  cwd=tmp_path)
    assert_one_line_error(result, "w.caffemodel: " + fragment)
