"""Class selection, labels and the per-identity train/test split, all seeded.

Every kept class keeps at least one training image, so each test class is also a training
class (closed-set classification, as in the paper). Orders within train and test are
shuffled with the seed, as convert_imageset --shuffle would (but reproducibly). A separate
shuffle seed reorders the training records alone: the same split in another order, so runs
that differ only in data order test on the same people and images.
"""
from collections import Counter

import numpy as np


def select_classes(class_keys, min_images=1, max_classes=None):
    """Sorted class keys with ≥ min_images items; with max_classes, the ones with most items
    (ties: sorted order) — the usual way to subset CASIA-WebFace-like sets."""
    counts = Counter(class_keys)
    kept = sorted(k for k, n in counts.items() if n >= max(1, min_images))
    if max_classes is not None and len(kept) > max_classes:
        order = sorted(range(len(kept)), key=lambda i: (-counts[kept[i]], i))
        kept = sorted(kept[i] for i in order[:max_classes])
    return kept


def test_count(n, fraction):
    """How many of a class's n images go to test: round(n·fraction), leaving ≥ 1 for train."""
    if n <= 1 or fraction <= 0:
        return 0
    return min(n - 1, int(n * fraction + 0.5))


def split(labels, fraction, seed, shuffle_seed=None):
    """Indices into `labels` for (train, test), split per class and each list shuffled.
    With `shuffle_seed`, the train list (same members) is in that seed's order instead;
    the test list is unchanged."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 7])
    train, test = [], []
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for members in np.split(order, bounds):
        if members.size == 0:
            continue
        members = members[rng.permutation(members.size)]
        n_test = test_count(members.size, fraction)
        test.extend(members[:n_test].tolist())
        train.extend(members[n_test:].tolist())
    train = [train[i] for i in rng.permutation(len(train))]
    test = [test[i] for i in rng.permutation(len(test))]
    if shuffle_seed is not None:
        train = sorted(train)  # the order must not depend on `seed` at all
        train = [train[i] for i in np.random.default_rng([shuffle_seed, 8]).permutation(len(train))]
    return train, test
