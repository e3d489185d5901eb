"""Noise injection for benchmarks, tests and demos (the paper's protocol, via OpenDataVal).

Each function returns a corrupted copy and the positions it corrupted; the
inputs are never modified.
"""

from __future__ import annotations

import numpy as np

NOISE_KINDS: tuple[str, ...] = ("labels", "features", "mixed")
#: Regression label noise: ``"mix"`` (the paper's, OpenDataVal's ``mix_labels``; default) or ``"permute"``.
REGRESSION_LABEL_NOISE: tuple[str, ...] = ("mix", "permute")


def _choose(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    return np.sort(rng.choice(n, size=int(round(rate * n)), replace=False))


def flip_labels(y: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give each row in ``rows`` a different class, drawn uniformly from the other classes."""
    y = np.asarray(y).copy()
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("flip_labels needs at least 2 classes")
    for i in rows:
        others = classes[classes != y[i]]
        y[i] = others[rng.integers(len(others))]
    return y


def mix_targets(y: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Regression label noise as the paper's (OpenDataVal's ``mix_labels``): each row in ``rows``
    gets a *different* value, drawn uniformly from the distinct values of ``y`` other than its own.

    OpenDataVal takes the sorted distinct values of the targets, and moves each
    chosen row's position in them forward by a uniform shift in 1..K-1 (modulo
    K). So no chosen row keeps its value, and a value shared by many rows is as
    likely as a rare one. Needs at least 2 distinct values.
    """
    y = np.asarray(y, dtype=np.float64).copy()
    values, position = np.unique(y, return_inverse=True)
    if len(values) < 2:
        raise ValueError("mix_targets needs at least 2 distinct target values")
    shift = rng.integers(1, len(values), size=len(rows))  # 1..K-1
    y[rows] = values[(position[rows] + shift) % len(values)]
    return y


def permute_targets(y: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Regression label noise, variant ``"permute"``: the targets of ``rows`` permuted among themselves
    (a row may keep its value, or get a close one: weaker than the paper's :func:`mix_targets`)."""
    y = np.asarray(y, dtype=np.float64).copy()
    y[rows] = y[rng.permutation(rows)]
    return y


def gaussian_features(X: np.ndarray, rows: np.ndarray, rng: np.random.Generator, *, scale: float = 1.0) -> np.ndarray:
    """Add N(0, scale^2) to every feature of ``rows`` (features assumed standardised)."""
    X = np.asarray(X, dtype=np.float64).copy()
    X[rows] += rng.normal(0.0, scale, size=(len(rows), X.shape[1]))
    return X


def add_noise(
    X: np.ndarray,
    y: np.ndarray,
    *,
    kind: str,
    rate: float,
    task: str,
    rng: np.random.Generator,
    regression_labels: str = "mix",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt a fraction ``rate`` of the rows.

    Args:
        kind: ``"labels"``, ``"features"`` or ``"mixed"`` (half of the chosen rows
            get label noise, the other half feature noise).
        task: ``"classification"`` (labels flipped to another class) or
            ``"regression"`` (see ``regression_labels``).
        regression_labels: ``"mix"`` (default, the paper's: each chosen target replaced by a
            different distinct target value, :func:`mix_targets`) or ``"permute"`` (the targets
            of the chosen rows permuted among them, :func:`permute_targets`).

    Returns:
        (X_noisy, y_noisy, rows, kinds): the corrupted copies, the sorted
        corrupted positions, and per corrupted row ``"labels"`` or ``"features"``.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {list(NOISE_KINDS)}, got {kind!r}")
    if regression_labels not in REGRESSION_LABEL_NOISE:
        raise ValueError(f"regression_labels must be one of {list(REGRESSION_LABEL_NOISE)}, got {regression_labels!r}")
    rows = _choose(len(X), rate, rng)
    if kind == "labels":
        label_rows, feature_rows = rows, rows[:0]
    elif kind == "features":
        label_rows, feature_rows = rows[:0], rows
    else:
        shuffled = rng.permutation(rows)
        half = len(rows) // 2
        label_rows, feature_rows = np.sort(shuffled[:half]), np.sort(shuffled[half:])
    relabel = flip_labels if task == "classification" else {"mix": mix_targets, "permute": permute_targets}[regression_labels]
    y_noisy = relabel(y, label_rows, rng) if len(label_rows) else np.asarray(y).copy()
    X_noisy = gaussian_features(X, feature_rows, rng) if len(feature_rows) else np.asarray(X, dtype=np.float64).copy()
    kinds = np.where(np.isin(rows, label_rows), "labels", "features")
    return X_noisy, y_noisy, rows, kinds
