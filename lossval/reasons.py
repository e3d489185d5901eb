"""Why a row looks bad: label-like or feature-like, from the two parts of LossVal's objective.

A row's weight is pushed down by two forces (:mod:`lossval.loss`): its own
loss (``loss_part`` of :attr:`LossVal.parts_`: high when the model cannot
fit the row's label) and its share of the transport cost to the validation
set (``transport_part``: high when the row's features lie far from the
validation rows). The part that stands out more, relative to the other rows,
names the reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REASONS: tuple[str, ...] = ("label", "feature")


def robust_z(values: pd.Series) -> pd.Series:
    """``(x - median) / (1.4826 * MAD)``: how unusual each value is among the rows (0 when all are alike)."""
    x = values.to_numpy(dtype=np.float64)
    center = np.median(x)
    spread = 1.4826 * np.median(np.abs(x - center))
    if not spread > 0:
        spread = x.std() or 1.0
    return pd.Series((x - center) / spread, index=values.index)


def row_reasons(parts: pd.DataFrame) -> pd.Series:
    """``"label"`` or ``"feature"`` for every row of :attr:`LossVal.parts_`.

    Args:
        parts: a DataFrame with columns ``loss_part`` (per-row loss, high =
            the label does not fit) and ``transport_part`` (per-row transport
            cost to the validation set, high = the features are far from it).

    Returns:
        A Series on ``parts``'s index: ``"label"`` where the loss part stands
        out more than the transport part (robust z-scores over the rows),
        else ``"feature"``. Meaningful for the rows with low values; every
        row gets one.
    """
    missing = [c for c in ("loss_part", "transport_part") if c not in parts.columns]
    if missing:
        raise ValueError(f"parts lacks the columns {missing}; pass LossVal.parts_ (got columns {list(parts.columns)})")
    label_like = robust_z(parts["loss_part"]) >= robust_z(parts["transport_part"])
    return pd.Series(np.where(label_like, "label", "feature"), index=parts.index, name="reason")
