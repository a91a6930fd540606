"""export_onnx: a trained Caffe deploy net as an ONNX model, with Caffe's semantics.

  python tools/export_onnx.py DEPLOY WEIGHTS -o MODEL.onnx [--verify]

The graph is built layer by layer from the engine's Net: ceil-mode pooling with Caffe's
clip rule and AVE divisor, BatchNorm with its moving-average factor divided out and a
following Scale folded in, Scale/Bias, in-place layers, a dynamic batch axis (opset 17).
Outputs are the net's outputs, or the blobs named by --outputs (e.g. pool4,prob to expose
the face embedding too). onnx.checker must pass. --verify runs onnxruntime and the engine
on random inputs (two batch sizes) and on faces (--images, else built-in synthetic faces,
through the image transform flags) and prints the largest difference per output; exit
status 1 when one exceeds --tolerance (relative to the output's scale, at least 1).
Without a transform flag, faces get (pixel - 128) / 256.
"""
import argparse
import os

import numpy as np

from ..engine import read_net
from ..errors import RunFailed, UserError
from ..export import onnx_check, onnx_graph
from ..formats import prototxt
from ..inference import FaceImages, add_transform_arguments, open_deploy, transform_param
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("deploy", help="deploy prototxt (an Input layer feeds the net)")
    p.add_argument("weights", help=".caffemodel with the trained weights")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx")
    p.add_argument("--outputs", help="comma-separated blobs to output (default: the net's "
                                     "outputs)")
    p.add_argument("--static-batch", action="store_true",
                   help="keep the deploy net's batch size instead of a dynamic batch axis")
    g = p.add_argument_group("verification")
    g.add_argument("--verify", action="store_true", help="compare onnxruntime with the engine")
    g.add_argument("--images", nargs="+", metavar="IMAGE", help="face images for --verify "
                   "(default: 8 built-in synthetic faces)")
    add_transform_arguments(g)
    g.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |onnx - engine| / max(1, max |engine|) (1e-4)")
    options.add_quiet(p, "summary on success")
    p.add_argument("--verbose", action="store_true", help="show the net's set-up log")
    options.add_version(p)
    return p


def face_inputs(args, net, blob):
    """(description, array) of face images for --verify, or None when the input blob is not
    a one-channel square image."""
    shape = net.shapes[blob]
    c, h, w = shape[1:]
    if c != 1 or h != w:
        return None
    if args.raw or args.transform_from or args.mean_file or args.mean_value or \
            args.pixel_scale is not None:
        transform = transform_param(args)
    else:  # no transform given: centre the pixels roughly as the paper's nets expect
        args.mean_value, args.pixel_scale = [128.0], 1 / 256
        transform = transform_param(args)
    images = FaceImages(shape, transform, detect=not args.no_detect)
    if args.images:
        return f"{len(args.images)} face images", images(args.images)
    from ..data import synthetic
    faces = np.stack([synthetic.render(0, k, 0, size=h) for k in range(8)])[:, None]
    if images.transformer is None:
        return "8 synthetic faces", faces.astype(np.float32)
    return "8 synthetic faces", images.transformer(faces)


def verify(args, model_bytes, net, outputs):
    sess = onnx_check.session(model_bytes)
    blob = net.input_names[0]
    batch = net.shapes[blob][0]
    cases = [(f"random N(0,1), batch {n}", onnx_check.random_inputs(net, n, seed=n))
             for n in sorted({batch, batch + 2})]
    if len(net.input_names) == 1:
        faces = face_inputs(args, net, blob)
        if faces is not None:
            cases.append((faces[0], {blob: faces[1]}))
    worst = 0.0
    lines = []
    for what, inputs in cases:
        result = onnx_check.compare(sess, net, inputs, outputs)
        parts = []
        for name, (diff, scale) in result.items():
            worst = max(worst, diff / max(1.0, scale))
            parts.append(f"{name} max |onnx - engine| {diff:.3g} (max |engine| {scale:.3g})")
        lines.append(f"  {what}: " + "; ".join(parts))
    return worst, lines


def main(argv):
    p = parser()
    args = p.parse_args(argv)
    args.pixel_scale = options.pixel_scale(args, p.prog)
    options.check_writable(args.output)
    log = options.make_log("export_onnx", to_stderr=args.verbose)
    net_param = read_net(args.deploy, log)
    onnx_graph.check_net_param(net_param, args.deploy)
    if args.images:
        for path in args.images:
            if not os.path.isfile(path):
                raise UserError(f"{path}: no such file")
    net, _ = open_deploy(args.deploy, args.weights, net_param, log=log)
    outputs = [b for b in (args.outputs or "").split(",") if b] or None
    model, dynamic = onnx_graph.export(net, args.deploy, outputs, not args.static_batch)
    data = model.SerializeToString()
    prototxt.write_bytes(args.output, data)
    names = [o.name for o in model.graph.output]
    if not args.quiet:
        def dims(info):
            return "x".join(d.dim_param or str(d.dim_value) or "?"
                            for d in info.type.tensor_type.shape.dim)
        ins = ", ".join(f"{i.name} [{dims(i)}]" for i in model.graph.input)
        outs = ", ".join(f"{o.name} [{dims(o)}]" for o in model.graph.output)
        print(f"wrote {args.output}: opset {onnx_graph.OPSET}, "
              f"{'dynamic' if dynamic else 'fixed'} batch, {len(net.nodes)} layers -> "
              f"{len(model.graph.node)} nodes; inputs {ins}; outputs {outs}; onnx.checker: ok")
        if not dynamic and not args.static_batch:
            print("  (the net does not take another batch size, so the batch stays fixed)")
    if args.verify:
        worst, lines = verify(args, data, net, names)
        ok = worst <= args.tolerance
        if not args.quiet or not ok:
            print(f"verify ({'ok' if ok else 'FAILED'}: worst {worst:.3g}, tolerance "
                  f"{args.tolerance:g}):")
            print("\n".join(lines))
        if not ok:
            raise RunFailed(f"onnxruntime and the engine differ by {worst:.3g} (relative), "
                            f"more than --tolerance {args.tolerance:g}; see the lines above")
    return 0


if __name__ == "__main__":
    from . import run
    run(main)
