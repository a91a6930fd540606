"""A trained deploy net on face images: open it, turn image files into its input, run it in
batches. Shared by tools/forward.py and tools/verify.py (moved here from cli/forward.py).

Image files are read gray and cropped to the input size as the LMDB builder does (largest
face, else the centre; inputs already that size are used as they are), then given the
net's transform ((pixel - mean) * scale) from a train_val net's TEST-phase Data layer or
from --mean-file/--mean-value/--pixel-scale; --raw feeds 0..255 pixels.
"""
import os

import numpy as np
from tqdm import tqdm

from .engine import Net, read_net
from .engine.transform import Transformer
from .errors import UserError
from .formats.glog import Glog
from .proto import caffe_pb2


def add_transform_arguments(ap):
    """The flags that say how image files become the net's input."""
    ap.add_argument("--transform-from", metavar="TRAIN_VAL",
                    help="take transform_param from this net's TEST-phase Data layer")
    ap.add_argument("--mean-file", help="mean.binaryproto subtracted from image inputs")
    ap.add_argument("--mean-value", type=float, action="append", help="per-channel mean")
    from .cli import options
    options.add_pixel_scale(ap)
    ap.add_argument("--raw", action="store_true", help="feed image pixels 0..255 untransformed")
    ap.add_argument("--no-detect", action="store_true", help="centre crop, no face detection")


def transform_param(args):
    """The TransformationParameter for image inputs, from the add_transform_arguments flags
    (args.pixel_scale resolved by options.pixel_scale); None for --raw."""
    if args.raw:
        return None
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
    if not given:
        raise UserError("image inputs need the net's transform: give --transform-from "
                        "TRAIN_VAL.prototxt, or --mean-file/--mean-value/--pixel-scale, or --raw "
                        "for untransformed 0..255 pixels")
    return param


DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "DummyData",
                    "Python")


def check_deploy(net_param, path):
    """A deploy net is fed through an Input layer; a train_val net (Data layers) is not one."""
    if any(layer.type == "Input" for layer in net_param.layer):
        return
    data = [layer.name for layer in net_param.layer if layer.type in DATA_LAYER_TYPES]
    if data:
        raise UserError(f"{path}: no Input layer, but data layers ({', '.join(data)}): this is a "
                        "train_val net; give the deploy net (tools/gen_net.py --deploy)")
    raise UserError(f"{path}: no Input layer to feed; give a deploy net")


def open_deploy(deploy, weights_path, net_param=None, device="cpu", input_blob=None, log=None,
                weights=None):
    """(Net in the TEST phase with the weights loaded, its input blob name). `weights`: the
    caffemodel's NetParameter when the caller has read it already."""
    log = log or Glog.silent()
    net_param = net_param if net_param is not None else read_net(deploy, log)
    if weights is None and not os.path.isfile(weights_path):
        raise UserError(f"{weights_path}: no such file")
    net = Net(net_param, phase=caffe_pb2.TEST, device=device, source=deploy, logger=log)
    if weights is not None:
        net.copy_trained_layers_from(weights, weights_path)
    else:
        net.copy_trained_layers_from_file(weights_path)
    inputs = net.input_names
    if input_blob:
        if input_blob not in inputs:
            raise UserError(f"--input-blob {input_blob}: the net's inputs are "
                            f"{', '.join(inputs) or 'none'}")
        blob = input_blob
    elif len(inputs) == 1:
        blob = inputs[0]
    else:
        raise UserError(f"{deploy}: the net has {len(inputs) or 'no'} input blobs "
                        f"({', '.join(inputs)}); "
                        + ("name one with --input-blob" if inputs else "it needs an Input layer"))
    shape = net.shapes[blob]
    if len(shape) != 4:
        raise UserError(f"{deploy}: input blob '{blob}' has shape {shape}; expected N C H W")
    return net, blob


class FaceImages:
    """Image files -> the net's input array: gray, face crop (or centre), size x size, then
    the transform (None: raw 0..255 pixels)."""

    def __init__(self, input_shape, transform, detect=True):
        c, h, w = input_shape[1:]
        if c != 1:
            raise UserError(f"the input blob has {c} channels; image inputs are read gray "
                            "(1 channel), so give a .npy array instead")
        if h != w:
            raise UserError(f"the input blob is {h}x{w}; image inputs are cropped square, so "
                            "give a .npy array instead")
        self.size = h
        from .data.faces import load_cascade
        self.cascade = load_cascade() if detect else None
        self.transformer = None
        if transform is not None:
            self.transformer = Transformer(transform, caffe_pb2.TEST, "image inputs", seed=0)
            if self.transformer.crop and self.transformer.crop != h:
                raise UserError(f"the transform crops to {self.transformer.crop} but the input "
                                f"blob is {h}x{w}")

    def __call__(self, paths):
        """float32 [len(paths), 1, size, size]; an unreadable file is a UserError."""
        from .data.faces import load_face
        images = []
        for path in paths:
            face, how = load_face(path, size=self.size, cascade=self.cascade)
            if face is None:
                raise UserError(f"{path}: {how}")
            images.append(face[None])
        images = np.stack(images)
        if self.transformer is None:
            return images.astype(np.float32)
        return self.transformer(images)


def run_batches(net, blob, count, load, names, batch_size, progress=False, desc="forward"):
    """Forward inputs 0..count-1 through the net, batch_size at a time; load(start, stop)
    gives inputs start..stop-1 as a float32 array. Returns {blob name: [count, ...] array}."""
    b = min(batch_size, count)
    net.reshape({blob: (b,) + tuple(net.shapes[blob][1:])})
    out = {name: [] for name in names}
    bar = tqdm(total=count, desc=desc, unit="img", disable=not progress, leave=False)
    for start in range(0, count, b):
        chunk = load(start, min(start + b, count))
        if len(chunk) < b:  # the last batch is padded; the padding rows are dropped
            chunk = np.concatenate([chunk, np.zeros((b - len(chunk),) + chunk.shape[1:],
                                                    np.float32)])
        net.set_input(blob, chunk)
        net.forward()
        for name in names:
            out[name].append(net.blob(name)[:min(b, count - start)])
        bar.update(min(b, count - start))
    bar.close()
    return {name: np.concatenate(parts) for name, parts in out.items()}
