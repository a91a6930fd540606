"""`build_lmdb`: inputs → 50×50 gray faces → train/test LMDBs + mean + lists, built in a
temporary folder beside OUTDIR and renamed into place only when complete.

Held-out identities (`holdout_identities`) are people kept out of training altogether, for
face verification on unseen people: their crops go to holdout/<name>/<image>.png and
holdout.txt (a listfile of those PNGs, one label per person), never into an LMDB, the mean,
labels.txt or the train/test lists. Real sets hold out a seeded random choice of the people
with at least two readable images; the synthetic set renders that many extra identities
(identity k depends only on the seed and k), so its training data stays exactly the same."""
import dataclasses
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter

import cv2
import numpy as np

from ..errors import UserError
from . import gather, mean, pack, sources, split
from . import synthetic as synth

MAX_KEY_BYTES = 511  # LMDB's default key size limit


@dataclasses.dataclass
class Options:
    outdir: str
    source: str = None            # folder of people, or listfile (with root)
    root: str = None
    label_names: str = None       # listfile mode: names for labels (line i = label i)
    synthetic: bool = False
    identities: int = 300
    images_per_identity: int = 30
    difficulty: float = synth.DEFAULT_DIFFICULTY
    encode_type: str = None       # None = raw pixels; "png"/"jpg" = encoded records
    min_images: int = 1
    max_classes: int = None
    test_fraction: float = 0.1
    holdout_identities: int = 0   # whole people kept out for verification (holdout/)
    seed: int = 0
    shuffle_seed: int = None      # order of the train records only (None: from seed)
    detect: bool = True
    margin: float = 0.2
    size: int = 50
    workers: int = 0              # 0 = all cores
    overwrite: bool = False
    progress: bool = False


def check_outdir(outdir, overwrite):
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise UserError(f"{outdir}: exists and is not a folder; choose another OUTDIR")
    if os.path.exists(outdir) and os.listdir(outdir) and not overwrite:
        raise UserError(f"{outdir}: already exists; pass --overwrite to replace it, or choose "
                        "another OUTDIR")


def publish(tmp, outdir):
    """Move the finished build into place; an existing OUTDIR is replaced only now."""
    if os.path.isdir(outdir):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(outdir)}.old-",
                               dir=os.path.dirname(outdir))
        os.rename(outdir, os.path.join(old, "x"))
        try:
            os.rename(tmp, outdir)
        except BaseException:  # e.g. Ctrl-C between the two renames: put the old one back
            if not os.path.exists(outdir):
                os.rename(os.path.join(old, "x"), outdir)
                os.rmdir(old)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, outdir)


def build(opts):
    """Build everything; returns the summary facts (dict)."""
    start = time.time()
    outdir = os.path.abspath(opts.outdir)
    check_outdir(outdir, opts.overwrite)
    items = _list_items(opts)
    listed = len({key for _, key in items})
    if not opts.synthetic and opts.holdout_identities >= listed:
        raise UserError(f"{opts.source}: cannot hold out {opts.holdout_identities} identities "
                        f"of {listed}: at least one class must stay for training")
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    # The name is chosen before the folder exists, so a Ctrl-C at any point is cleaned up.
    tmp = os.path.join(parent, f".{os.path.basename(outdir)}.partial-{os.getpid()}-"
                               f"{secrets.token_hex(4)}")
    try:
        os.mkdir(tmp)
        facts = _build_into(tmp, items, opts)
        check_outdir(outdir, opts.overwrite)  # someone may have created it meanwhile
        publish(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    facts.update(outdir=opts.outdir, seconds=time.time() - start)
    return facts


def _list_items(opts):
    """[(list path, class key)] of the inputs (class key: person, original label or identity)."""
    if opts.synthetic:
        count = min(opts.identities, opts.max_classes or opts.identities)
        if opts.images_per_identity < max(1, opts.min_images):
            raise UserError(f"--images-per-identity {opts.images_per_identity} is below "
                            f"--min-images-per-class {opts.min_images}: no class would be kept")
        count += opts.holdout_identities  # rendered after the training ones
        return [(synth.virtual_path(k, j), k) for k in range(count)
                for j in range(opts.images_per_identity)]
    if opts.root is not None:
        names = sources.read_names(opts.label_names) if opts.label_names else None
        return sources.read_listfile(opts.source, names)
    if os.path.isfile(opts.source):
        raise UserError(f"{opts.source}: is a file; a listfile needs --root DIR (the folder its "
                        "paths are relative to)")
    return sources.scan_folder(opts.source)


def _workers(opts):
    return opts.workers if opts.workers > 0 else (os.cpu_count() or 1)


def _gather(tmp, items, opts):
    """Pixels of every listed item of a kept class (in an on-disk array), and the outcomes."""
    if not opts.synthetic:
        kept = set(split.select_classes([key for _, key in items], opts.min_images,
                                        opts.max_classes))
        if not kept:
            raise UserError(f"{opts.source}: no class has at least {opts.min_images} images "
                            "(--min-images-per-class)")
        items = [item for item in items if item[1] in kept]
    store = np.lib.format.open_memmap(os.path.join(tmp, ".pixels.npy"), "w+", np.uint8,
                                      (len(items), opts.size, opts.size))
    if opts.synthetic:
        identities = len(items) // opts.images_per_identity
        gather.render_synthetic(identities, opts.images_per_identity, store, opts.seed,
                                opts.difficulty, opts.size, _workers(opts), opts.progress)
        return items, store, ["rendered"] * len(items)
    base = opts.root if opts.root is not None else opts.source
    files = [os.path.join(base, path) for path, _ in items]
    outcome = gather.load_files(files, store, opts.detect, opts.size, opts.margin,
                                _workers(opts), opts.progress)
    return items, store, outcome


def _build_into(tmp, items, opts):
    listed_classes = len({key for _, key in items})
    _check_keys([path for path, _ in items])
    items, store, outcome = _gather(tmp, items, opts)
    ok = [i for i, how in enumerate(outcome) if not gather.is_skipped(how)]
    skipped = [i for i, how in enumerate(outcome) if gather.is_skipped(how)]
    # Classes are chosen again on readable images only, then labelled 0..K-1 in sorted order.
    keys = split.select_classes([items[i][1] for i in ok], opts.min_images)
    if not keys:
        example = f"{items[skipped[0]][0]}: {outcome[skipped[0]]}" if skipped else "none"
        raise UserError(f"{opts.source}: no usable images: {len(skipped)} of {len(items)} "
                        f"could not be read (e.g. {example})")
    keys, held = _hold_out(keys, [items[i][1] for i in ok], opts)
    held_set = set(held)
    held_ok = [i for i in ok if items[i][1] in held_set]
    label_of = {key: label for label, key in enumerate(keys)}
    ok = [i for i in ok if items[i][1] in label_of]
    paths = [path for path, _ in items]
    labels = np.full(len(items), -1, np.int64)
    for i in ok:
        labels[i] = label_of[items[i][1]]
    positions, test_positions = split.split(labels[ok], opts.test_fraction, opts.seed,
                                              opts.shuffle_seed)
    train = [ok[p] for p in positions]
    test = [ok[p] for p in test_positions]
    resizes = pack.write_lmdb(os.path.join(tmp, "train_lmdb"), train, paths, labels, store,
                              opts.encode_type, opts.progress, "write train_lmdb")
    resizes += pack.write_lmdb(os.path.join(tmp, "test_lmdb"), test, paths, labels, store,
                               opts.encode_type, opts.progress, "write test_lmdb")
    held_names = _label_names(held, items, held_ok, opts) if held else []
    if held:
        _write_holdout(tmp, held, held_names, held_ok, items, store)
    del store
    os.unlink(os.path.join(tmp, ".pixels.npy"))
    image_mean, _ = mean.write_mean(os.path.join(tmp, "train_lmdb"),
                                    os.path.join(tmp, "mean.binaryproto"))
    pack.write_listfile(os.path.join(tmp, "train.txt"), train, paths, labels)
    pack.write_listfile(os.path.join(tmp, "test.txt"), test, paths, labels)
    names = _label_names(keys, items, ok, opts)
    with open(os.path.join(tmp, "labels.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{name}\n" for name in names)
    with open(os.path.join(tmp, "skipped.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{paths[i]}\t{outcome[i]}\n" for i in skipped)
    relabelled = opts.root is not None and any(key != label_of[key] for key in keys)
    return dict(train=len(train), test=len(test), classes=len(keys),
                holdout=len(held_ok), holdout_classes=len(held),
                dropped_classes=listed_classes - len(keys) - len(held),
                skipped=Counter(outcome[i] for i in skipped),
                crops=Counter(outcome[i] for i in ok), mean=mean.channel_means(image_mean),
                encoded=opts.encode_type, size=opts.size, map_resizes=resizes,
                synthetic=opts.synthetic, relabelled=relabelled)


def _hold_out(keys, ok_keys, opts):
    """(training class keys, held-out class keys), both sorted."""
    n = opts.holdout_identities
    if not n:
        return keys, []
    if opts.synthetic:
        trained = min(opts.identities, opts.max_classes or opts.identities)
        return [k for k in keys if k < trained], [k for k in keys if k >= trained]
    counts = Counter(ok_keys)
    eligible = [k for k in keys if counts[k] >= 2]
    if n > len(eligible) or n >= len(keys):
        raise UserError(f"{opts.source}: cannot hold out {n} identities: {len(keys)} classes "
                        f"are usable, {len(eligible)} of them with the two images a same-person "
                        "pair needs, and at least one class must stay for training; lower "
                        "--holdout-identities")
    rng = np.random.default_rng([opts.seed, 14])
    held = sorted(eligible[i] for i in rng.choice(len(eligible), n, replace=False))
    held_set = set(held)
    return [k for k in keys if k not in held_set], held


def holdout_file_name(path, name):
    """holdout/<name>/<stem>.png for list path `path` of person `name` (a leading <name>/
    folder is dropped; deeper folders are joined with '_')."""
    stem = os.path.splitext(path)[0]
    if stem.startswith(name + "/"):
        stem = stem[len(name) + 1:]
    return f"holdout/{name.replace('/', '_')}/{stem.replace('/', '_')}.png"


def _write_holdout(tmp, held, names, held_ok, items, store):
    """The held-out crops as PNG files and holdout.txt ('holdout/<name>/<x>.png k' lines)."""
    label_of = {key: k for k, key in enumerate(held)}
    lines, used = [], set()
    for i in held_ok:
        path, key = items[i]
        rel = holdout_file_name(path, names[label_of[key]])
        if rel in used:  # two list paths flattened to one name
            rel = f"{rel[:-4]}_{i}.png"
        used.add(rel)
        full = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        ok, png = cv2.imencode(".png", np.asarray(store[i]))
        with open(full, "wb") as f:
            f.write(png.tobytes())
        lines.append(f"{rel} {label_of[key]}\n")
    with open(os.path.join(tmp, "holdout.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)


def _check_keys(paths):
    for path in paths:
        if len(pack.record_key(0, path).encode()) > MAX_KEY_BYTES:
            raise UserError(f"{path}: path too long for an LMDB key ({MAX_KEY_BYTES} bytes "
                            "with the index); shorten the folder or file names")


def _label_names(keys, items, ok, opts):
    if opts.synthetic:
        return [f"id{k:04d}" for k in keys]
    if opts.root is None:
        return list(keys)  # folder mode: the person folder names
    if opts.label_names:
        all_names = sources.read_names(opts.label_names)
        return [all_names[k] for k in keys]
    # A listfile without names: a label's shared first folder, else its original number.
    folders = {}
    for i in ok:
        path, key = items[i]
        folder = path.split("/", 1)[0] if "/" in path else None
        folders.setdefault(key, set()).add(folder)
    return [next(iter(folders[k])) if len(folders[k]) == 1 and None not in folders[k]
            else str(k) for k in keys]
