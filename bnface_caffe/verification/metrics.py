"""Verification figures from pair scores, as pure functions.

`scores` is one similarity per pair (higher = more alike), `same` whether the pair shows one
person. A pair is accepted as "same" when its score is >= the threshold. The LFW protocol
("View 2"): for each of the k folds the threshold that is best on the other k-1 folds is
applied to it; the figure is the mean of the k accuracies with their standard deviation
(n-1 in the denominator, LFW's sigma) and standard error sigma/sqrt(k).
"""
from dataclasses import dataclass

import numpy as np


def _as_arrays(scores, same):
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    same = np.asarray(same, dtype=bool).reshape(-1)
    if scores.shape != same.shape:
        raise ValueError(f"{scores.size} scores but {same.size} same/different flags")
    return scores, same


def accuracy_at(scores, same, threshold):
    """Fraction of pairs classified right when score >= threshold means "same"."""
    scores, same = _as_arrays(scores, same)
    if scores.size == 0:
        raise ValueError("no pairs")
    return float(np.mean((scores >= threshold) == same))


def candidate_thresholds(scores):
    """Every threshold that gives a different split of `scores`: one below the lowest score
    (accept all), the midpoints between neighbouring distinct scores, one above the highest
    (reject all)."""
    u = np.unique(np.asarray(scores, dtype=np.float64))
    return np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1.0]])


def accuracy_curve(scores, same, thresholds):
    """accuracy_at for many thresholds at once (sorted search instead of a loop)."""
    scores, same = _as_arrays(scores, same)
    same_sorted = np.sort(scores[same])
    diff_sorted = np.sort(scores[~same])
    thresholds = np.asarray(thresholds, dtype=np.float64)
    rejected_same = np.searchsorted(same_sorted, thresholds, side="left")    # same, score < t
    rejected_diff = np.searchsorted(diff_sorted, thresholds, side="left")    # different, < t
    right = (same_sorted.size - rejected_same) + rejected_diff
    return right / scores.size


def best_threshold(scores, same):
    """The threshold of highest accuracy on these pairs. Several thresholds can tie (a range
    of midpoints, or separate ranges): the middle one of the tied candidates in ascending
    order is taken (the lower of the two middle ones for an even count), so the choice is
    deterministic and sits inside the best range rather than at its edge."""
    scores, same = _as_arrays(scores, same)
    if scores.size == 0:
        raise ValueError("no pairs to choose a threshold on")
    candidates = candidate_thresholds(scores)
    accuracy = accuracy_curve(scores, same, candidates)
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(candidates[best[(len(best) - 1) // 2]])


@dataclass
class FoldResult:
    thresholds: list          # per fold: chosen on the other folds
    accuracies: list          # per fold: accuracy of that fold at its threshold
    mean: float
    std: float                # sample standard deviation (n-1), LFW's sigma; 0 for one fold
    standard_error: float     # std / sqrt(folds)
    in_sample: bool           # one fold only: the threshold was chosen on the pairs it scores


def kfold_accuracy(scores, same, folds):
    """The LFW protocol: threshold chosen on all folds but one, accuracy on that one."""
    scores, same = _as_arrays(scores, same)
    folds = np.asarray(folds).reshape(-1)
    if folds.shape != scores.shape:
        raise ValueError(f"{scores.size} scores but {folds.size} fold numbers")
    names = np.unique(folds)
    thresholds, accuracies = [], []
    for k in names:
        held = folds == k
        train = ~held if len(names) > 1 else held
        t = best_threshold(scores[train], same[train])
        thresholds.append(t)
        accuracies.append(accuracy_at(scores[held], same[held], t))
    acc = np.asarray(accuracies)
    std = float(acc.std(ddof=1)) if len(acc) > 1 else 0.0
    return FoldResult(thresholds, accuracies, float(acc.mean()), std,
                      std / np.sqrt(len(acc)), len(names) == 1)


@dataclass
class Roc:
    far: np.ndarray          # false accept rate: different pairs accepted / different pairs
    tar: np.ndarray          # true accept rate: same pairs accepted / same pairs
    thresholds: np.ndarray   # accept score >= threshold; the first is +inf (accept none)
    positives: int           # same pairs
    negatives: int           # different pairs


def roc(scores, same):
    """The ROC curve: one point per distinct score, from (0, 0) at threshold +inf to (1, 1)."""
    scores, same = _as_arrays(scores, same)
    positives, negatives = int(same.sum()), int((~same).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("an ROC curve needs both same and different pairs")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(y)[last_of_each_score]
    fp = np.cumsum(~y)[last_of_each_score]
    return Roc(far=np.r_[0.0, fp / negatives], tar=np.r_[0.0, tp / positives],
               thresholds=np.r_[np.inf, s[last_of_each_score]],
               positives=positives, negatives=negatives)


def auc(curve):
    """Area under the ROC curve (trapezoids between its points)."""
    far, tar = curve.far, curve.tar
    return float(np.sum((far[1:] - far[:-1]) * (tar[1:] + tar[:-1]) / 2))


def eer(curve):
    """(equal error rate, threshold): where the false reject rate 1 - TAR meets the FAR,
    interpolated linearly along the ROC segment on which FRR - FAR changes sign. The
    threshold is interpolated the same way (the segment's far end when it starts at +inf)."""
    gap = (1.0 - curve.tar) - curve.far        # +1 at (0, 0), -1 at (1, 1)
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0 or i == 0:
        return float(curve.far[i]), float(curve.thresholds[i])
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    rate = curve.far[i - 1] + t * (curve.far[i] - curve.far[i - 1])
    lo, hi = curve.thresholds[i - 1], curve.thresholds[i]
    threshold = hi if np.isinf(lo) else lo + t * (hi - lo)
    return float(rate), float(threshold)


def tar_at_far(curve, target):
    """Highest TAR among thresholds whose FAR is at most `target` (an operating point one
    can actually set), or None when there are fewer than 1/target different pairs (then a
    FAR of `target` cannot be told apart from 0)."""
    if curve.negatives * target < 1 - 1e-9:
        return None
    allowed = curve.far <= target * (1 + 1e-9)
    return float(curve.tar[allowed].max())
