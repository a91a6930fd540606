"""Class selection and the seeded per-identity split."""
from collections import Counter

from bnface_caffe.data import split


def test_select_classes_min_images_and_most_populous():
    keys = ["a"] * 5 + ["b"] * 2 + ["c"] * 9 + ["d"] * 5 + ["e"]
    assert split.select_classes(keys) == ["a", "b", "c", "d", "e"]
    assert split.select_classes(keys, min_images=3) == ["a", "c", "d"]
    # Two biggest: c (9), then a/d tie at 5 → the first in sorted order (a).
    assert split.select_classes(keys, max_classes=2) == ["a", "c"]
    assert split.select_classes(keys, min_images=10) == []


def test_test_count_rounds_and_keeps_a_training_image():
    assert [split.test_count(n, 0.1) for n in (1, 2, 4, 5, 14, 15, 30)] == [0, 0, 0, 1, 1, 2, 3]
    assert split.test_count(3, 0.9) == 2 and split.test_count(10, 0) == 0


def test_split_is_per_class_seeded_and_shuffled():
    labels = [c for c in range(6) for _ in range(20)]
    train, test = split.split(labels, 0.1, seed=5)
    assert sorted(train + test) == list(range(120))
    assert Counter(labels[i] for i in test) == {c: 2 for c in range(6)}
    assert {labels[i] for i in test} <= {labels[i] for i in train}  # closed set
    assert (train, test) == split.split(labels, 0.1, seed=5)
    assert (train, test) != split.split(labels, 0.1, seed=6)
    assert train != sorted(train)  # shuffled, as convert_imageset --shuffle


def test_shuffle_seed_reorders_the_train_list_only():
    labels = [c for c in range(5) for _ in range(10)]
    train, test = split.split(labels, 0.2, seed=3)
    one, test_one = split.split(labels, 0.2, seed=3, shuffle_seed=1)
    two, test_two = split.split(labels, 0.2, seed=3, shuffle_seed=2)
    assert test_one == test_two == test                      # same test records, same order
    assert sorted(one) == sorted(two) == sorted(train)       # same training members
    assert len({tuple(train), tuple(one), tuple(two)}) == 3  # three different orders
    assert split.split(labels, 0.2, seed=3, shuffle_seed=1) == (one, test_one)
    # the order is the shuffle seed's alone: with no test images every split seed has the
    # same members, and the shuffled order no longer depends on the split seed
    assert split.split(labels, 0, seed=4, shuffle_seed=1)[0] == split.split(labels, 0, seed=5, shuffle_seed=1)[0]
    assert split.split(labels, 0, seed=4)[0] != split.split(labels, 0, seed=5)[0]
