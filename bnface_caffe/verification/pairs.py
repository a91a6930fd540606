"""Same/different pairs: drawn with a seed in the shape of LFW's protocol, or read from LFW's
own pairs.txt.

Drawn pairs follow LFW "View 2": k folds (10), each with as many same-person as
different-person pairs (300 + 300), and the folds are identity-disjoint (a person appears in
one fold only, so a threshold chosen on nine folds has never seen the tenth's people). Within
a fold every pair of images is equally likely: pair number r of the fold's possible pairs is
drawn without replacement and decoded, so nothing repeats and nothing depends on the order
the images were listed in beyond their identity.

pairs.txt: a header "folds n" ("10 300"; a single number n means one fold), then per fold n
same-person lines `name i j` and n different-person lines `name1 i name2 j` (image numbers
from 1), images at ROOT/name/name_%04d.jpg.
"""
import os
from dataclasses import dataclass

import numpy as np

from ..errors import UserError, at

LFW_FOLDS = 10
LFW_PAIRS_PER_FOLD = 300        # of each kind: 300 same + 300 different
LFW_PATTERN = "{name}/{name}_{number:04d}.jpg"


@dataclass
class Pairs:
    first: np.ndarray       # image index of each pair's first image
    second: np.ndarray      # image index of the second
    same: np.ndarray        # bool: one person
    fold: np.ndarray        # fold number, 0..k-1

    def __len__(self):
        return len(self.first)


def _pair_counts(sizes):
    """(same-person pairs, different-person pairs) among identities of these image counts."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    same = int((sizes * (sizes - 1) // 2).sum())
    return same, total * (total - 1) // 2 - same


def _decode(partners, r):
    """Pair numbers r -> (p, offset): position p of the first image and the offset of the
    second among p's partners. partners[p] counts the pairs (p, q > p) of the wanted kind;
    pairs are numbered p by p, so r falls in p's run when cumsum[p-1] <= r < cumsum[p]."""
    cumulative = np.cumsum(partners)
    p = np.searchsorted(cumulative, r, side="right")
    offset = r - (cumulative[p] - partners[p])
    return p, offset


def _draw_fold(members, identity, count, rng):
    """`count` same and `count` different pairs among `members` (image indices sorted by
    identity): arrays (first, second) for each kind."""
    n = len(members)
    ids = identity[members]
    starts = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1]
    ends = np.r_[starts[1:], n]
    block_end = np.repeat(ends, ends - starts)
    position = np.arange(n)
    out = []
    # same: partners of p are p+1 .. block_end-1; different: block_end .. n-1
    for partners, second_of in ((block_end - position - 1, lambda p, o: p + 1 + o),
                                (n - block_end, lambda p, o: block_end[p] + o)):
        total = int(partners.sum())
        r = np.sort(rng.choice(total, size=count, replace=False))
        p, offset = _decode(partners, r)
        out.append((members[p], members[second_of(p, offset)]))
    return out


def generate_pairs(identities, folds=LFW_FOLDS, pairs_per_fold=LFW_PAIRS_PER_FOLD, seed=0):
    """Pairs among images whose identities are `identities` (one per image): `folds`
    identity-disjoint folds of n same + n different pairs, n = pairs_per_fold or, when some
    fold cannot give that many, the most every fold can give. Same seed, same pairs."""
    identity = np.asarray(identities)
    if folds < 1 or pairs_per_fold < 1:
        raise UserError("folds and pairs per fold must be at least 1")
    people = np.unique(identity)
    if len(people) < 2 * folds:
        raise UserError(f"{len(people)} identities are too few for {folds} identity-disjoint "
                        f"folds: each fold needs two people for its different-person pairs, so "
                        f"at least {2 * folds}; hold out more identities or use fewer folds")
    rng = np.random.default_rng([seed, 14])
    shuffled = people[rng.permutation(len(people))]
    fold_members = []
    for k in range(folds):
        chosen = np.isin(identity, shuffled[k::folds])
        members = np.flatnonzero(chosen)
        members = members[np.argsort(identity[members], kind="stable")]
        fold_members.append(members)
    possible = [_pair_counts(np.unique(identity[m], return_counts=True)[1])
                for m in fold_members]
    count = min(pairs_per_fold, *(min(s, d) for s, d in possible))
    if count == 0:
        raise UserError("a fold has no person with two images, so no same-person pair; "
                        "hold out identities with at least two images each")
    first, second, same, fold = [], [], [], []
    for k, members in enumerate(fold_members):
        for is_same, (a, b) in zip((True, False), _draw_fold(members, identity, count, rng)):
            first.append(a)
            second.append(b)
            same.append(np.full(count, is_same))
            fold.append(np.full(count, k))
    return Pairs(np.concatenate(first), np.concatenate(second), np.concatenate(same),
                 np.concatenate(fold))


@dataclass
class PairsFile:
    paths: list             # the images the pairs name, in first-use order
    pairs: Pairs            # indices into paths
    per_fold: int           # n: same pairs (= different pairs) per fold


def _header(path, lines):
    for number, line in enumerate(lines, 1):
        if line.strip():
            fields = line.split()
            try:
                values = [int(v) for v in fields]
            except ValueError:
                values = []
            if len(values) == 2 and min(values) > 0:
                return number, values[0], values[1]
            if len(values) == 1 and values[0] > 0:
                return number, 1, values[0]
            raise at(path, f"header {line.strip()!r} is not 'folds pairs_per_fold' (LFW: "
                     "'10 300') nor a single pair count", number)
    raise at(path, "empty pairs file: expected a header 'folds pairs_per_fold' and pair lines")


def _fields(line):
    """Whitespace-separated fields and their 1-based columns."""
    fields, cols, start = [], [], None
    for i, ch in enumerate(line + " "):
        if ch.isspace():
            if start is not None:
                fields.append(line[start:i])
                cols.append(start + 1)
                start = None
        elif start is None:
            start = i
    return fields, cols


def _image_number(path, number, text, col):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise at(path, f"image number {text!r} is not a positive integer", number, col)
    return value


def read_pairs_file(path, root, pattern=LFW_PATTERN, check_files=True):
    """LFW's pairs.txt (or pairsDevTrain/DevTest.txt) -> PairsFile; every named image must
    exist under root (else one error naming the line and the missing file)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such pairs file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read as a text pairs file ({err})") from None
    header_line, folds, per_fold = _header(path, lines)
    body = [(n, line) for n, line in enumerate(lines, 1) if n > header_line and line.strip()]
    expected = folds * 2 * per_fold
    if len(body) != expected:
        raise at(path, f"the header says {folds} fold(s) of {per_fold} same + {per_fold} "
                 f"different pairs, i.e. {expected} pair lines, but there are {len(body)}",
                 header_line)
    index, paths = {}, []
    first, second, same, fold = [], [], [], []
    for position, (number, line) in enumerate(body):
        fields, cols = _fields(line)
        if len(fields) == 3:
            names = [(fields[0], _image_number(path, number, fields[1], cols[1])),
                     (fields[0], _image_number(path, number, fields[2], cols[2]))]
        elif len(fields) == 4:
            names = [(fields[0], _image_number(path, number, fields[1], cols[1])),
                     (fields[2], _image_number(path, number, fields[3], cols[3]))]
        else:
            raise at(path, f"expected 'name i j' (same person) or 'name1 i name2 j' (different "
                     f"people), got {len(fields)} fields: {line.strip()!r}", number)
        ids = []
        for name, image in names:
            rel = pattern.format(name=name, number=image)
            if rel not in index:
                full = os.path.join(root, rel)
                if check_files and not os.path.isfile(full):
                    raise at(path, f"image {full} does not exist (named by {name} {image}); "
                             "check the image root and --pattern", number)
                index[rel] = len(paths)
                paths.append(rel)
            ids.append(index[rel])
        first.append(ids[0])
        second.append(ids[1])
        same.append(len(fields) == 3)
        fold.append(position // (2 * per_fold))
    same = np.asarray(same)
    fold = np.asarray(fold)
    for k in range(folds):
        n_same = int(same[fold == k].sum())
        if n_same != per_fold:
            start = body[k * 2 * per_fold][0]
            raise at(path, f"fold {k + 1} (from line {start}) has {n_same} same-person and "
                     f"{2 * per_fold - n_same} different-person lines; the header asks for "
                     f"{per_fold} of each", start)
    return PairsFile(paths, Pairs(np.asarray(first), np.asarray(second), same, fold), per_fold)
