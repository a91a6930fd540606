"""tools/gen_solver.py end to end."""
import pytest

from bnface_caffe.formats import prototxt
from bnface_caffe.proto import caffe_pb2
from conftest import assert_one_line_error, run_tool


def test_scaled_solver(tmp_path):
    out = tmp_path / "s.prototxt"
    result = run_tool("gen_solver", "short_step", "--scale", "0.01", "--net", "n.prototxt",
                      "--random-seed", "3", "--solver-mode", "CPU", "-o", out)
    assert result.returncode == 0, result.stderr
    s = prototxt.read_text(str(out), caffe_pb2.SolverParameter)
    assert (s.net, s.stepsize, s.max_iter, s.random_seed) == ("n.prototxt", 110, 1800, 3)
    assert s.solver_mode == caffe_pb2.SolverParameter.CPU


def test_table_variant_and_unknown_name():
    text = run_tool("gen_solver", "original", "--original-variant", "table").stdout
    s = prototxt.parse_text(text, caffe_pb2.SolverParameter)
    assert (s.lr_policy, s.stepsize) == ("step", 50000)
    assert_one_line_error(run_tool("gen_solver", "cosine"), "unknown schedule 'cosine'")


def test_scale_scales_display_and_the_help_says_which_fields_scale(tmp_path, capsys):
    from bnface_caffe.cli import gen_solver
    from conftest import call_main
    out = tmp_path / "s.prototxt"
    status, _, _ = call_main(gen_solver.main, ["multistep", "--scale", "0.01", "--display", "2000",
                                               "--test-interval", "4000", "-o", out], capsys)
    s = prototxt.read_text(str(out), caffe_pb2.SolverParameter)
    assert status == 0 and (s.display, s.test_interval, s.max_iter) == (20, 40, 2300)
    # a scaled value never reaches 0 (Caffe would then never display / test)
    call_main(gen_solver.main, ["multistep", "--scale", "0.0001", "--display", "20", "-o", out], capsys)
    assert prototxt.read_text(str(out), caffe_pb2.SolverParameter).display == 1
    status, help_text, _ = call_main(gen_solver.main, ["--help"], capsys)
    assert status == 0
    flat = " ".join(help_text.split())
    assert "stepsize, stepvalues, max_iter, test_interval, snapshot and display" in flat
    assert "test batches per test (not scaled)" in flat


@pytest.mark.parametrize("flags, fragment", [
    (["--max-iter", "-5"], "--max-iter must be at least 1, got -5"),
    (["--test-iter", "0"], "--test-iter must be at least 1, got 0"),
    (["--iter-size", "0"], "--iter-size must be at least 1, got 0"),
    (["--display", "0"], "--display must be at least 1"),
    (["--momentum", "2"], "--momentum must be in [0, 1), got 2.0"),
    (["--momentum", "-0.1"], "--momentum must be in [0, 1)"),
    (["--weight-decay", "-1"], "--weight-decay must not be negative"),
])
def test_values_caffe_would_misuse_are_refused(tmp_path, capsys, flags, fragment):
    from bnface_caffe.cli import gen_solver
    from conftest import assert_one_line_status, call_main
    status, out, err = call_main(gen_solver.main, ["multistep", *flags, "-o", tmp_path / "s.prototxt"],
                                 capsys)
    assert_one_line_status(status, err, fragment)
    assert out == "" and not (tmp_path / "s.prototxt").exists()
