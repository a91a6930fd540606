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

from ..engine import read_net
from ..errors import UserError
from ..formats import caffemodel
from ..formats.prototxt import write_bytes
from ..inference import FaceImages, add_transform_arguments, check_deploy, open_deploy
from ..inference import run_batches, transform_param
from . import options


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
    add_transform_arguments(ap)
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


def is_npy(args):
    if len(args.inputs) == 1 and args.inputs[0].endswith(".npy"):
        return True
    if any(p.endswith(".npy") for p in args.inputs):
        raise UserError("give one .npy array, or image files, not a mix")
    return False


def load_npy(path, shape):
    """(array [N, C, H, W] float32, names of the inputs) for input blob shape (n, C, H, W)."""
    c, h, w = shape[1:]
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
    net, blob = open_deploy(args.deploy, args.weights, net_param, device, args.input_blob, log,
                            weights)
    shape = net.shapes[blob]
    if labels is not None:
        score_blob = "prob" if "prob" in net.output_names else net.output_names[0]
        classes = int(np.prod(net.shapes[score_blob][1:]))
        if len(labels) != classes:
            raise UserError(f"--labels {args.labels}: {len(labels)} names for the net's {classes} "
                            f"classes ('{score_blob}'); give one line per class, in label order")
    if npy:
        array, names = load_npy(args.inputs[0], shape)
    else:
        array, names = FaceImages(shape, transform, not args.no_detect)(args.inputs), args.inputs
    wanted = list(net.output_names)
    for name in filter(None, args.blobs.split(",")):
        if name not in net.shapes:
            raise UserError(f"--blobs {name}: no such blob; the net's blobs are "
                            f"{', '.join(net.blob_names)}")
        if name not in wanted:
            wanted.append(name)
    with torch.no_grad():
        result = run_batches(net, blob, len(array), lambda a, b: array[a:b], wanted,
                             args.batch_size)
    save_npz(args.output, result)
    if args.top_k:
        scores = result["prob"] if "prob" in result else result[net.output_names[0]]
        print_top_k(scores, names, args.top_k, labels)
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
