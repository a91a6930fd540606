"""Verification figures against values worked out by hand on small score lists."""
import math

import numpy as np
import pytest

from bnface_caffe.verification import metrics as m

T, F = True, False


def test_accuracy_at_a_threshold_accepts_scores_at_or_above_it():
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1]
    same = [T, T, T, F, F, F]
    # 0.5: accepts 0.9, 0.8 (right), 0.6 (wrong); rejects 0.3 (wrong), 0.2, 0.1 (right)
    assert m.accuracy_at(scores, same, 0.5) == pytest.approx(4 / 6)
    assert m.accuracy_at(scores, same, 0.6) == pytest.approx(4 / 6)   # >= : 0.6 accepted
    assert m.accuracy_at(scores, same, 0.61) == pytest.approx(5 / 6)
    assert m.accuracy_at(scores, same, -5) == pytest.approx(3 / 6)
    assert m.accuracy_at(scores, same, 5) == pytest.approx(3 / 6)


def test_best_threshold_takes_the_middle_of_tied_candidates():
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1]
    same = [T, T, T, F, F, F]
    # candidates -0.9, 0.15, 0.25, 0.45, 0.7, 0.85, 1.9 give 3,4,5,4,5,4,3 of 6 right:
    # 0.25 and 0.7 tie at 5/6; the lower middle of two is 0.25
    assert list(m.candidate_thresholds(scores)) == pytest.approx(
        [-0.9, 0.15, 0.25, 0.45, 0.7, 0.85, 1.9])
    assert list(m.accuracy_curve(scores, same, m.candidate_thresholds(scores))) == \
        pytest.approx([3 / 6, 4 / 6, 5 / 6, 4 / 6, 5 / 6, 4 / 6, 3 / 6])
    assert m.best_threshold(scores, same) == pytest.approx(0.25)


def test_ten_fold_style_protocol_on_three_folds():
    folds = [0] * 4 + [1] * 4 + [2] * 4
    scores = [0.9, 0.7, 0.4, 0.2, 0.8, 0.5, 0.6, 0.1, 0.95, 0.3, 0.35, 0.05]
    same = [T, T, F, F] * 3
    result = m.kfold_accuracy(scores, same, folds)
    # fold 0: on folds 1+2 the best (6/8) candidates are 0.2, 0.425, 0.7 -> 0.425; fold 0
    # is then all right. fold 1: on 0+2 only 0.55 gives 7/8; fold 1 gets 0.8 T and 0.1 F
    # right, 0.5 T and 0.6 F wrong. fold 2: on 0+1, 0.45 and 0.65 tie at 7/8 -> 0.45;
    # fold 2 gets 0.3 T wrong.
    assert result.thresholds == pytest.approx([0.425, 0.55, 0.45])
    assert result.accuracies == pytest.approx([1.0, 0.5, 0.75])
    assert result.mean == pytest.approx(0.75)
    assert result.std == pytest.approx(0.25)          # sqrt((0.25^2 + 0.25^2 + 0) / 2)
    assert result.standard_error == pytest.approx(0.25 / math.sqrt(3))
    assert not result.in_sample


def test_one_fold_chooses_its_threshold_in_sample():
    result = m.kfold_accuracy([0.9, 0.8, 0.3, 0.6, 0.2, 0.1], [T, T, T, F, F, F], [0] * 6)
    assert result.in_sample and result.thresholds == pytest.approx([0.25])
    assert result.accuracies == pytest.approx([5 / 6]) and result.std == 0


def test_roc_points_and_auc():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    same = [T, F, T, T, F, F, T, F]
    curve = m.roc(scores, same)
    assert list(curve.far) == pytest.approx([0, 0, .25, .25, .25, .5, .75, .75, 1])
    assert list(curve.tar) == pytest.approx([0, .25, .25, .5, .75, .75, .75, 1, 1])
    assert curve.thresholds[0] == math.inf and list(curve.thresholds[1:]) == scores
    # 11 of the 16 (same, different) score pairs are ordered right
    assert m.auc(curve) == pytest.approx(11 / 16)


def test_roc_merges_tied_scores_into_one_point():
    curve = m.roc([0.5, 0.5, 0.5, 0.1], [T, F, T, F])
    assert list(curve.far) == pytest.approx([0, 0.5, 1])
    assert list(curve.tar) == pytest.approx([0, 1, 1])


def test_eer_is_interpolated_along_the_crossing_segment():
    # points (FAR, TAR): (0,0) (0,1/3) (0,2/3) (2/3,1) (1,1); FRR-FAR: 1, 2/3, 1/3, -2/3, -1.
    # On the segment (0,2/3)->(2/3,1) the gap reaches 0 a third of the way along:
    # FAR = 2/9 and FRR = 1 - (2/3 + 1/9) = 2/9; threshold 0.8 + (0.6 - 0.8)/3.
    curve = m.roc([0.9, 0.8, 0.6, 0.6, 0.6, 0.2], [T, T, T, F, F, F])
    rate, threshold = m.eer(curve)
    assert rate == pytest.approx(2 / 9)
    assert threshold == pytest.approx(0.8 - 0.2 / 3)


def test_eer_on_a_point_and_after_the_infinite_threshold():
    curve = m.roc([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], [T, F, T, T, F, F, T, F])
    assert m.eer(curve) == pytest.approx((0.25, 0.6))   # (0.25, 0.75) lies on FRR = FAR
    # (0,0) -> (1/3, 1): FRR-FAR goes 1 -> -1/3, so 0 three quarters along, where
    # FAR = 1/4 = FRR; the segment starts at +inf, so its finite end is the threshold
    rate, threshold = m.eer(m.roc([0.5, 0.5, 0.1, 0.1], [T, F, F, F]))
    assert (rate, threshold) == pytest.approx((1 / 4, 0.5))


def test_tar_at_far_takes_the_best_point_within_the_far_and_needs_enough_pairs():
    curve = m.roc([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], [T, F, T, T, F, F, T, F])
    assert m.tar_at_far(curve, 0.25) == pytest.approx(0.75)
    assert m.tar_at_far(curve, 0.5) == pytest.approx(0.75)
    assert m.tar_at_far(curve, 0.1) is None            # 4 different pairs: FAR steps of 1/4
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(50, bool), np.zeros(100, bool)]
    scores = np.r_[rng.uniform(0.5, 1, 50), rng.uniform(0, 0.6, 100)]
    curve = m.roc(scores, same)
    # FAR <= 1/100 allows exactly the best-scoring different pair to be accepted
    top_diff = np.sort(scores[~same])[-2]               # accept above the 2nd highest
    expected = np.mean(scores[same] > top_diff)
    assert m.tar_at_far(curve, 1e-2) == pytest.approx(expected)
    assert m.tar_at_far(curve, 1e-3) is None
