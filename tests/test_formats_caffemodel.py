"""`.caffemodel`: the one reader's refusals, each one clear line, and --weights' list."""
import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.formats import caffemodel
from bnface_caffe.proto import caffe_pb2


def test_reads_a_model_with_blobs(tmp_path):
    path = tmp_path / "m.caffemodel"
    # layer (100) { name (1) "ip"; blobs (7) { data (5) [1.0] } }
    layer = b"\x0a\x02ip" + b"\x3a\x06" + b"\x2a\x04\x00\x00\x80\x3f"
    path.write_bytes(b"\xa2\x06" + bytes([len(layer)]) + layer)
    param = caffemodel.read(str(path))
    assert param.layer[0].name == "ip" and list(param.layer[0].blobs[0].data) == [1.0]


@pytest.mark.parametrize("name, content, fragment", [
    ("none.caffemodel", None, "no such weights file"),
    ("empty.caffemodel", b"", "the file is empty (0 bytes)"),
    ("text.caffemodel", b"layer { name: 'x' }", "not a binary caffe.NetParameter"),
    ("layers.caffemodel", caffe_pb2.NetParameter(layer=[caffe_pb2.LayerParameter(name="a")])
     .SerializeToString(), "holds 1 layer(s) but no weights"),
    ("m.caffemodel.h5", b"\x89HDF\r\n\x1a\n" + bytes(56), "is an HDF5 .caffemodel.h5, not a binary"),
])
def test_refusals_are_one_clear_line(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as err:
        caffemodel.read(str(path))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_weight_lists_and_resume_or_finetune(tmp_path):
    a, b = tmp_path / "a.caffemodel", tmp_path / "b.caffemodel"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    assert caffemodel.weight_paths(f"{a}, {b}") == [str(a), str(b)]
    with pytest.raises(UserError, match="give one or more"):
        caffemodel.weight_paths(" , ")
    with pytest.raises(UserError, match="not both"):
        caffemodel.check_resume_or_finetune("s.solverstate", "w.caffemodel")
    caffemodel.check_resume_or_finetune(None, "w.caffemodel")
    with pytest.raises(UserError, match="is a directory"):
        caffemodel.read(str(tmp_path))
