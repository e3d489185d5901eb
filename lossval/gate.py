"""The champion gate: promote a cleaned model only when the test rows show it is better than the all-rows model.

All variants (``"all"``: trained on every row, ``"clean"``: on the rows left
after quarantine, ``"weighted"``: on every row with its value as sample
weight) are scored on the same test rows. A paired bootstrap (the same
resampled test rows for every variant) gives each variant's improvement over
``"all"`` with an interval. A variant is promoted only when it is the best
point estimate, better than ``"all"``, and the lower end of its interval is
above zero ("better beyond the uncertainty"); otherwise ``"all"`` stays the
champion, and the reason says why. Improvements are in the headline metric's
own units, signed so that positive = better (accuracy: variant - all;
RMSE: all - variant).

Whether the test set can resolve one point: one point is 0.01 accuracy, or 1 %
of the all-rows RMSE; the test set resolves it when every interval's
half-width is at most that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lossval._checks import check_task

BASELINE = "all"
#: Two-sided level of the intervals; promotion needs the lower end above zero (one-sided 95 %).
CONFIDENCE = 0.9
N_BOOT = 1000


@dataclass(frozen=True)
class Gate:
    """The gate's verdict."""

    promoted: str  # "all", or the promoted variant's name
    metric: str  # "accuracy" or "rmse"
    scores: dict[str, float]  # variant -> metric on the test rows
    improvement: dict[str, tuple[float, float, float]]  # variant (not "all") -> (point, low, high), positive = better
    test_rows: int
    one_point: float  # the size of one point in the metric's units
    resolves_one_point: bool  # every interval's half-width <= one_point
    reason: str  # in words
    confidence: float = CONFIDENCE
    details: dict = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        """``gain_<variant>``, ``gain_<variant>_low``, ``gain_<variant>_high`` for every variant but ``all``."""
        out: dict[str, float] = {}
        for name, (point, low, high) in self.improvement.items():
            out |= {f"gain_{name}": point, f"gain_{name}_low": low, f"gain_{name}_high": high}
        return out


def _metric(task: str, y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(B,) metric of each bootstrap sample ``idx`` (B, T), 100 samples at a time; the caller applies the sign."""
    per_row = (pred == y).astype(np.float64) if task == "classification" else (pred - y) ** 2  # (T,)
    means = np.concatenate([per_row[idx[i : i + 100]].mean(axis=1) for i in range(0, len(idx), 100)])
    return means if task == "classification" else np.sqrt(means)


def champion_gate(
    *,
    task: str,
    y_true: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    seed: int = 0,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
) -> Gate:
    """Decide which variant becomes champion.

    Args:
        task: ``"classification"`` (accuracy, higher = better) or ``"regression"`` (RMSE, lower = better).
        y_true: (T,) test targets; predictions: variant name -> (T,) predictions on the same test
            rows; must contain ``"all"``.
        seed, n_boot: the paired bootstrap over the T test rows.
        confidence: two-sided level of the intervals, in (0, 1).

    Raises:
        ValueError: no ``"all"`` variant, fewer than 2 test rows, or a prediction of the wrong length.
    """
    check_task(task)
    if BASELINE not in predictions:
        raise ValueError(f"predictions must contain the baseline {BASELINE!r}, got {sorted(predictions)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    y = np.asarray(y_true)
    t = len(y)
    if t < 2:
        raise ValueError(f"the gate needs at least 2 test rows, got {t}")
    preds = {k: np.asarray(v) for k, v in predictions.items()}
    for name, p in preds.items():
        if len(p) != t:
            raise ValueError(f"predictions[{name!r}] has {len(p)} rows, y_true has {t}")
    if task == "regression":
        y = y.astype(np.float64)
        preds = {k: v.astype(np.float64) for k, v in preds.items()}
    metric = "accuracy" if task == "classification" else "rmse"
    sign = 1.0 if task == "classification" else -1.0
    full = np.arange(t)[None, :]
    scores = {k: float(_metric(task, y, p, full)[0]) for k, p in preds.items()}
    idx = np.random.default_rng(seed).integers(0, t, size=(n_boot, t))
    base = _metric(task, y, preds[BASELINE], idx)
    alpha = (1 - confidence) / 2
    improvement: dict[str, tuple[float, float, float]] = {}
    for name, p in preds.items():
        if name == BASELINE:
            continue
        diffs = sign * (_metric(task, y, p, idx) - base)
        low, high = np.quantile(diffs, [alpha, 1 - alpha])
        improvement[name] = (sign * (scores[name] - scores[BASELINE]), float(low), float(high))
    one_point = 0.01 if task == "classification" else 0.01 * scores[BASELINE]
    half_widths = [(high - low) / 2 for _, low, high in improvement.values()]
    resolves = bool(half_widths) and max(half_widths) <= one_point
    promoted, reason = _verdict(improvement, metric, confidence)
    if not resolves:
        reason += f"; the {t} test rows cannot resolve a one-point difference ({one_point:.3g} {metric})"
    return Gate(
        promoted=promoted, metric=metric, scores=scores, improvement=improvement, test_rows=t,
        one_point=one_point, resolves_one_point=resolves, reason=reason, confidence=confidence,
    )  # fmt: skip


def _verdict(improvement: Mapping[str, tuple[float, float, float]], metric: str, confidence: float) -> tuple[str, str]:
    if not improvement:
        return BASELINE, "no variant but all rows"
    best = max(improvement, key=lambda k: improvement[k][0])
    point, low, high = improvement[best]
    interval = f"{point:+.4f} {metric} [{low:+.4f}, {high:+.4f}] ({confidence:.0%} paired bootstrap)"
    if point <= 0:
        return BASELINE, f"all rows stays champion: no variant beats it (best: {best} {interval})"
    if low <= 0:
        return BASELINE, f"all rows stays champion: {best} is better by {interval}, within the uncertainty"
    return best, f"{best} promoted: better than all rows by {interval}"
