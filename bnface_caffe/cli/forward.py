"""forward: run a deploy net on inputs, like pycaffe's net.forward() in a script.

INPUT is one .npy array shaped like the net's input blob ([N,] C, H, W), or image
files, each read gray and cropped to the input size as the LMDB builder does
(largest face, else the centre) and then given the net's transform
((pixel - mean) * scale, from --transform-from TRAIN_VAL.prototxt or
--mean-file/--mean-value/--pixel-scale). OUT.npz holds every output blob by name (and
any --blobs), one row per input; --top-k prints the best classes per input.

Quiet by default, as a tool for scripts: stderr gets warnings and errors only, Caffe's net
set-up lines (several hundred for the paper's nets) with -v/--verbose. GLOG_log_dir still
gets every line in its file, as glog does.
"""
import argparse
import io
import os

import numpy as np
import torch

from ..engine import Net, read_net
from ..engine.transform import Transformer
from ..errors import UserError
from ..formats import caffemodel
from ..formats.glog import Glog
from ..formats.prototxt import write_bytes
from ..proto import caffe_pb2
from . import options

DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "DummyData",
                    "Python")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("deploy", help="deploy prototxt (an Input layer feeds the net)")
    ap.add_argument("weights", help=".caffemodel with the trained weights")
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="one .npy array, or image files")
    ap.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    ap.add_argument("--blobs", default="", help="comma-separated extra blobs to save (e.g. pool4)")
    ap.add_argument("--top-k", type=int, metavar="K", help="print the K best classes per input")
    ap.add_argument("--labels", help="labels.txt: line i names class i (for --top-k; one line "
                                     "per class of the net)")
    ap.add_argument("--input-blob", help="the input blob to feed (default: the net's only one)")
    ap.add_argument("--batch-size", type=int, default=64, help="inputs per forward pass")
    ap.add_argument("--transform-from", metavar="TRAIN_VAL",
                    help="take transform_param from this net's TEST-phase Data layer")
    ap.add_argument("--mean-file", help="mean.binaryproto subtracted from image inputs")
    ap.add_argument("--mean-value", type=float, action="append", help="per-channel mean")
    options.add_pixel_scale(ap)
    ap.add_argument("--raw", action="store_true", help="feed image pixels 0..255 untransformed")
    ap.add_argument("--no-detect", action="store_true", help="centre crop, no face detection")
    options.add_gpu(ap)
    chatter = ap.add_mutually_exclusive_group()
    chatter.add_argument("-v", "--verbose", action="store_true",
                         help="show Caffe's net set-up lines on stderr (default: warnings only)")
    options.add_quiet(chatter, "warnings on stderr either (errors only)")
    options.add_version(ap)
    args = ap.parse_args(argv)
    args.pixel_scale = options.pixel_scale(args, ap.prog)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.top_k is not None and args.top_k < 1:
        raise UserError(f"--top-k must be at least 1 (the number of best classes to print), "
                        f"got {args.top_k}; leave it out to print none")
    if args.labels and args.top_k is None:
        raise UserError("--labels names the classes that --top-k prints; give --top-k K too")
    return args


def transform_param(args):
    """The TransformationParameter for image inputs, from the flags."""
    given = args.mean_file or args.mean_value or args.pixel_scale is not None
    if args.transform_from:
        if given:
            raise UserError("give --transform-from or --mean-file/--mean-value/--pixel-scale, "
                            "not both")
        net = read_net(args.transform_from, Glog.silent())
        for layer in net.layer:
            phases = [r.phase for r in layer.include if r.HasField("phase")]
            if layer.type == "Data" and (not phases or caffe_pb2.TEST in phases):
                return layer.transform_param
        raise UserError(f"{args.transform_from}: no TEST-phase Data layer to take "
                        "transform_param from")
    param = caffe_pb2.TransformationParameter()
    if args.mean_file:
        param.mean_file = args.mean_file
    if args.mean_value:
        param.mean_value.extend(args.mean_value)
    if args.pixel_scale is not None:
        param.scale = args.pixel_scale
    if not given and not args.raw:
        raise UserError("image inputs need the net's transform: give --transform-from "
                        "TRAIN_VAL.prototxt, or --mean-file/--mean-value/--pixel-scale, or --raw for "
                        "untransformed 0..255 pixels")
    return param


def is_npy(args):
    if len(args.inputs) == 1 and args.inputs[0].endswith(".npy"):
        return True
    if any(p.endswith(".npy") for p in args.inputs):
        raise UserError("give one .npy array, or image files, not a mix")
    return False


def load_inputs(args, shape, transform):
    """(array [N, C, H, W] float32, names of the inputs) for input blob shape (n, C, H, W)."""
    c, h, w = shape[1:]
    if is_npy(args):
        path = args.inputs[0]
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: cannot read a .npy array ({err})") from None
        if array.shape == (c, h, w):
            array = array[None]
        if array.ndim != 4 or array.shape[1:] != (c, h, w):
            raise UserError(f"{path}: array of shape {array.shape} does not fit the input blob "
                            f"(N, {c}, {h}, {w}); give [N,] {c}x{h}x{w}")
        return array.astype(np.float32), [f"{path}[{i}]" for i in range(len(array))]
    if c != 1:
        raise UserError(f"the input blob has {c} channels; image inputs are read gray (1 channel),"
                        " so give a .npy array instead")
    if h != w:
        raise UserError(f"the input blob is {h}x{w}; image inputs are cropped square, so give a "
                        ".npy array instead")
    from ..data.faces import load_cascade, load_face
    cascade = None if args.no_detect else load_cascade()
    images = []
    for path in args.inputs:
        face, how = load_face(path, size=h, cascade=cascade)
        if face is None:
            raise UserError(f"{path}: {how}")
        images.append(face[None])
    images = np.stack(images)
    if args.raw:
        return images.astype(np.float32), list(args.inputs)
    transformer = Transformer(transform, caffe_pb2.TEST, "image inputs", seed=0)
    if transformer.crop and transformer.crop != h:
        raise UserError(f"the transform crops to {transformer.crop} but the input blob is {h}x{w}")
    return transformer(images), list(args.inputs)


def run_batches(net, blob, array, names, batch_size):
    """Forward `array` through the net in batches; returns {blob name: [N, ...] array}."""
    n = len(array)
    b = min(batch_size, n)
    net.reshape({blob: (b,) + tuple(array.shape[1:])})
    out = {name: [] for name in names}
    for start in range(0, n, b):
        chunk = array[start:start + b]
        if len(chunk) < b:  # the last batch is padded; the padding rows are dropped
            chunk = np.concatenate([chunk, np.zeros((b - len(chunk),) + chunk.shape[1:],
                                                    np.float32)])
        net.set_input(blob, chunk)
        net.forward()
        for name in names:
            out[name].append(net.blob(name)[:min(b, n - start)])
    return {name: np.concatenate(parts) for name, parts in out.items()}


def save_npz(path, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def print_top_k(result, names, k, labels):
    scores = result.reshape(len(result), -1)
    k = min(k, scores.shape[1])
    for name, row in zip(names, scores):
        best = np.argsort(-row, kind="stable")[:k]
        parts = []
        for c in best:
            label = labels[c] if labels and c < len(labels) else str(c)
            parts.append(f"{label} ({row[c]:.4f})")
        print(f"{name}: " + ", ".join(parts))


def check_deploy(net_param, path):
    """A deploy net is fed through an Input layer; a train_val net (Data layers) is not one."""
    if any(layer.type == "Input" for layer in net_param.layer):
        return
    data = [layer.name for layer in net_param.layer if layer.type in DATA_LAYER_TYPES]
    if data:
        raise UserError(f"{path}: no Input layer, but data layers ({', '.join(data)}): this is a "
                        "train_val net; give the deploy net (tools/gen_net.py --deploy)")
    raise UserError(f"{path}: no Input layer to feed; give a deploy net")


def main(argv):
    args = parse_args(argv)
    options.check_writable(args.output)
    log = options.make_log("forward", args, info_on_stderr=args.verbose)
    # The user's mistakes in the order they would look for them: the net, the files, the
    # weights, and only then what image inputs need (the transform).
    net_param = read_net(args.deploy, log)
    check_deploy(net_param, args.deploy)
    npy = is_npy(args)
    for path in [args.weights] + ([] if npy else args.inputs) + ([args.labels] if args.labels else []):
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such file")
    weights = caffemodel.read(args.weights)
    labels = None
    if args.labels:
        from ..data.sources import read_names
        labels = read_names(args.labels)
    transform = None if npy or args.raw else transform_param(args)
    device = options.single_device(args.gpu, log)
    net = Net(net_param, phase=caffe_pb2.TEST, device=device, source=args.deploy, logger=log)
    net.copy_trained_layers_from(weights, args.weights)
    inputs = net.input_names
    if args.input_blob:
        if args.input_blob not in inputs:
            raise UserError(f"--input-blob {args.input_blob}: the net's inputs are "
                            f"{', '.join(inputs) or 'none'}")
        blob = args.input_blob
    elif len(inputs) == 1:
        blob = inputs[0]
    else:
        raise UserError(f"{args.deploy}: the net has {len(inputs) or 'no'} input blobs "
                        f"({', '.join(inputs)}); "
                        + ("name one with --input-blob" if inputs else "it needs an Input layer"))
    shape = net.shapes[blob]
    if len(shape) != 4:
        raise UserError(f"{args.deploy}: input blob '{blob}' has shape {shape}; expected N C H W")
    if labels is not None:
        score_blob = "prob" if "prob" in net.output_names else net.output_names[0]
        classes = int(np.prod(net.shapes[score_blob][1:]))
        if len(labels) != classes:
            raise UserError(f"--labels {args.labels}: {len(labels)} names for the net's {classes} "
                            f"classes ('{score_blob}'); give one line per class, in label order")
    array, names = load_inputs(args, shape, transform)
    wanted = list(net.output_names)
    for name in filter(None, args.blobs.split(",")):
        if name not in net.shapes:
            raise UserError(f"--blobs {name}: no such blob; the net's blobs are "
                            f"{', '.join(net.blob_names)}")
        if name not in wanted:
            wanted.append(name)
    with torch.no_grad():
        result = run_batches(net, blob, array, wanted, args.batch_size)
    save_npz(args.output, result)
    if args.top_k:
        scores = result["prob"] if "prob" in result else result[net.output_names[0]]
        print_top_k(scores, names, args.top_k, labels)
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
