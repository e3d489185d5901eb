"""Missing feature cells: fill them from the training rows, and say where they were.

:class:`Imputer` is fitted on the *training* rows only: a numeric column is
filled with its training median, a categorical or boolean column with its
most frequent training value (ties: the smallest as text). Every column that
has a missing cell among the training rows also gets a missing-indicator
feature ``<column>__missing`` (boolean, True where the cell was missing), so
the model can still tell an imputed cell from an observed one. The same
fitted imputer fills the reference and test rows.

Pure pandas; no row is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re

import numpy as np
import pandas as pd

from lossval.tabular import column_kind

INDICATOR_SUFFIX = "__missing"
_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- /]")


@dataclass(frozen=True)
class Imputer:
    """Fill values per column, and the columns that get a missing indicator.

    Attributes:
        fill: column -> the value missing cells get (median or most frequent level).
        indicators: columns with at least one missing training cell (each adds ``<column>__missing``).
    """

    fill: Mapping[str, Any]
    indicators: tuple[str, ...]

    @classmethod
    def fit(cls, train: pd.DataFrame, *, columns: Sequence[str]) -> Imputer:
        """Fit on the training rows: ``columns`` are the feature columns to impute.

        Every column gets a fill value (so a column complete in training can still be filled
        in the reference or test rows); only columns with a missing training cell get an indicator.

        Raises:
            ValueError: a column is missing from ``train``, has no observed value, or its
                indicator name is already a column.
        """
        absent = [c for c in columns if c not in train.columns]
        if absent:
            raise ValueError(f"columns {absent} are not in the training rows")
        fill: dict[str, Any] = {}
        for c in columns:
            observed = train[c].dropna()
            if observed.empty:
                raise ValueError(f"column {c!r} has no observed value in the training rows: nothing to impute from")
            if column_kind(observed) == "numeric":
                fill[c] = float(np.median(observed.to_numpy(np.float64)))
            else:
                counts = observed.value_counts()
                fill[c] = min(counts.index[counts == counts.max()], key=str)
        indicators = tuple(c for c in columns if train[c].isna().any())
        taken = [c + INDICATOR_SUFFIX for c in indicators if c + INDICATOR_SUFFIX in train.columns]
        if taken:
            raise ValueError(f"cannot add the missing indicator(s) {taken}: a column already has that name")
        return cls(fill=fill, indicators=indicators)

    def transform(self, frame: pd.DataFrame, *, columns: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int]]:
        """Fill ``frame``'s missing cells in ``columns``; add the indicators after the last of ``columns``.

        Returns:
            The filled frame (same rows and index, indicator columns inserted) and
            ``{column: cells filled}`` for every column in ``columns``.
        """
        out = frame.copy(deep=False)  # copy-on-write (pandas 3): filled columns are replaced, the caller's frame is untouched
        counts = {c: int(frame[c].isna().sum()) for c in columns}
        for c in columns:
            out[c] = _filled(frame[c], self.fill[c]) if counts[c] else _settled(frame[c])
        position = max((list(out.columns).index(c) for c in columns), default=len(out.columns) - 1) + 1
        for offset, c in enumerate(self.indicators):
            out.insert(position + offset, f"{c}{INDICATOR_SUFFIX}", frame[c].isna().to_numpy())
        return out, counts


def _settled(series: pd.Series) -> pd.Series:
    """A nullable boolean column without missing cells becomes plain ``bool``."""
    return series.astype(bool) if pd.api.types.is_bool_dtype(series.dtype) else series


def _filled(series: pd.Series, value: Any) -> pd.Series:
    filled = series.fillna(value)
    if pd.api.types.is_bool_dtype(series.dtype):
        return filled.astype(bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return filled.astype(np.float64)
    return filled


def impute_splits(
    train: pd.DataFrame, others: Mapping[str, pd.DataFrame], *, columns: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, int]]:
    """Fit on ``train``; fill ``train`` and every frame in ``others`` (reference, test ...) with it.

    Returns:
        (filled train, {name: filled frame}, {column: cells filled over all frames}).
    """
    imputer = Imputer.fit(train, columns=columns)
    filled_train, total = imputer.transform(train, columns=columns)
    filled = {}
    for name, frame in others.items():
        filled[name], counts = imputer.transform(frame, columns=columns)
        total = {c: total[c] + counts[c] for c in columns}
    return filled_train, filled, total


def imputed_metrics(counts: Mapping[str, int]) -> dict[str, int]:
    """``imputed_cells`` (total) and ``imputed_cells.<column>`` for every column with a filled cell.

    Characters MLflow does not allow in a metric name become ``_``.
    """
    per_column = {"imputed_cells." + _METRIC_UNSAFE.sub("_", str(c)): int(n) for c, n in counts.items() if n}
    return {"imputed_cells": int(sum(counts.values())), **per_column}
