"""tools/gen_net.py end to end."""
import pytest

from bnface_caffe.formats import prototxt
from bnface_caffe.proto import caffe_pb2
from conftest import assert_one_line_error, run_tool


def test_writes_parseable_prototxt_to_file_and_stdout(tmp_path):
    out = tmp_path / "bn.prototxt"
    result = run_tool("gen_net", "--bn", "--num-classes", 7, "--widths", "8,16,16,32,24,48,40,80", "-o", out)
    assert result.returncode == 0, result.stderr
    net = prototxt.read_text(str(out), caffe_pb2.NetParameter)
    fc = next(l for l in net.layer if l.type == "InnerProduct")
    assert fc.inner_product_param.num_output == 7
    stdout = run_tool("gen_net", "--deploy").stdout
    assert prototxt.parse_text(stdout, caffe_pb2.NetParameter).layer[-1].name == "prob"


def test_bad_widths_and_input_size_are_one_line_errors():
    assert_one_line_error(run_tool("gen_net", "--widths", "32,64,64"), "--widths needs 8")
    assert_one_line_error(run_tool("gen_net", "--widths", "32,64,64,128,96,192,160,-1"), "positive")
    assert_one_line_error(run_tool("gen_net", "--input-size", "48"), "6x6 before the 7x7")


@pytest.mark.parametrize("flags, fragment", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--test-batch-size", "0"], "--test-batch-size must be at least 1, got 0"),
    (["--pixel-scale", "-1"], "--pixel-scale must be positive, got -1.0"),
    (["--num-classes", "0"], "--num-classes"),
])
def test_values_caffe_would_misuse_are_refused(tmp_path, capsys, flags, fragment):
    from bnface_caffe.cli import gen_net
    from conftest import assert_one_line_status, call_main
    status, out, err = call_main(gen_net.main, [*flags, "-o", tmp_path / "n.prototxt"], capsys)
    assert_one_line_status(status, err, fragment)
    assert out == "" and not (tmp_path / "n.prototxt").exists()


def test_block2_convs_and_dropout_flags_reach_the_net(tmp_path):
    from bnface_caffe.cli import gen_net
    out = tmp_path / "bn_ablation.prototxt"
    assert gen_net.main(["--bn", "--block2-convs", "2", "--dropout", "0.5", "-o", str(out)]) == 0
    net = prototxt.read_text(str(out), caffe_pb2.NetParameter)
    kinds = [l.type for l in net.layer]
    assert kinds.count("Convolution") == 8 and kinds.count("BatchNorm") == 4
    drop = next(l for l in net.layer if l.type == "Dropout")
    assert abs(drop.dropout_param.dropout_ratio - 0.5) < 1e-7
