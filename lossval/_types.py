"""Type aliases shared by the library (one place, imported everywhere else)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Literal, Union

import numpy as np
import pandas as pd

#: A feature matrix: a 2-D numpy array or a DataFrame of numeric columns.
Features = Union[np.ndarray, pd.DataFrame]
#: A target vector: class labels (any hashable) or floats.
Target = Union[np.ndarray, pd.Series, list]
#: The two learning problems LossVal supports.
Task = Literal["classification", "regression"]
#: How the weighted loss and the OT term are combined ("product" is the paper's).
Combine = Literal["product", "loss_only", "ot_only"]
#: When the row weights are updated (see :class:`lossval.LossVal`).
WeightUpdates = Literal["per_epoch", "per_batch"]
#: How the row weights move along their gradient (see :mod:`lossval.row_weights`).
WeightOptimizer = Literal["normalized", "normalized_rms", "adam"]
#: A per-epoch hook: called with the epoch number (1-based) and that epoch's metrics.
Callback = Callable[[int, Mapping[str, float]], None]
Label = Hashable

TASKS: tuple[str, ...] = ("classification", "regression")
