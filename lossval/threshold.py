"""Turning values into keep / quarantine decisions (pure functions; scores live in :mod:`lossval.valuation`).

Every rule returns a boolean mask, True = flagged (low value = bad), in the
order of the input values. Values are "higher = more valuable".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossval._checks import check_choice

STRATEGIES: tuple[str, ...] = ("auto", "quantile", "value")


def two_means_threshold(values: np.ndarray) -> float:
    """The exact 1-D 2-means split of ``values``: the largest value of the low cluster.

    Minimises the summed within-cluster squared error over all N-1 split points
    of the sorted values, in O(N log N) with prefix sums (the paper's
    benchmark uses 2-means on the values; the lower cluster is "noisy").
    Returns ``-inf`` (nothing flagged) when all values are equal.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    if n < 2 or v[0] == v[-1]:
        return float("-inf")
    csum, csq = np.cumsum(v), np.cumsum(v * v)
    k = np.arange(1, n)  # size of the low cluster
    low_sse = csq[:-1] - csum[:-1] ** 2 / k
    high_n = n - k
    high_sum, high_sq = csum[-1] - csum[:-1], csq[-1] - csq[:-1]
    high_sse = high_sq - high_sum**2 / high_n
    sse = low_sse + high_sse
    sse[v[:-1] == v[1:]] = np.inf  # a split must fall between distinct values
    return float(v[int(np.argmin(sse))])


def two_means_mask(values: np.ndarray) -> np.ndarray:
    """True for the rows in the low cluster of the exact 1-D 2-means split."""
    values = np.asarray(values, dtype=np.float64)
    return values <= two_means_threshold(values)


@dataclass(frozen=True)
class Decision:
    """The outcome of a threshold rule: which rows are flagged and why."""

    flagged: np.ndarray  # (N,) bool, True = quarantine
    threshold: float  # rows with value <= threshold are flagged (before the cap)
    rule: str  # human-readable rule, e.g. "auto:2-means<=0.8123"
    capped: bool  # the cap on the flagged fraction bound


def decide(
    values: np.ndarray,
    *,
    strategy: str = "auto",
    quantile: float = 0.1,
    value: float = 0.0,
    max_fraction: float = 0.25,
    ranks: np.ndarray | None = None,
) -> Decision:
    """Flag low-valued rows.

    Args:
        values: (N,) row values, higher = more valuable.
        strategy: ``"auto"`` (2-means on the values), ``"quantile"`` (the lowest
            ``quantile`` fraction) or ``"value"`` (values <= ``value``).
        quantile: fraction for ``"quantile"``, in [0, 1].
        value: cut-off for ``"value"``.
        max_fraction: never flag more than this fraction of the rows; the lowest
            ones are kept flagged when the cap binds.
        ranks: (N,) a tie-free order of the rows (0 = worst; :func:`lossval.calibrate.tie_free_ranks`).
            When given, ``"quantile"`` flags exactly the ``floor(quantile * N)`` lowest-ranked rows
            and the cap keeps the lowest-ranked ones, so rows tied at the weight floor decide nothing.
            The calibrated strategy is :func:`lossval.calibrate.calibrated_decision` (it needs canaries).
    """
    check_choice("strategy", strategy, STRATEGIES)
    if not 0.0 <= max_fraction <= 1.0:
        raise ValueError(f"max_fraction must be in [0, 1], got {max_fraction!r}")
    values = np.asarray(values, dtype=np.float64)
    if strategy == "auto":
        threshold, label = two_means_threshold(values), "auto:2-means"
    elif strategy == "quantile":
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
        k = int(np.floor(quantile * len(values)))
        threshold = float(np.sort(values)[k - 1]) if k > 0 else float("-inf")
        label = f"quantile:{quantile:g}"
    else:
        threshold, label = float(value), "value"
    order = np.argsort(values, kind="stable") if ranks is None else np.argsort(np.asarray(ranks), kind="stable")
    if len(order) != len(values):
        raise ValueError(f"ranks has {len(order)} entries, values {len(values)}")
    flagged = values <= threshold
    if strategy == "quantile" and ranks is not None:
        flagged = np.zeros(len(values), dtype=bool)
        flagged[order[:k]] = True
    limit = int(np.floor(max_fraction * len(values)))
    capped = int(flagged.sum()) > limit
    if capped:
        flagged = np.zeros(len(values), dtype=bool)
        flagged[order[:limit]] = True
    return Decision(flagged=flagged, threshold=threshold, rule=f"{label}<={threshold:.6g}" + (f",cap={max_fraction:g}" if capped else ""), capped=capped)
