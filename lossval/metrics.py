"""Detection metrics: how well low values point at the truly corrupted rows.

All take ``values`` (higher = more valuable) and a boolean ``noisy`` mask of
the same length.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from lossval.threshold import two_means_mask


def _check(values: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, noisy = np.asarray(values, dtype=np.float64), np.asarray(noisy, dtype=bool)
    if values.shape != noisy.shape or values.ndim != 1:
        raise ValueError(f"values and noisy must be 1-D of one length, got {values.shape} and {noisy.shape}")
    return values, noisy


def f1_of_flags(flagged: np.ndarray, noisy: np.ndarray) -> float:
    """F1 of a flag mask against the truth (0 when nothing is flagged or nothing is noisy)."""
    flagged, noisy = np.asarray(flagged, dtype=bool), np.asarray(noisy, dtype=bool)
    tp = int((flagged & noisy).sum())
    if tp == 0:
        return 0.0
    precision, recall = tp / int(flagged.sum()), tp / int(noisy.sum())
    return 2 * precision * recall / (precision + recall)


def detection_f1(values: np.ndarray, noisy: np.ndarray) -> float:
    """The paper's metric: F1 of the low cluster of an exact 1-D 2-means split."""
    values, noisy = _check(values, noisy)
    return f1_of_flags(two_means_mask(values), noisy)


def detection_auroc(values: np.ndarray, noisy: np.ndarray) -> float:
    """Probability that a random noisy row has a lower value than a random clean one (ties count half)."""
    values, noisy = _check(values, noisy)
    n_noisy, n_clean = int(noisy.sum()), int((~noisy).sum())
    if n_noisy == 0 or n_clean == 0:
        return float("nan")
    ranks = rankdata(-values)  # rank 1 = highest value; noisy rows should rank last
    return float((ranks[noisy].sum() - n_noisy * (n_noisy + 1) / 2) / (n_noisy * n_clean))


def precision_at_noise_count(values: np.ndarray, noisy: np.ndarray) -> float:
    """Share of truly noisy rows among the k lowest-valued rows, k = the true noise count."""
    values, noisy = _check(values, noisy)
    k = int(noisy.sum())
    if k == 0:
        return float("nan")
    lowest = np.argsort(values, kind="stable")[:k]
    return float(noisy[lowest].mean())


# ---- downstream model scores ------------------------------------------------
def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean of the per-class F1 over the classes present in ``y_true`` or ``y_pred``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = [f1_of_flags(y_pred == c, y_true == c) for c in np.unique(np.concatenate([y_true, y_pred]))]
    return float(np.mean(scores))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    total = np.sum((y_true - y_true.mean()) ** 2)
    return float(1 - np.sum((y_true - y_pred) ** 2) / total) if total > 0 else float("nan")


def downstream_scores(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``accuracy`` and ``macro_f1`` (classification) or ``rmse`` and ``r2`` (regression)."""
    if task == "classification":
        return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred)}
    return {"rmse": rmse(y_true, y_pred), "r2": r2(y_true, y_pred)}
