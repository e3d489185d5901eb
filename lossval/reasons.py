"""Why a row looks bad: label-like or feature-like, from the two parts of the LossVal objective.

``LossVal.parts_`` holds, per row, the mean weighted-loss part (``loss_part``:
the row's own loss; high when its label disagrees with the model) and the
mean transport part (``transport_part``: the gradient of the OT term in the
row's weight; high when the row pulls its batch away from the reference set).
Each part is standardised over all rows (robustly: median and MAD), and a
row's reason is the part that stands out more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REASONS = ("label", "feature")


def _robust_z(values: pd.Series) -> np.ndarray:
    v = values.to_numpy(dtype=np.float64)
    center = np.median(v)
    spread = np.median(np.abs(v - center)) * 1.4826
    if not spread > 0:
        spread = v.std() or 1.0
    return (v - center) / spread


def row_reasons(parts: pd.DataFrame) -> pd.Series:
    """``"label"`` or ``"feature"`` per row (index of ``parts``), from ``loss_part`` and ``transport_part``."""
    missing = {"loss_part", "transport_part"} - set(parts.columns)
    if missing:
        raise ValueError(f"parts lacks columns {sorted(missing)}")
    label_like = _robust_z(parts["loss_part"]) >= _robust_z(parts["transport_part"])
    return pd.Series(np.where(label_like, "label", "feature"), index=parts.index, name="reason")
