"""An exported model against the engine: onnxruntime and Net.forward on the same inputs,
output by output."""
import numpy as np
import torch

from ..errors import UserError


def session(model_bytes):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("--verify needs onnxruntime: pip install 'bnface-caffe[onnx]' "
                        "(make install puts it in .venv)") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def engine_outputs(net, inputs, outputs):
    net.reshape({name: array.shape for name, array in inputs.items()})
    for name, array in inputs.items():
        net.set_input(name, array)
    with torch.no_grad():
        net.forward()
    return {name: net.blob(name) for name in outputs}


def compare(sess, net, inputs, outputs):
    """{output: (max |onnx - engine|, max |engine|)} on these inputs ({input blob: array})."""
    got = dict(zip(outputs, sess.run(outputs, inputs)))
    want = engine_outputs(net, inputs, outputs)
    result = {}
    for name in outputs:
        if got[name].shape != want[name].shape:
            raise AssertionError(f"{name}: ONNX gives shape {got[name].shape}, the engine "
                                 f"{want[name].shape}")
        diff = np.abs(got[name].astype(np.float64) - want[name])
        result[name] = (float(diff.max(initial=0.0)), float(np.abs(want[name]).max(initial=0.0)))
    return result


def random_inputs(net, batch, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((batch,) + tuple(net.shapes[name][1:])).astype(np.float32)
            for name in net.input_names}
