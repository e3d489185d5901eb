"""Mixed-type feature frames: numeric, categorical and boolean columns as one float design matrix.

:class:`TabularEncoder` is fitted on the training rows and turns a DataFrame
into the (N, D') matrix the network and the OT term see:

* **numeric** columns (int, float) pass through and are standardised with the
  training mean and standard deviation (:class:`~lossval.preprocessing.Standardizer`);
* **boolean** columns (``bool`` / ``boolean``) become one 0/1 column;
* **categorical** columns (``category``, ``object``, ``string``: strings or
  integer codes) are one-hot encoded, one column per level, entries
  ``0`` or ``1 / sqrt(2)``. At most ``max_levels`` columns per feature: when a
  column has more levels, the ``max_levels - 1`` most frequent keep their own
  column and the rest pool into one level named ``other`` (a level already
  named ``other`` joins the pool). A level never seen in training (in new
  rows or in the reference set) maps to ``other`` when the column has that
  level, else to all zeros.

**Ground cost.** The OT term's cost is the squared Euclidean distance between
these points. Changing one numeric feature by one training standard
deviation moves a row by squared distance 1; so does flipping a boolean (0 to
1) and so does switching a categorical cell to another level (two one-hot
entries change by ``1 / sqrt(2)`` each: ``2 * (1/sqrt(2))**2 = 1``). A
category change therefore weighs exactly as much as a one-standard-deviation
numeric change, whatever the number of levels. (A level unseen in training,
encoded as zeros, is at squared distance 1/2 from every known level.)

Pure pandas/numpy; the fitted state is plain lists and strings
(:meth:`TabularEncoder.state`), so it travels with a model saved for
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lossval.preprocessing import Standardizer

KINDS: tuple[str, ...] = ("numeric", "categorical", "boolean")
OTHER = "other"
#: Default cap on one-hot columns per categorical feature (rarer levels pool into ``other``).
MAX_LEVELS = 32
#: The value of a present level in its one-hot column: a category change costs squared distance 1.
ONE_HOT = 2**-0.5


def column_kind(series: pd.Series) -> str:
    """The kind of a feature column from its dtype: ``numeric``, ``boolean`` or ``categorical``.

    Raises:
        ValueError: a datetime or timedelta column (not a feature: drop or convert it).
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    raise ValueError(
        f"column {series.name!r} has dtype {dtype}, which is not a feature kind {list(KINDS)}: drop it or convert it"
    )


def is_mixed(X: Any) -> bool:
    """True when ``X`` is a DataFrame with at least one boolean or non-numeric column (needs the encoder)."""
    return isinstance(X, pd.DataFrame) and any(
        not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in X.dtypes
    )


def _levels(series: pd.Series, max_levels: int) -> list[str]:
    counts = series.astype(str).value_counts(sort=False)
    order = sorted(counts.index, key=lambda level: (-counts[level], level))
    if len(order) <= max_levels:
        return sorted(order)
    kept = [level for level in order if level != OTHER][: max_levels - 1]
    return sorted(kept) + [OTHER]


@dataclass(frozen=True)
class TabularEncoder:
    """The fitted encoding of a mixed-type frame (see the module docstring).

    Attributes:
        columns: the input columns, in order.
        kinds: column -> ``numeric`` | ``categorical`` | ``boolean``.
        levels: categorical column -> its one-hot levels (``other`` last when pooled).
        scaler: the affine map of the design matrix: numeric columns standardised, boolean
            columns as is (mean 0, scale 1), one-hot columns to ``{0, 1/sqrt(2)}`` (scale ``sqrt(2)``).
    """

    columns: tuple[str, ...]
    kinds: Mapping[str, str]
    levels: Mapping[str, tuple[str, ...]]
    scaler: Standardizer

    @classmethod
    def fit(cls, X: pd.DataFrame, *, max_levels: int = MAX_LEVELS, name: str = "X_train") -> TabularEncoder:
        """Fit kinds, levels (capped at ``max_levels`` per column) and the numeric scaling on the training rows."""
        if max_levels < 2:
            raise ValueError(f"max_levels must be >= 2, got {max_levels!r}")
        X = _check_frame(X, name)
        kinds = {c: column_kind(X[c]) for c in X.columns}
        _check_missing(X, name)
        levels = {c: tuple(_levels(X[c], max_levels)) for c, k in kinds.items() if k == "categorical"}
        encoder = cls(columns=tuple(X.columns), kinds=kinds, levels=levels, scaler=Standardizer(np.zeros(0), np.zeros(0)))
        design = encoder.design(X, name=name)
        numeric = np.array([encoder._source_kind(c) == "numeric" for c in design.columns])
        mean, scale = np.zeros(design.shape[1]), np.ones(design.shape[1])
        if numeric.any():
            fitted = Standardizer.fit(design.loc[:, numeric].to_numpy(np.float64))
            mean[numeric], scale[numeric] = fitted.mean, fitted.scale
        scale[np.array([encoder._source_kind(c) == "categorical" for c in design.columns])] = 1 / ONE_HOT
        return cls(columns=encoder.columns, kinds=kinds, levels=levels, scaler=Standardizer(mean=mean, scale=scale))

    @property
    def design_columns(self) -> list[str]:
        """Names of the design matrix's columns: numeric and boolean columns as is, ``column=level`` per level."""
        out: list[str] = []
        for c in self.columns:
            out.extend([f"{c}={level}" for level in self.levels[c]] if self.kinds[c] == "categorical" else [c])
        return out

    def _source_kind(self, design_column: str) -> str:
        if design_column in self.kinds:
            return self.kinds[design_column]
        return "categorical"

    def design(self, X: pd.DataFrame, *, name: str = "X") -> pd.DataFrame:
        """The unscaled design matrix (N, D') of ``X``: numeric values, booleans 0/1, one-hot 0/1.

        Raises:
            ValueError: a training column is missing, a value is missing, or a numeric column is not numeric.
        """
        X = _check_frame(X, name)
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"{name} lacks the training feature columns {missing}")
        X = X[list(self.columns)]
        _check_missing(X, name)
        parts: list[np.ndarray] = []
        for c in self.columns:
            kind = self.kinds[c]
            if kind == "categorical":
                levels = self.levels[c]
                lookup = {level: i for i, level in enumerate(levels)}
                fallback = lookup.get(OTHER, -1)
                codes = np.fromiter((lookup.get(v, fallback) for v in X[c].astype(str)), dtype=np.int64, count=len(X))
                one_hot = np.zeros((len(X), len(levels)))
                known = codes >= 0
                one_hot[np.flatnonzero(known), codes[known]] = 1.0
                parts.append(one_hot)
            elif kind == "boolean":
                parts.append(_as_bool(X[c], name).to_numpy(np.float64)[:, None])
            else:
                if not pd.api.types.is_numeric_dtype(X[c].dtype) or pd.api.types.is_bool_dtype(X[c].dtype):
                    raise ValueError(f"{name} column {c!r} must be numeric (as in training), got dtype {X[c].dtype}")
                parts.append(X[c].to_numpy(np.float64)[:, None])
        matrix = np.hstack(parts) if parts else np.zeros((len(X), 0))
        return pd.DataFrame(matrix, index=X.index, columns=self.design_columns)

    def transform(self, X: pd.DataFrame, *, name: str = "X") -> np.ndarray:
        """The scaled design matrix (N, D'), float64: what the network and the OT term see."""
        return self.scaler.transform(self.design(X, name=name).to_numpy(np.float64))

    def state(self) -> dict[str, Any]:
        """Plain data (lists, strings) that :meth:`from_state` reads back; the scaler is not included."""
        return {"columns": list(self.columns), "kinds": dict(self.kinds), "levels": {c: list(v) for c, v in self.levels.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TabularEncoder:
        """An encoder that computes :meth:`design` (not :meth:`transform`) from :meth:`state`'s output."""
        return cls(
            columns=tuple(state["columns"]), kinds=dict(state["kinds"]),
            levels={c: tuple(v) for c, v in state["levels"].items()}, scaler=Standardizer(np.zeros(0), np.zeros(0)),
        )  # fmt: skip


def _check_frame(X: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"{name} must be a DataFrame to hold categorical or boolean columns, got {type(X).__name__}")
    if X.columns.duplicated().any():
        raise ValueError(f"{name} has duplicated column names: {sorted({str(c) for c in X.columns[X.columns.duplicated()]})}")
    return X.rename(columns=str)


def _check_missing(X: pd.DataFrame, name: str) -> None:
    missing = X.isna()
    if missing.to_numpy().any():
        counts = {c: int(n) for c, n in missing.sum().items() if n}
        raise ValueError(f"{name} has missing values {counts} (column: cells); drop or impute them first (lossval.imputation)")


def _as_bool(series: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(bool)
    values = pd.to_numeric(series, errors="coerce")
    if values.isna().any() or not values.isin([0, 1]).all():
        raise ValueError(f"{name} column {series.name!r} must be boolean (as in training), got dtype {series.dtype}")
    return values.astype(bool)
