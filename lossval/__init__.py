"""lossval: LossVal data valuation for tabular neural networks (the core of lossval-clean).

A pure library (torch, geomloss, numpy, pandas): no Prefect, MLflow or DVC import.

    >>> from lossval import LossVal
    >>> lv = LossVal(task="classification").fit(X_train, y_train, X_val, y_val)  # doctest: +SKIP
    >>> lv.values_.nsmallest(10)  # the ten least valuable rows  # doctest: +SKIP

The public names are loaded on first use, so ``import lossval.rows`` (no
torch needed) stays cheap for the pipeline's lighter steps.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "LossVal", "LossValLoss", "MLP", "NotFittedError", "SinkhornToReference", "TrainingDivergedError", "large_data_settings",
]  # fmt: skip
__version__ = "0.1.0"

_WHERE = {
    "LossVal": "lossval.valuation",
    "LossValLoss": "lossval.loss",
    "MLP": "lossval.model",
    "NotFittedError": "lossval.errors",
    "SinkhornToReference": "lossval.ot",
    "TrainingDivergedError": "lossval.errors",
    "large_data_settings": "lossval.large_data",
}

if TYPE_CHECKING:
    from lossval.errors import NotFittedError, TrainingDivergedError
    from lossval.large_data import large_data_settings
    from lossval.loss import LossValLoss
    from lossval.model import MLP
    from lossval.ot import SinkhornToReference
    from lossval.valuation import LossVal


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lossval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
