"""Discrimination metrics a bank risk team reads: AUC, KS, Gini.

All values come from scikit-learn's ``roc_auc_score`` / ``roc_curve`` so they
agree with what an analyst gets in a notebook. Higher scores must mean higher
risk (probability of default), as in every CreditLab model output.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["auc", "check_binary_scores", "evaluate", "gini", "ks", "ks_points", "roc_points"]


def check_binary_scores(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores for a ranking metric.

    Parameters
    ----------
    y : array of shape (n,)
        Labels in {0, 1} (1 = default).
    score : array of shape (n,)
        Scores where higher means riskier.

    Returns
    -------
    tuple of numpy.ndarray
        ``y`` as int64 and ``score`` as float64, both 1-d.

    Raises
    ------
    ValueError
        If lengths differ, labels are not 0/1, scores are not finite, or only
        one class is present (AUC and KS are undefined then: there is nothing
        to rank defaults against).
    """
    y_arr = np.asarray(y).reshape(-1)
    s_arr = np.asarray(score, dtype=np.float64).reshape(-1)
    if y_arr.size != s_arr.size:
        raise ValueError(f"y has {y_arr.size} values but score has {s_arr.size}")
    if y_arr.size == 0:
        raise ValueError("no rows to evaluate")
    if not np.all(np.isin(y_arr, (0, 1))):
        raise ValueError("labels must be 0 or 1 (1 = default)")
    if not np.all(np.isfinite(s_arr)):
        raise ValueError("scores contain NaN or infinite values")
    positives = int(np.sum(y_arr == 1))
    if positives in (0, y_arr.size):
        only = 1 if positives else 0
        raise ValueError(
            f"all {y_arr.size} labels are {only}: AUC and KS need both defaults (1) and "
            "non-defaults (0); evaluate on a larger or stratified sample"
        )
    return y_arr.astype(np.int64), s_arr


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (probability a default outranks a non-default)."""
    y_arr, s_arr = check_binary_scores(y, score)
    return float(roc_auc_score(y_arr, s_arr))


def ks(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov–Smirnov statistic, ``max |TPR − FPR|`` over all thresholds.

    Equal to the largest gap between the cumulative score distributions of
    defaults and non-defaults, the statistic credit teams quote.
    """
    y_arr, s_arr = check_binary_scores(y, score)
    fpr, tpr, _ = roc_curve(y_arr, s_arr, drop_intermediate=False)
    return float(np.max(np.abs(tpr - fpr)))


def gini(y: np.ndarray, score: np.ndarray) -> float:
    """Gini coefficient (accuracy ratio), ``2·AUC − 1``."""
    return 2.0 * auc(y, score) - 1.0


def evaluate(y: np.ndarray, score: np.ndarray) -> dict[str, float | int]:
    """All headline metrics of one scored sample.

    Returns
    -------
    dict
        ``auc``, ``ks``, ``gini`` (floats), ``n`` rows and ``positives``
        (defaults) as ints, so a report can show the base rate next to them.
    """
    y_arr, s_arr = check_binary_scores(y, score)
    area = float(roc_auc_score(y_arr, s_arr))
    fpr, tpr, _ = roc_curve(y_arr, s_arr, drop_intermediate=False)
    return {
        "auc": area,
        "ks": float(np.max(np.abs(tpr - fpr))),
        "gini": 2.0 * area - 1.0,
        "n": int(y_arr.size),
        "positives": int(np.sum(y_arr)),
    }


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points of the ROC curve for plotting.

    Returns
    -------
    tuple of numpy.ndarray
        ``(fpr, tpr, thresholds)`` as from ``sklearn.metrics.roc_curve``
        (the first threshold is ``inf``: nobody flagged).
    """
    y_arr, s_arr = check_binary_scores(y, score)
    fpr, tpr, thresholds = roc_curve(y_arr, s_arr)
    return fpr, tpr, thresholds


def ks_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points of the KS chart for plotting.

    Returns
    -------
    tuple of numpy.ndarray
        ``(population_fraction, tpr, fpr)``: at each score threshold, taken
        from highest score down, the share of all rows at or above it, the
        cumulative share of defaults (TPR) and of non-defaults (FPR). The KS
        statistic is the largest vertical gap between the two curves.
    """
    y_arr, s_arr = check_binary_scores(y, score)
    fpr, tpr, _ = roc_curve(y_arr, s_arr, drop_intermediate=False)
    positives = float(np.sum(y_arr))
    negatives = float(y_arr.size) - positives
    population = (tpr * positives + fpr * negatives) / y_arr.size
    return population, tpr, fpr
