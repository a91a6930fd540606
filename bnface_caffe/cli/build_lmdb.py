"""build_lmdb: faces (person folders, a listfile, or --synthetic) → Caffe LMDBs + mean.

  python tools/build_lmdb.py SOURCE OUTDIR [options]       SOURCE: folder of person folders
  python tools/build_lmdb.py LIST OUTDIR --root DIR        LIST: 'relative/path label' lines
  python tools/build_lmdb.py --synthetic OUTDIR            the built-in synthetic identities

OUTDIR gets train_lmdb/, test_lmdb/, mean.binaryproto, labels.txt, train.txt, test.txt and
skipped.txt, all at once when the build is complete; with --holdout-identities N also
holdout/<person>/*.png and holdout.txt: N whole people kept out of training, for
tools/verify.py (with --synthetic they are N extra identities: the training set is unchanged).
"""
import argparse
import signal
import sys

from ..data import build as builder
from ..data import synthetic
from ..errors import UserError
from ..formats.glog import cpp_number
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                usage="%(prog)s SOURCE OUTDIR [options]\n"
                                      "       %(prog)s LIST OUTDIR --root DIR [options]\n"
                                      "       %(prog)s --synthetic OUTDIR [options]",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="SOURCE OUTDIR, or only OUTDIR with --synthetic")
    p.add_argument("--synthetic", action="store_true", help="render the built-in set (no SOURCE)")
    p.add_argument("--root", help="SOURCE is a listfile; its paths are relative to ROOT")
    p.add_argument("--labels", dest="label_names", help="(listfile) label names, line i = label i")
    g = p.add_argument_group("records")
    g.add_argument("--encoded", action="store_true", help="store PNG bytes (encoded: true)")
    g.add_argument("--encode-type", choices=["png", "jpg"], help="encoding (implies --encoded)")
    g.add_argument("--size", type=int, default=50, help="output side in pixels (50)")
    g = p.add_argument_group("selection and split")
    g.add_argument("--min-images-per-class", type=int, default=1, dest="min_images")
    g.add_argument("--max-classes", type=int, help="keep the N classes with most images")
    g.add_argument("--test-fraction", type=float, default=0.1, help="per class (0.1)")
    g.add_argument("--holdout-identities", type=int, default=0, metavar="N",
                   help="keep N whole people out of training, as 50x50 PNGs in holdout/ and "
                        "holdout.txt, for verification on unseen identities (0)")
    g.add_argument("--seed", type=int, default=0, help="split/shuffle (and synthetic) seed (0)")
    g.add_argument("--shuffle-seed", type=int,
                   help="order the train records with this seed instead (same split, same "
                        "faces, same test records): runs that differ only in data order")
    g = p.add_argument_group("faces")
    g.add_argument("--no-detect", action="store_true", help="no face detection: centre crop "
                   "(inputs already SIZE×SIZE are always used as they are)")
    g.add_argument("--margin", type=float, default=0.2,
                   help="added around a detected face, × its size on each side (0.2)")
    g = p.add_argument_group("synthetic set")
    g.add_argument("--identities", type=int, default=300, help="(300)")
    g.add_argument("--images-per-identity", type=int, default=30, help="(30)")
    g.add_argument("--difficulty", type=float, default=synthetic.DEFAULT_DIFFICULTY,
                   help=f"within-identity variation, 0 (none) to {synthetic.MAX_DIFFICULTY:g} "
                        f"(default {synthetic.DEFAULT_DIFFICULTY})")
    g = p.add_argument_group("run")
    g.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing OUTDIR")
    g.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar (auto: when stderr is a terminal)")
    g.add_argument("-q", "--quiet", action="store_true", help="no summary")
    options.add_version(p)
    return p


def build_options(args):
    expected = 1 if args.synthetic else 2
    if len(args.paths) != expected:
        usage = "--synthetic OUTDIR" if args.synthetic else "SOURCE OUTDIR (or --synthetic OUTDIR)"
        raise UserError(f"expected {usage}, got {len(args.paths)} path(s): {' '.join(args.paths)}")
    checks = [(not 0 <= args.test_fraction < 1, "--test-fraction must be in [0, 1)"),
              (args.size < 1, "--size must be positive"),
              (args.margin < 0, "--margin must be ≥ 0"),
              (args.identities < 1, "--identities must be ≥ 1"),
              (args.images_per_identity < 1, "--images-per-identity must be ≥ 1"),
              (not 0 <= args.difficulty <= synthetic.MAX_DIFFICULTY,
               f"--difficulty must be in [0, {synthetic.MAX_DIFFICULTY:g}] (0: every image of an "
               f"identity alike; {synthetic.MAX_DIFFICULTY:g}: the most variation the renderer "
               f"draws), got {args.difficulty:g}"),
              (args.workers < 0, f"--workers must be ≥ 0 (0 = one per core), got {args.workers}"),
              (args.holdout_identities < 0,
               f"--holdout-identities must be ≥ 0, got {args.holdout_identities}"),
              (args.max_classes is not None and args.max_classes < 1,
               "--max-classes must be ≥ 1")]
    for bad, message in checks:
        if bad:
            raise UserError(message)
    progress = {"on": True, "off": False, "auto": sys.stderr.isatty()}[args.progress]
    encode = args.encode_type or ("png" if args.encoded else None)
    return builder.Options(
        outdir=args.paths[-1], source=None if args.synthetic else args.paths[0], root=args.root,
        label_names=args.label_names, synthetic=args.synthetic, identities=args.identities,
        images_per_identity=args.images_per_identity, difficulty=args.difficulty,
        encode_type=encode, min_images=args.min_images, max_classes=args.max_classes,
        test_fraction=args.test_fraction, holdout_identities=args.holdout_identities,
        seed=args.seed, shuffle_seed=args.shuffle_seed, detect=not args.no_detect,
        margin=args.margin, size=args.size, workers=args.workers, overwrite=args.overwrite,
        progress=progress)


def summary(f):
    total = f["train"] + f["test"]
    kind = f"{f['encoded'].upper()}-encoded" if f["encoded"] else "raw"
    text = (f"Wrote {f['outdir']}: {f['train']} train + {f['test']} test images of "
            f"{f['classes']} classes ({f['size']}x{f['size']} gray, {kind} Datum records) in "
            f"{f['seconds']:.1f} s ({total / max(f['seconds'], 1e-9):.0f} images/s).")
    skipped = sum(f["skipped"].values())
    if skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in f["skipped"].most_common())
        text += f" Skipped {skipped} files ({reasons}); listed in skipped.txt."
    else:
        text += " Skipped 0 files."
    crops = f["crops"]
    if not f["synthetic"]:
        faces = sum(crops.get(k, 0) for k in ("face", "face-fitted", "face-padded"))
        text += f" Crops: {faces} detected faces"
        tight = [(crops.get("face-fitted", 0), "with the margin shrunk to stay inside the image"),
                 (crops.get("face-padded", 0), "reaching past the edge (mirrored there)")]
        tight = [f"{n} {what}" for n, what in tight if n]
        if tight:
            text += f" ({'; '.join(tight)}: tight crops, the face fills the image)"
        text += (f", {crops.get('centre', 0)} centre crops (no face found or detection off), "
                 f"{crops.get('as-is', 0)} already {f['size']}x{f['size']}.")
    if f["dropped_classes"]:
        text += (f" {f['dropped_classes']} listed classes left out (--min-images-per-class, "
                 "--max-classes or unreadable images).")
    if f["relabelled"]:
        text += " Listfile labels renumbered 0..N-1 (labels.txt gives each one's name)."
    if f["holdout_classes"]:
        text += (f" Held out {f['holdout_classes']} identities ({f['holdout']} images) for "
                 "verification: holdout/ and holdout.txt.")
    if f["test"] == 0:
        text += " The test set is empty (--test-fraction 0 or one image per class)."
    means = ", ".join(f"mean_value channel [{c}]: {cpp_number(v)}"
                      for c, v in enumerate(f["mean"]))
    text += f" Wrote mean.binaryproto ({means})."
    return text


def main(argv):
    args = parser().parse_args(argv)
    opts = build_options(args)
    # SIGTERM unwinds like Ctrl-C, so the temporary build folder is removed either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    facts = builder.build(opts)
    if not args.quiet:
        print(summary(facts))
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
