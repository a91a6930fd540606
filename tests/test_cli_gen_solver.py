"""tools/gen_solver.py end to end."""
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
