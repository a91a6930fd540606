"""Text/binary helpers: located errors, atomic writes, round trips."""
import os

import pytest

from bnface_caffe.formats import prototxt
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2


def test_text_error_is_located_file_line_col(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "n"\nlayer {\n  name: "a"\n  tpye: "ReLU"\n}\n')
    with pytest.raises(UserError) as err:
        prototxt.read_text(str(path), caffe_pb2.NetParameter)
    assert str(err.value).startswith(f"{path}:4:3: ")
    assert "tpye" in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_binary_garbage(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        prototxt.read_text(str(tmp_path / "nope.prototxt"), caffe_pb2.NetParameter)
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(UserError, match="not a binary caffe.NetParameter"):
        prototxt.read_binary(str(junk), caffe_pb2.NetParameter)
    text_as_binary = tmp_path / "bin.prototxt"
    text_as_binary.write_bytes(b"\x80\x81 not utf8")
    with pytest.raises(UserError, match="not UTF-8"):
        prototxt.read_text(str(text_as_binary), caffe_pb2.NetParameter)


def test_round_trip_text_and_binary(tmp_path):
    net = caffe_pb2.NetParameter(name="t")
    layer = net.layer.add(name="conv", type="Convolution", bottom=["data"], top=["conv"])
    layer.convolution_param.num_output = 8
    layer.convolution_param.kernel_size.append(3)
    blob = layer.blobs.add()
    blob.shape.dim.extend([8, 1, 3, 3])
    blob.data.extend([0.1 * i for i in range(72)])
    prototxt.write_text(net, str(tmp_path / "n.prototxt"))
    prototxt.write_binary(net, str(tmp_path / "n.caffemodel"))
    assert prototxt.read_text(str(tmp_path / "n.prototxt"), caffe_pb2.NetParameter) == net
    assert prototxt.read_binary(str(tmp_path / "n.caffemodel"), caffe_pb2.NetParameter) == net
    assert sorted(os.listdir(tmp_path)) == ["n.caffemodel", "n.prototxt"]  # no temp files left


def test_failed_write_leaves_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "m.caffemodel"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(UserError, match="m.caffemodel: cannot write .disk full.; nothing was written"):
        prototxt.write_binary(caffe_pb2.NetParameter(name="x"), str(target))
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.caffemodel"]
