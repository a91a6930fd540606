"""verify: face verification with a trained deploy net, the LFW way.

  python tools/verify.py DEPLOY WEIGHTS SOURCE -o OUTDIR [--transform-from TRAIN_VAL]
  python tools/verify.py DEPLOY WEIGHTS LFW_ROOT --pairs pairs.txt -o OUTDIR ...

SOURCE is a folder with one sub-folder per person (e.g. build_lmdb's holdout/) or a
listfile of 'path label' lines (e.g. holdout.txt; paths relative to --root, default the
listfile's folder). Each image gets forward.py's preprocessing, the feature at --blob
(default pool4, the paper nets' pooled 320-d feature) is L2-normalised and a pair's score
is the cosine of its two features. Pairs are drawn with --seed in LFW's shape (10
identity-disjoint folds of 300 same + 300 different pairs, fewer when the people cannot
give that many), or read from LFW's pairs.txt (--pairs; images at ROOT/name/name_0001.jpg).
OUTDIR gets metrics.md/.csv (10-fold accuracy mean ± std, ROC AUC, EER, TAR@FAR),
folds.csv, roc.csv, roc.png, roc.svg, pairs.csv and features.npz (every feature, path,
identity, pair and score, so anyone can recompute the figures).
"""
import argparse
import csv
import io
import os

import numpy as np
import torch

from ..data import sources
from ..engine import read_net
from ..errors import UserError
from ..formats import prototxt
from ..inference import FaceImages, add_transform_arguments, check_deploy, open_deploy
from ..inference import run_batches, transform_param
from ..verification import features as feat
from ..verification import pairs as pairs_mod
from ..verification import results
from . import options

OUTPUTS = ("metrics.md", "metrics.csv", "folds.csv", "roc.csv", "roc.png", "roc.svg",
           "pairs.csv", "features.npz")


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                usage="%(prog)s DEPLOY WEIGHTS SOURCE -o OUTDIR [options]\n"
                                      "       %(prog)s DEPLOY WEIGHTS ROOT --pairs PAIRS.txt "
                                      "-o OUTDIR [options]",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("deploy", help="deploy prototxt (an Input layer feeds the net)")
    p.add_argument("weights", help=".caffemodel with the trained weights")
    p.add_argument("source", help="folder of person folders, a listfile, or (with --pairs) "
                                  "the image root")
    p.add_argument("-o", "--outdir", required=True, help="where the results go")
    p.add_argument("--blob", help="feature blob (default pool4)")
    p.add_argument("--name", help="the model's name in tables and the plot (default: the "
                                  "weights file's name)")
    g = p.add_argument_group("pairs")
    g.add_argument("--pairs", metavar="PAIRS.txt", help="LFW pairs file instead of drawn pairs")
    g.add_argument("--pattern", default=pairs_mod.LFW_PATTERN,
                   help="image path under ROOT for --pairs (default %(default)s)")
    g.add_argument("--root", help="the folder a listfile's paths are relative to")
    g.add_argument("--folds", type=int, default=pairs_mod.LFW_FOLDS, help="(10)")
    g.add_argument("--pairs-per-fold", type=int, default=pairs_mod.LFW_PAIRS_PER_FOLD,
                   help="same-person pairs per fold, and as many different (300)")
    g.add_argument("--seed", type=int, default=0, help="pair draw seed (0)")
    g = p.add_argument_group("net and images")
    add_transform_arguments(g)
    g.add_argument("--input-blob", help="the input blob to feed (default: the net's only one)")
    g.add_argument("--batch-size", type=int, default=64, help="images per forward pass (64)")
    options.add_gpu(g)
    options.add_quiet(g, "progress bar")
    g.add_argument("--verbose", action="store_true", help="show the net's set-up log")
    options.add_version(p)
    return p


def read_images(args):
    """(image paths, identity per image, Pairs or None)."""
    if args.pairs:
        if not os.path.isdir(args.source):
            raise UserError(f"{args.source}: no such folder (with --pairs, SOURCE is the image "
                            "root the pairs file's names are under)")
        parsed = pairs_mod.read_pairs_file(args.pairs, args.source, args.pattern)
        paths = [os.path.join(args.source, rel) for rel in parsed.paths]
        identities = [rel.split("/", 1)[0] for rel in parsed.paths]
        return paths, identities, parsed.pairs
    if os.path.isdir(args.source):
        items, base = sources.scan_folder(args.source), args.source
    elif os.path.isfile(args.source):
        items = sources.read_listfile(args.source)
        base = args.root if args.root is not None else os.path.dirname(args.source)
    else:
        raise UserError(f"{args.source}: no such folder or listfile")
    paths = [os.path.join(base, rel) for rel, _ in items]
    for (rel, _), path in zip(items, paths):
        if not os.path.isfile(path):
            raise UserError(f"{args.source}: image {path} does not exist (listed as {rel})")
    return paths, [str(key) for _, key in items], None


def write(path, data):
    prototxt.write_bytes(path, data.encode() if isinstance(data, str) else data)


def figure_bytes(fig, ext):
    buffer = io.BytesIO()
    fig.savefig(buffer, format=ext, dpi=120)
    return buffer.getvalue()


def pairs_csv(paths, pairs, scores):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("fold", "same", "score", "first", "second"))
    for a, b, s, f, score in zip(pairs.first, pairs.second, pairs.same, pairs.fold, scores):
        writer.writerow((int(f), int(s), f"{score:.8f}", paths[a], paths[b]))
    return out.getvalue()


def main(argv):
    p = parser()
    args = p.parse_args(argv)
    args.pixel_scale = options.pixel_scale(args, p.prog)
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    log = options.make_log("verify", to_stderr=args.verbose)
    net_param = read_net(args.deploy, log)
    check_deploy(net_param, args.deploy)
    transform = transform_param(args)
    paths, identities, pairs = read_images(args)
    if pairs is None:
        pairs = pairs_mod.generate_pairs(identities, args.folds, args.pairs_per_fold, args.seed)
    net, input_blob = open_deploy(args.deploy, args.weights, net_param,
                                  options.single_device(args.gpu, log), args.input_blob, log)
    blob = args.blob or "pool4"
    if blob not in net.shapes:
        hint = "" if args.blob else " (the default); name the feature blob with --blob"
        raise UserError(f"--blob {blob}: {args.deploy} has no blob '{blob}'{hint}; its blobs "
                        f"are {', '.join(net.blob_names)}")
    images = FaceImages(net.shapes[input_blob], transform, not args.no_detect)
    with torch.no_grad():
        raw = run_batches(net, input_blob, len(paths), lambda a, b: images(paths[a:b]), [blob],
                          args.batch_size, progress=not args.quiet, desc="features")[blob]
    raw = raw.reshape(len(paths), -1)
    scores = feat.cosine_scores(feat.l2_normalize(raw), pairs.first, pairs.second)
    fig, folds, curve = results.figures(scores, pairs)
    name = args.name or os.path.splitext(os.path.basename(args.weights))[0]

    os.makedirs(args.outdir, exist_ok=True)
    out = lambda f: os.path.join(args.outdir, f)  # noqa: E731
    write(out("metrics.md"), results.markdown([(name, fig)]))
    write(out("metrics.csv"), results.csv_text([(name, fig)]))
    write(out("folds.csv"), results.folds_csv(folds))
    write(out("roc.csv"), results.roc_csv(curve))
    plot = results.plot_roc([(name, curve, fig)], title=f"{name}: {fig['pairs']} pairs")
    for ext in ("png", "svg"):
        write(out(f"roc.{ext}"), figure_bytes(plot, ext))
    write(out("pairs.csv"), pairs_csv(paths, pairs, scores))
    buffer = io.BytesIO()
    np.savez(buffer, features=raw, paths=np.asarray(paths), identities=np.asarray(identities),
             blob=np.asarray(blob), first=pairs.first, second=pairs.second, same=pairs.same,
             fold=pairs.fold, scores=scores)
    write(out("features.npz"), buffer.getvalue())

    per_fold = int(pairs.same.sum()) // max(1, len(np.unique(pairs.fold)))
    origin = (f"from {args.pairs}" if args.pairs else
              f"drawn with seed {args.seed}: {per_fold} same + {per_fold} different per fold"
              + (f", fewer than the {args.pairs_per_fold} asked (the most every fold can give)"
                 if per_fold < args.pairs_per_fold else ""))
    print(f"{name}: blob {blob} ({raw.shape[1]}-d, L2-normalised, cosine), {len(paths)} images "
          f"of {len(set(identities))} people; pairs {origin}")
    for line in results.summary_lines(fig):
        print("  " + line)
    print(f"wrote {args.outdir}/: {', '.join(OUTPUTS)}")
    return 0


if __name__ == "__main__":
    from . import run
    run(main)
