"""On real data with 10 % of the training labels corrupted, the corrupted rows get clearly lower values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossval import LossVal
from lossval.metrics import detection_auroc
from lossval.noise import add_noise


def _run(frame: pd.DataFrame, task: str, reference: pd.DataFrame | None = None):
    rng = np.random.default_rng(7)
    frame = frame.sample(n=1000, random_state=7).reset_index(drop=True)
    if reference is None:
        reference, frame = frame.iloc[:100], frame.iloc[100:].reset_index(drop=True)
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    _, y_noisy, rows, _ = add_noise(X, y, kind="labels", rate=0.1, task=task, rng=rng)
    lv = LossVal(task, random_state=0, progress=False).fit(
        X, y_noisy, reference.drop(columns="target"), reference["target"]
    )
    noisy = np.zeros(len(X), dtype=bool)
    noisy[rows] = True
    return lv.values_.to_numpy(), noisy


def test_flipped_labels_score_lower_classification(electricity, electricity_reference):
    values, noisy = _run(electricity, "classification", electricity_reference.iloc[:100])
    assert values[noisy].mean() < values[~noisy].mean()
    assert detection_auroc(values, noisy) > 0.75


def test_mixed_targets_score_lower_regression(white_wine):
    values, noisy = _run(white_wine, "regression")
    assert values[noisy].mean() < values[~noisy].mean()
    assert detection_auroc(values, noisy) > 0.6
