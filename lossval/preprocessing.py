"""Standardisation and label coding, fitted on the training rows only.

The estimators standardise features (and regression targets) internally with
statistics of the *training* rows, so callers pass raw, unscaled data. The
statistics are computed in float64 after dividing each column by its largest
magnitude, so columns with huge values (1e300) neither overflow nor lose the
other columns' precision. Constant columns get a scale of 1 (they become 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """Per-column affine map ``(x - mean) / scale`` fitted on training rows."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardizer:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        magnitude = np.abs(values).max(axis=0)
        magnitude[~(magnitude > 0)] = 1.0
        scaled = values / magnitude  # (N, D), every entry in [-1, 1]
        std = scaled.std(axis=0)
        std[~(std > 1e-12)] = 1.0
        return cls(mean=scaled.mean(axis=0) * magnitude, scale=std * magnitude)

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        flat = values.ndim == 1
        out = (values.reshape(len(values), -1) - self.mean) / self.scale
        return out[:, 0] if flat else out

    def inverse(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        flat = values.ndim == 1
        out = values.reshape(len(values), -1) * self.scale + self.mean
        return out[:, 0] if flat else out


@dataclass(frozen=True)
class LabelCodec:
    """Maps class labels of any hashable type to codes 0..K-1 and back."""

    classes: np.ndarray  # (K,) the training labels, sorted

    @classmethod
    def fit(cls, labels: np.ndarray) -> LabelCodec:
        try:
            classes = np.unique(labels)
        except TypeError:  # mixed, unorderable label types: keep first-seen order
            classes = np.array(list(dict.fromkeys(labels.tolist())), dtype=object)
        return cls(classes=classes)

    def encode(self, labels: np.ndarray, *, name: str = "y") -> np.ndarray:
        lookup = {label: code for code, label in enumerate(self.classes.tolist())}
        codes = np.fromiter((lookup.get(v, -1) for v in np.asarray(labels).tolist()), dtype=np.int64, count=len(labels))
        if (codes < 0).any():
            unseen = sorted({str(v) for v, c in zip(np.asarray(labels).tolist(), codes) if c < 0})
            raise ValueError(
                f"{name} has classes not present in the training labels: {unseen[:10]} "
                f"(training classes: {[str(c) for c in self.classes.tolist()]})"
            )
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.classes[np.asarray(codes, dtype=np.int64)]
