"""lossval: LossVal data valuation for tabular neural networks (the core of lossval-clean).

A pure library (torch, geomloss, numpy, pandas): no Prefect, MLflow or DVC import.

    >>> from lossval import LossVal
    >>> lv = LossVal(task="classification").fit(X_train, y_train, X_val, y_val)  # doctest: +SKIP
    >>> lv.values_.nsmallest(10)  # the ten least valuable rows  # doctest: +SKIP
"""

from lossval.errors import NotFittedError, TrainingDivergedError
from lossval.large_data import large_data_settings
from lossval.loss import LossValLoss
from lossval.model import MLP
from lossval.ot import SinkhornToReference
from lossval.valuation import LossVal

__all__ = [
    "LossVal", "LossValLoss", "MLP", "NotFittedError", "SinkhornToReference", "TrainingDivergedError", "large_data_settings",
]  # fmt: skip
__version__ = "0.1.0"
