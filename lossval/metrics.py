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
