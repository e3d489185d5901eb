"""The calibrated quarantine: how many rows are bad, where to cut, and how good that cut is, from the canaries.

Values alone cannot say how many rows are bad: a 2-means split flags a quarter
of the rows whatever the noise, and many rows tie at the weight floor. Here:

1. **A tie-free order.** :func:`tie_free_ranks` orders rows by value and,
   among equal values (the floor), by how hard the two parts of the
   objective pushed them down (robust z-scores of ``loss_part`` plus
   ``transport_part``, :mod:`lossval.reasons`), so no tie decides anything.
   Training rows and canaries (:mod:`lossval.canary`) are ranked together.
2. **The count.** The training rows' rank distribution ``F`` is modelled as a
   mixture of the clean controls' ``G_c`` and the corrupted canaries' ``G_b``:
   ``F = (1 - pi) G_c + pi G_b``. ``pi`` is the least-squares fit over the
   canaries' ranks (clipped to [0, 1]); a bootstrap over the canaries and the
   training rows gives its interval. Estimated bad rows: ``pi * N``.
3. **The cut.** Flagging the k lowest rows (rank <= t_k), the expected bad
   ones among them are ``pi * N * G_b(t_k)`` and the expected clean ones
   ``(1 - pi) * N * G_c(t_k)``; the precision estimate is the first over their
   sum, the recall estimate ``G_b(t_k)``. The cut is the largest k whose estimated
   precision is at least ``min_precision``, then capped at ``max_fraction``.
4. **The self-test.** If the corrupted canaries do not rank below the clean
   controls (:func:`lossval.canary.canary_auroc` < ``min_auroc``), the
   valuation is unreliable and nothing is flagged by value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossval.canary import canary_auroc
from lossval.scoring import part_push
from lossval.threshold import Decision

#: Bootstrap repetitions of the count interval.
N_BOOT = 200


def tie_free_ranks(values: np.ndarray, *, loss_part: np.ndarray | None = None, transport_part: np.ndarray | None = None) -> np.ndarray:
    """Rank of every row, 0 = lowest value = most likely bad; no two rows share a rank.

    Args:
        values: (N,) row values, higher = more valuable.
        loss_part, transport_part: (N,) the per-row parts of :attr:`LossVal.parts_`
            (higher = pushed down harder); among equal values the row with the larger
            sum of their robust z-scores ranks lower. None = not used.

    Ties left after that are broken by position (stable), so the ranks are a permutation of 0..N-1.
    """
    v = np.asarray(values, dtype=np.float64)
    push = part_push(loss_part=loss_part, transport_part=transport_part, n=len(v))
    if push.shape != v.shape:
        raise ValueError(f"a part has shape {push.shape}, values have {v.shape}")
    order = np.lexsort((-push, v))  # by value, then by push (descending)
    ranks = np.empty(len(v), dtype=np.int64)
    ranks[order] = np.arange(len(v))
    return ranks


@dataclass(frozen=True)
class Calibration:
    """What the canaries say about this run's values (counts are of training rows)."""

    estimated_bad: float  # pi * N
    estimated_bad_low: float  # bootstrap 90 % interval of the same
    estimated_bad_high: float
    precision: float  # estimated precision of the chosen cut (NaN when nothing is flagged)
    recall: float  # estimated recall of the chosen cut = canary recall
    canary_auroc: float  # corrupted canaries vs clean controls; 0.5 = chance
    reliable: bool  # canary_auroc >= min_auroc
    n_canaries: int  # corrupted canaries (the clean controls are as many)

    def as_metrics(self) -> dict[str, float]:
        return {
            "estimated_bad": self.estimated_bad, "estimated_bad_low": self.estimated_bad_low,
            "estimated_bad_high": self.estimated_bad_high, "estimated_precision": self.precision,
            "estimated_recall": self.recall, "canary_auroc": self.canary_auroc, "canary_recall": self.recall,
        }  # fmt: skip


def mixture_share(train: np.ndarray, bad: np.ndarray, clean: np.ndarray) -> float:
    """Least-squares share ``pi`` of ``F = (1 - pi) G_c + pi G_b`` over the canaries' scores, in [0, 1].

    Args:
        train: (N,) scores of the training rows; bad: (K,) of the corrupted canaries;
            clean: (C,) of the clean controls (lower = worse, any continuous scale).
    """
    grid = np.unique(np.concatenate([bad, clean]))
    return _share(np.searchsorted(np.sort(train), grid, side="right") / len(train), grid, bad, clean)


def _share(f: np.ndarray, grid: np.ndarray, bad: np.ndarray, clean: np.ndarray) -> float:
    """:func:`mixture_share` given ``f``, the training rows' CDF at ``grid`` (the canaries' distinct scores)."""
    cdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / len(s)  # noqa: E731
    gb, gc = cdf(bad), cdf(clean)
    d = gb - gc
    denom = float(d @ d)
    if denom == 0.0:
        return 0.0
    return float(np.clip((f - gc) @ d / denom, 0.0, 1.0))


def calibrated_decision(
    ranks: np.ndarray,
    *,
    n_train: int,
    corrupted: np.ndarray,
    min_precision: float,
    max_fraction: float,
    min_auroc: float,
    seed: int = 0,
) -> tuple[Decision, Calibration]:
    """Choose how many training rows to flag from the canaries' ranks.

    Args:
        ranks: (N + 2K,) tie-free ranks (:func:`tie_free_ranks`) of the training rows
            (first ``n_train``) and then the canaries, all ranked together.
        n_train: the number N of training rows.
        corrupted: (2K,) bool over the canaries, True = corrupted copy, False = clean control.
        min_precision: flag the most rows whose estimated precision is still >= this, in (0, 1].
        max_fraction: never flag more than this share of the training rows.
        min_auroc: below this canary AUROC the valuation is unreliable and nothing is flagged.
        seed: of the bootstrap.

    Returns:
        (decision over the N training rows, the calibration); ``decision.threshold`` is the
        largest flagged rank (-1 when none), its rule e.g. ``calibrated:p>=0.6,k=123``.
    """
    if not 0.0 < min_precision <= 1.0:
        raise ValueError(f"min_precision must be in (0, 1], got {min_precision!r}")
    if not 0.0 <= max_fraction <= 1.0:
        raise ValueError(f"max_fraction must be in [0, 1], got {max_fraction!r}")
    train, bad, clean = _split(ranks, n_train, corrupted)
    share, low, high, auroc = _estimate(train, bad, clean, seed)
    sorted_train = np.sort(train)  # t_k = sorted_train[k - 1]
    recall_k, precision_k = _at(sorted_train, bad, clean, share)
    reliable = bool(auroc >= min_auroc)
    ok = np.flatnonzero(precision_k >= min_precision) if reliable and share > 0 else np.array([], dtype=int)
    k = int(ok[-1]) + 1 if len(ok) else 0
    limit = int(np.floor(max_fraction * n_train))
    capped = k > limit
    k = min(k, limit)
    threshold = float(sorted_train[k - 1]) if k else -1.0
    flagged = train <= threshold if k else np.zeros(n_train, dtype=bool)
    rule = f"calibrated:p>={min_precision:g},k={k}" + (f",cap={max_fraction:g}" if capped else "") + ("" if reliable else ",unreliable")
    calibration = Calibration(
        estimated_bad=share * n_train, estimated_bad_low=low, estimated_bad_high=high,
        precision=float(precision_k[k - 1]) if k else float("nan"), recall=float(recall_k[k - 1]) if k else 0.0,
        canary_auroc=auroc, reliable=reliable, n_canaries=int(len(bad)),
    )  # fmt: skip
    return Decision(flagged=flagged, threshold=threshold, rule=rule, capped=capped), calibration


def assess_cut(ranks: np.ndarray, *, n_train: int, corrupted: np.ndarray, flagged: np.ndarray, min_auroc: float, seed: int = 0) -> Calibration:
    """The calibration of a cut made by another rule (``flagged``: (N,) bool over the training rows):
    the same count estimate and self-test, with the precision and recall estimated at that cut
    (at the largest flagged rank)."""
    train, bad, clean = _split(ranks, n_train, corrupted)
    flagged = np.asarray(flagged, dtype=bool)
    share, low, high, auroc = _estimate(train, bad, clean, seed)
    if flagged.any():
        recall, precision = (float(a[0]) for a in _at(np.array([train[flagged].max()]), bad, clean, share))
    else:
        recall, precision = 0.0, float("nan")
    return Calibration(
        estimated_bad=share * n_train, estimated_bad_low=low, estimated_bad_high=high, precision=precision, recall=recall,
        canary_auroc=auroc, reliable=bool(auroc >= min_auroc), n_canaries=int(len(bad)),
    )  # fmt: skip


def _split(ranks: np.ndarray, n_train: int, corrupted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ranks = np.asarray(ranks, dtype=np.float64)
    corrupted = np.asarray(corrupted, dtype=bool)
    if len(ranks) != n_train + len(corrupted):
        raise ValueError(f"ranks has {len(ranks)} entries, expected n_train + canaries = {n_train + len(corrupted)}")
    train, canary = ranks[:n_train], ranks[n_train:]
    bad, clean = canary[corrupted], canary[~corrupted]
    if len(bad) == 0 or len(clean) == 0:
        raise ValueError(f"the calibration needs corrupted canaries and clean controls, got {len(bad)} and {len(clean)}")
    return train, bad, clean


def _estimate(train: np.ndarray, bad: np.ndarray, clean: np.ndarray, seed: int) -> tuple[float, float, float, float]:
    """(share pi, 90 % bootstrap interval of pi * N (low, high), canary AUROC)."""
    n = len(train)
    share = mixture_share(train, bad, clean)
    rng = np.random.default_rng(seed)
    # Each bootstrap sample's CDF at the canaries' scores counted in O(N) instead of sorting N draws: a draw
    # train[i] is <= canary score levels[j] exactly when below[i] <= j. Same draws (rng.choice(a, k) is
    # a[rng.integers(0, len(a), k)]), same counts, so the same interval as mixture_share on the resamples.
    levels = np.unique(np.concatenate([bad, clean]))
    below = np.searchsorted(levels, train, side="left")  # (N,)
    boots = []
    for _ in range(N_BOOT):
        drawn = below[rng.integers(0, n, n)]
        b, c = bad[rng.integers(0, len(bad), len(bad))], clean[rng.integers(0, len(clean), len(clean))]
        grid = np.unique(np.concatenate([b, c]))
        at_most = np.cumsum(np.bincount(drawn, minlength=len(levels) + 1))  # (L + 1,) draws <= levels[j]
        boots.append(_share(at_most[np.searchsorted(levels, grid)] / n, grid, b, c))
    low, high = np.quantile(boots, [0.05, 0.95]) * n
    return share, float(low), float(high), canary_auroc(corrupted=bad, clean=clean)


def _at(thresholds: np.ndarray, bad: np.ndarray, clean: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(estimated recall G_b(t), estimated precision) of flagging every training row with rank <= t, per t."""
    recall = np.searchsorted(np.sort(bad), thresholds, side="right") / len(bad)
    false = np.searchsorted(np.sort(clean), thresholds, side="right") / len(clean)
    hits, misses = share * recall, (1 - share) * false
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(hits > 0, hits / (hits + misses), 0.0)
    return recall, precision
