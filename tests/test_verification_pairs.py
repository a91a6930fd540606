"""Pairs drawn in LFW's shape with a seed, and LFW's pairs.txt."""
import itertools

import numpy as np
import pytest

from bnface_caffe.errors import UserError
from bnface_caffe.verification.pairs import generate_pairs, read_pairs_file


def identities(people=24, images=6):
    return np.repeat([f"p{k:02d}" for k in range(people)], images)


def as_tuples(pairs):
    return list(zip(pairs.first.tolist(), pairs.second.tolist(), pairs.same.tolist(),
                    pairs.fold.tolist()))


def test_pairs_are_deterministic_with_a_seed():
    ids = identities()
    a, b = generate_pairs(ids, seed=3), generate_pairs(ids, seed=3)
    assert as_tuples(a) == as_tuples(b)
    assert as_tuples(generate_pairs(ids, seed=4)) != as_tuples(a)


def test_folds_are_balanced_identity_disjoint_and_pairs_are_what_they_say():
    ids = identities(people=30, images=5)
    pairs = generate_pairs(ids, folds=10, pairs_per_fold=4, seed=0)
    assert len(pairs) == 10 * 8
    people_of_fold = {}
    for a, b, same, fold in as_tuples(pairs):
        assert a != b
        assert (ids[a] == ids[b]) == same
        people_of_fold.setdefault(fold, set()).update({ids[a], ids[b]})
    for k in range(10):
        in_fold = pairs.fold == k
        assert pairs.same[in_fold].sum() == 4 and (~pairs.same[in_fold]).sum() == 4
    for j, k in itertools.combinations(range(10), 2):
        assert not people_of_fold[j] & people_of_fold[k]
    unordered = {frozenset((a, b)) for a, b, _, _ in as_tuples(pairs)}
    assert len(unordered) == len(pairs)                       # no pair twice


def test_pair_count_is_capped_by_the_poorest_fold_and_every_pair_is_reachable():
    # 2 folds of 2 people x 2 images: each fold has 2 same pairs and 4 different ones,
    # so n = 2 and the fold's two same pairs are both drawn.
    ids = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    pairs = generate_pairs(ids, folds=2, pairs_per_fold=300, seed=1)
    assert len(pairs) == 2 * 4
    same = {frozenset((a, b)) for a, b, s, _ in as_tuples(pairs) if s}
    assert same == {frozenset(p) for p in [(0, 1), (2, 3), (4, 5), (6, 7)]}
    # a x3, b x1: 3 same and 3 different pairs, so n = 3 draws each kind exhaustively
    ids = np.array(["a", "b", "a", "a"])
    pairs = generate_pairs(ids, folds=1, pairs_per_fold=300, seed=2)
    got = {(frozenset((a, b)), s) for a, b, s, _ in as_tuples(pairs)}
    assert got == {(frozenset(p), True) for p in [(0, 2), (0, 3), (2, 3)]} | \
        {(frozenset(p), False) for p in [(0, 1), (1, 2), (1, 3)]}


def test_draws_cover_the_fold_uniformly():
    ids = np.repeat(["a", "b"], [2, 4])       # same pairs: 1 of a, 6 of b (uniform: 1/7 each)
    counts = {}
    for seed in range(700):
        pairs = generate_pairs(ids, folds=1, pairs_per_fold=1, seed=seed)
        a, b = sorted((int(pairs.first[0]), int(pairs.second[0])))
        counts[(a, b)] = counts.get((a, b), 0) + 1
    assert len(counts) == 7 and min(counts.values()) > 60 and max(counts.values()) < 140


def test_too_few_identities_or_images_is_a_user_error():
    with pytest.raises(UserError, match="at least 20"):
        generate_pairs(identities(people=19), folds=10)
    with pytest.raises(UserError, match="two images"):
        generate_pairs(np.arange(20), folds=10)          # one image per person


def write_lfw(tmp_path, text, names=None):
    for name, count in (names or {}).items():
        (tmp_path / "lfw" / name).mkdir(parents=True, exist_ok=True)
        for i in range(1, count + 1):
            (tmp_path / "lfw" / name / f"{name}_{i:04d}.jpg").write_bytes(b"x")
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    return path


def test_lfw_pairs_file_both_line_forms(tmp_path):
    path = write_lfw(tmp_path, "2\t1\nAbel_Pacheco\t1\t4\n"
                               "Abdel_Madi_Shabneh\t1\tDean_Barker\t1\nAkhmed_Zakayev 1 3\n"
                               "Abel_Pacheco 2 Akhmed_Zakayev 3\n",
                     {"Abel_Pacheco": 4, "Akhmed_Zakayev": 3, "Abdel_Madi_Shabneh": 1,
                      "Dean_Barker": 1})
    parsed = read_pairs_file(path, tmp_path / "lfw")
    assert parsed.per_fold == 1
    p = parsed.pairs
    name = lambda i: parsed.paths[i]                     # noqa: E731
    assert [(name(a), name(b)) for a, b in zip(p.first, p.second)] == [
        ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg"),
        ("Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg", "Dean_Barker/Dean_Barker_0001.jpg"),
        ("Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0003.jpg"),
        ("Abel_Pacheco/Abel_Pacheco_0002.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0003.jpg")]
    assert p.same.tolist() == [True, False, True, False]
    assert p.fold.tolist() == [0, 0, 1, 1]
    assert len(parsed.paths) == 7                        # each image once


def test_single_count_header_is_one_fold(tmp_path):
    path = write_lfw(tmp_path, "1\nA 1 2\nA 1 B 1\n", {"A": 2, "B": 1})
    parsed = read_pairs_file(path, tmp_path / "lfw")
    assert parsed.pairs.fold.tolist() == [0, 0] and parsed.pairs.same.tolist() == [True, False]


@pytest.mark.parametrize("text, fragment", [
    ("1 1\nA 1 2\nA 1 B 1\nA 1 B 1\n", "2 pair lines, but there are 3"),
    ("x y\nA 1 2\n", "is not 'folds pairs_per_fold'"),
    ("1 1\nA 1 2 3 4\nA 1 B 1\n", ":2: expected 'name i j'"),
    ("1 1\nA 0 2\nA 1 B 1\n", ":2:3: image number '0'"),
    ("1 1\nA 1 B 1\nA 1 B 2\n", "has 0 same-person and 2 different-person lines"),
    ("1 1\nA 1 2\nA 1 C 1\n", ":3: image"),
])
def test_bad_pairs_files_name_the_line(tmp_path, text, fragment):
    path = write_lfw(tmp_path, text, {"A": 2, "B": 2})
    with pytest.raises(UserError, match=None) as err:
        read_pairs_file(path, tmp_path / "lfw")
    assert fragment in str(err.value) and str(path) in str(err.value)
    if fragment == ":3: image":
        assert "C_0001.jpg does not exist" in str(err.value)
