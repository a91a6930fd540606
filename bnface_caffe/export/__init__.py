"""Trained Caffe nets to other formats.

onnx_graph.py   the engine's Net (layers, blobs, shapes) -> an ONNX ModelProto
onnx_layers.py  one converter per Caffe layer type, keeping Caffe's semantics
onnx_check.py   onnxruntime against the engine on the same inputs
"""
