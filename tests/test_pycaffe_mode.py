"""pycaffe's module-level names (bnface_caffe/pycaffe/mode.py, __init__.py): what exists,
what the multi-GPU names support, the log, and Caffe's type list."""
import pytest

import bnface_caffe.pycaffe as caffe
from bnface_caffe.errors import UserError
from bnface_caffe.pycaffe import mode
from engine_util import captured_log, messages

NAMES = ["Net", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver", "AdaDeltaSolver",
         "AdamSolver", "NCCL", "Timer", "init_log", "log", "set_mode_cpu", "set_mode_gpu",
         "set_device", "Layer", "get_solver", "layer_type_list", "set_random_seed",
         "solver_count", "set_solver_count", "solver_rank", "set_solver_rank",
         "set_multiprocess", "has_nccl", "__version__", "TRAIN", "TEST", "Classifier",
         "Detector", "proto"]


def test_pycaffes_names_exist():
    missing = [name for name in NAMES if not hasattr(caffe, name)]
    assert missing == []
    assert (caffe.TRAIN, caffe.TEST) == (0, 1)
    assert caffe.proto.caffe_pb2.NetParameter().DESCRIPTOR.full_name == "caffe.NetParameter"


def test_layer_type_list_is_sorted_like_caffes_registry():
    types = caffe.layer_type_list()
    assert types == sorted(types) and {"Python", "Convolution", "Input"} <= set(types)


def test_multi_gpu_names_say_what_they_support():
    assert caffe.has_nccl() is False
    assert caffe.solver_count() == 1 and caffe.solver_rank() == 0
    caffe.set_solver_count(1)
    caffe.set_solver_rank(0)
    caffe.set_multiprocess(True)
    for call in (lambda: caffe.set_solver_count(2), lambda: caffe.set_solver_rank(1),
                 lambda: caffe.NCCL(None, "uid"), caffe.NCCL.new_uid):
        with pytest.raises(UserError, match="multi-GPU training through pycaffe .* not supported"):
            call()


def test_log_and_init_log(monkeypatch):
    log, buffer = captured_log()
    monkeypatch.setattr(mode.settings, "log", log)
    caffe.log("hello from a script")
    assert messages(buffer) == ["hello from a script"]
    assert "_caffe.cpp:68]" in buffer.getvalue()
    caffe.init_log(1)                       # minloglevel 1: INFO dropped
    caffe.log("dropped")
    assert messages(buffer) == ["hello from a script"]
    assert log.stderr_level == 2            # initialised glog: ERROR and up on stderr


def test_timer_counts_milliseconds():
    timer = caffe.Timer()
    timer.start()
    sum(range(10000))
    timer.stop()
    assert timer.ms >= 0.0 and timer.ms == timer.ms


def test_gpu_mode_without_cuda_is_one_clear_error(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        caffe.set_mode_gpu()
    assert mode.device() == "cpu"


def test_caffe_draw_draws_with_draw_nets_drawing(tmp_path):
    pytest.importorskip("pydot")
    from bnface_caffe.pycaffe import draw
    from bnface_caffe.proto import caffe_pb2
    from google.protobuf import text_format
    net = text_format.Parse("""name: "d"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
""", caffe_pb2.NetParameter())
    text = draw.draw_net(net, "TB", ext="dot").decode()
    assert "conv (Convolution) kernel size: 3 stride: 1 pad: 0" in text
    assert draw.choose_color_by_layertype("Convolution") == "#FF5050"
    assert draw.get_pooling_types_dict()[0] == "MAX"
    draw.draw_net_to_file(net, str(tmp_path / "net.dot"))
    assert "relu" in (tmp_path / "net.dot").read_text()
