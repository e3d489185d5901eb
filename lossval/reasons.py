"""Why a row looks bad: label-like or feature-like, from the two parts of LossVal's objective.

A row's weight is pushed down by two forces (:mod:`lossval.loss`): its own
loss (``loss_part`` of :attr:`LossVal.parts_`, the row's mean loss over
training: high when the model cannot fit the row's label) and its transport
cost to the validation set (``transport_part``, the row's mean gradient of
the OT term: high when its features lie far from the validation rows).

The two are not symmetric. Corrupted features raise both parts (the row is
far from the validation set, and its label no longer matches its features);
a corrupted label raises only the loss part (the features are untouched).
So the transport part decides: a row whose transport part is unusually high
among the rows is "feature", any other row "label". "Unusually high" is a
robust z-score (median and scaled median absolute deviation over the rows)
of at least ``feature_z`` (1.5, chosen on the development grid of
docs/benchmarks.md, where it named the injected noise type of 88 % of the
noisy rows of mixed-noise classification runs and 86 % of regression runs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REASONS: tuple[str, ...] = ("label", "feature")
FEATURE_Z = 1.5


def robust_z(values: pd.Series) -> pd.Series:
    """``(x - median) / (1.4826 * MAD)``: how unusual each value is among the rows.

    Falls back to the standard deviation when more than half the values are
    equal (MAD 0), and to 0 everywhere when all are equal.
    """
    x = values.to_numpy(dtype=np.float64)
    center = np.median(x)
    spread = 1.4826 * np.median(np.abs(x - center))
    if not spread > 0:
        spread = x.std()
    z = (x - center) / spread if spread > 0 else np.zeros_like(x)
    return pd.Series(z, index=values.index)


def row_reasons(parts: pd.DataFrame, *, feature_z: float = FEATURE_Z) -> pd.Series:
    """``"label"`` or ``"feature"`` for every row of :attr:`LossVal.parts_`.

    Args:
        parts: a DataFrame with columns ``loss_part`` (per-row loss, high =
            the label does not fit) and ``transport_part`` (per-row transport
            cost to the validation set, high = the features are far from it).
        feature_z: a row whose ``transport_part`` has a robust z-score of at
            least this is ``"feature"``.

    Returns:
        A Series on ``parts``'s index named ``"reason"``. Every row gets one;
        it is meant for the rows with low values (for a row nothing is wrong
        with it is only the part that would be to blame).
    """
    missing = [c for c in ("loss_part", "transport_part") if c not in parts.columns]
    if missing:
        raise ValueError(f"parts lacks the columns {missing}; pass LossVal.parts_ (got columns {list(parts.columns)})")
    if not np.isfinite(feature_z):
        raise ValueError(f"feature_z must be a finite number, got {feature_z!r}")
    feature_like = robust_z(parts["transport_part"]).to_numpy() >= feature_z
    return pd.Series(np.where(feature_like, "feature", "label"), index=parts.index, name="reason")
