"""How far the trusted reference set is from the training rows.

LossVal pulls the weights toward rows that look like the reference set; a
reference set drawn from another distribution makes that pull meaningless.
:func:`reference_distance` compares the Sinkhorn divergence between a
training sample and the reference set with the divergence between two
disjoint training samples of the same size (what sampling noise alone
gives). A ratio near 1 means "looks like the training data"; a large ratio
deserves a warning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lossval.ot import SinkhornToReference, diameter_bound
from lossval.preprocessing import Standardizer
from lossval.tabular import TabularEncoder, is_mixed


def reference_distance(X_train: np.ndarray | pd.DataFrame, X_ref: np.ndarray | pd.DataFrame, *, seed: int = 0, max_rows: int = 1000) -> dict[str, float]:
    """Divergence of the reference set to the training rows, and its ratio to train-vs-train.

    Args:
        X_train: (N, D) training features; X_ref: (M, D) reference features (same columns).
            DataFrames with categorical or boolean columns are encoded as LossVal encodes
            them (:mod:`lossval.tabular`), so the distance is the one LossVal's OT term sees.

    Returns:
        ``reference_distance``, ``train_distance`` (two disjoint training samples)
        and ``reference_distance_ratio`` (the first over the second; higher = farther).
    """
    # Scaling is fitted on every training row but applied only to the 2n rows drawn (row by row, so the same
    # numbers as scaling all of them first; at 10^7 rows that saves a second copy of the table).
    if is_mixed(X_train):
        encoder = TabularEncoder.fit(X_train)
        scale = lambda rows: encoder.transform(X_train.iloc[rows])  # noqa: E731
        ref = encoder.transform(X_ref, name="X_ref")
    else:
        features = np.asarray(X_train, dtype=np.float64)
        scaler = Standardizer.fit(features)
        scale = lambda rows: scaler.transform(features[rows])  # noqa: E731
        ref = scaler.transform(np.asarray(X_ref, dtype=np.float64))
    rng = np.random.default_rng(seed)
    n_train = len(X_train)
    n = int(min(len(ref), max_rows, n_train // 2))
    if n < 2:
        raise ValueError(f"need at least 4 training and 2 reference rows, got {n_train} and {len(ref)}")
    order = rng.permutation(n_train)
    a, b = scale(order[:n]), scale(order[n : 2 * n])
    ref = ref[rng.permutation(len(ref))[:n]]
    as_t = lambda m: torch.as_tensor(m, dtype=torch.float32)  # noqa: E731
    diameter = diameter_bound(as_t(np.vstack([a, b, ref])), as_t(a))
    ones = torch.ones(n)
    to_a = SinkhornToReference(as_t(a), normalize=True, diameter=diameter, blur=0.1)
    with torch.no_grad():
        d_ref, d_train = float(to_a(ones, as_t(ref))), float(to_a(ones, as_t(b)))
    ratio = d_ref / d_train if d_train > 0 else float("inf")
    return {"reference_distance": d_ref, "train_distance": d_train, "reference_distance_ratio": ratio}
