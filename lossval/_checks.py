"""Input checks, in one place, with messages that name the argument and the bad value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lossval._types import TASKS, Features, Target


def check_task(task: Any) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    return task


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, positive: bool = True, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = np.isfinite(value) and (not positive or value > 0 or (allow_zero and value == 0))
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound if positive else ''}, got {value!r}".rstrip())
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_hidden_layers(value: Any) -> tuple[int, ...]:
    try:
        widths = tuple(value)
    except TypeError:
        widths = None
    if widths is None or not all(
        isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(f"hidden_layers must be a tuple of positive integers, got {value!r}")
    return tuple(int(w) for w in widths)


def as_features(X: Features, name: str) -> tuple[np.ndarray, pd.Index, list[str] | None]:
    """Return ``X`` as a float64 (N, D) array, with its row index and column names.

    Raises:
        ValueError: ``X`` is not 2-D, has fewer than 2 rows or no column, has
            non-numeric columns, or holds NaN or inf.
    """
    if isinstance(X, pd.DataFrame):
        if X.columns.duplicated().any():
            dup = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
            raise ValueError(f"{name} has duplicated column names: {dup}")
        bad = [str(c) for c, t in X.dtypes.items() if not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)]
        if bad:
            raise ValueError(f"{name} must hold numeric features only; non-numeric columns: {bad}")
        index, columns = X.index, [str(c) for c in X.columns]
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(X)
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must hold numeric features only, got an array of dtype {arr.dtype}")
        values, columns = arr.astype(np.float64), None
        index = pd.RangeIndex(len(values)) if values.ndim >= 1 else pd.RangeIndex(0)
    if values.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, features), got shape {values.shape}")
    if values.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 rows, got {values.shape[0]}")
    if values.shape[1] == 0:
        raise ValueError(f"{name} has no feature column")
    bad_rows = ~np.isfinite(values).all(axis=1)
    if bad_rows.any():
        first = list(index[bad_rows][:5])
        raise ValueError(
            f"{name} contains NaN or inf in {int(bad_rows.sum())} row(s) (first: {first}); "
            "drop or impute them first"
        )
    return values, index, columns


def as_target(y: Target, name: str, *, task: str, n_rows: int, rows_name: str) -> np.ndarray:
    """Return ``y`` as a 1-D array, checked against the task and the row count."""
    arr = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if len(arr) != n_rows:
        raise ValueError(f"{name} has {len(arr)} values but {rows_name} has {n_rows} rows")
    if task == "regression":
        if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
            raise ValueError(f"{name} must be numeric for task='regression', got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        bad = ~np.isfinite(arr)
    else:
        bad = pd.isna(arr)
        if arr.dtype.kind == "f":
            bad |= ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} contains {int(bad.sum())} missing, NaN or inf value(s) (first positions: {np.flatnonzero(bad)[:5].tolist()})"
        )
    return arr
