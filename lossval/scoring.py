"""A row's value from one LossVal fit: the learned weight, with its ties broken by the two parts.

Many rows end a fit at the same weight (the floor ``min_weight``: 7-12 % of
the rows in the development runs of docs/benchmarks.md, section 2.9), so the
weight alone cannot say which of them is worst, and that order is exactly what
a quarantine of fewer rows than the floor holds needs. :func:`tie_free_values`
keeps every weight's place and spreads each group of equal weights just below
that weight, in the order of :func:`part_push`: the row its two parts pushed
down hardest gets the lowest value.

Why only the ties (issue 14, development datasets only): a value that re-ranks
*all* rows by the parts (rank or robust-z combinations of the weight, the
per-row loss and the per-row transport part, about 40 forms) traded label
noise against feature noise and beat the weight on neither kind; the learned
weight was on the frontier of every such family. Breaking the floor's ties by
the parts raised precision at the noise count (classification labels .378 ->
.436, regression mixed .351 -> .416) with the 2-means F1 unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossval.reasons import robust_z


def part_push(*, loss_part: np.ndarray | None = None, transport_part: np.ndarray | None = None, n: int | None = None) -> np.ndarray:
    """How hard the two parts of the objective pushed each row down: the sum of their robust z-scores.

    Args:
        loss_part, transport_part: (N,) the columns of :attr:`LossVal.parts_` (higher = pushed
            down harder; :mod:`lossval.reasons`); None = not used.
        n: the number of rows when both parts are None (then every push is 0).

    Returns:
        (N,) float64, higher = pushed down harder.
    """
    given = [np.asarray(p, dtype=np.float64) for p in (loss_part, transport_part) if p is not None]
    if not given:
        if n is None:
            raise ValueError("part_push needs loss_part, transport_part or n")
        return np.zeros(n)
    if any(p.shape != given[0].shape or p.ndim != 1 for p in given):
        raise ValueError(f"the parts must be 1-D of one length, got shapes {[p.shape for p in given]}")
    return np.sum([robust_z(pd.Series(p)).to_numpy() for p in given], axis=0)


def tie_free_values(values: np.ndarray, *, loss_part: np.ndarray | None = None, transport_part: np.ndarray | None = None) -> np.ndarray:
    """The values with every tie broken: equal values spread just below their common value by :func:`part_push`.

    Args:
        values: (N,) finite row values (LossVal's weights), higher = more valuable.
        loss_part, transport_part: (N,) the per-row parts of the same fit (higher = pushed down harder).

    Returns:
        (N,) float64 with no two entries equal (for N < 2**40). A value that was unique is unchanged;
        a group of m equal values c becomes m values in ``[c - gap / 2, c]``, where ``gap`` is the distance
        to the next lower distinct value (``max(|c|, 1e-12)`` below the lowest one); the row with the
        largest push gets the lowest. Among rows of equal push the earlier row ranks lower (stable).
        So the order of distinct values is kept, positive values stay positive, and every row's rank
        equals :func:`lossval.calibrate.tie_free_ranks` on the original values and parts.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"values must be 1-D and finite, got shape {v.shape} with {int((~np.isfinite(v)).sum())} non-finite")
    push = part_push(loss_part=loss_part, transport_part=transport_part, n=len(v))
    if push.shape != v.shape:
        raise ValueError(f"the parts have shape {push.shape}, values {v.shape}")
    order = np.lexsort((-push, v))  # by value, then the hardest push first
    sorted_v = v[order]
    out = sorted_v.copy()
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], len(v)]
    for start, end in zip(starts, ends):
        m = end - start
        if m == 1:
            continue
        c = sorted_v[start]
        gap = c - sorted_v[start - 1] if start > 0 else max(abs(c), 1e-12)
        out[start:end] = c - (gap / 2) * (m - 1 - np.arange(m)) / m  # increasing, the last one keeps c
    result = np.empty_like(v)
    result[order] = out
    return result
