"""Column kinds of a raw table, and the pandera schema built from ``params.yaml``'s ``validate`` section.

Every column of a table read as text is one of:

* ``numeric``: at least 90 % of its non-missing cells parse as numbers (the rest
  are quarantined as ``schema:not_numeric:<column>``), unless they are row
  numbers (consecutive integers, each once: an id, left out);
* ``boolean``: every non-missing cell is one of true/false, yes/no, t/f (any case);
* ``categorical``: strings or integer codes, with optional allowed ``levels``;
* ``ignore``: not a feature. Columns that look like ids or free text (more than
  20 distinct values and more than half the non-missing cells distinct) or
  like dates (90 % parse as dates) are detected as such and left out with a
  warning, unless declared in ``validate.columns`` or listed in ``validate.features``.

``validate.columns`` declares a column's ``kind`` and, optionally, its
``levels``, its ``missing`` policy (``impute`` | ``quarantine``; default
``validate.missing``; the target is always ``quarantine``) and what an unseen
level does (``unknown_level``: ``quarantine`` with reason
``schema:unknown_level:<column>``, or ``other``: the cell becomes the level
``other``; default ``validate.unknown_level``). Undeclared columns are detected.

The policies travel in each pandera column's ``metadata`` (``kind``,
``missing``, ``unknown_level``), which :func:`schemas.dataset.validate_rows` reads
to coerce the raw text before validating.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from lossval.tabular import OTHER

TRUE, FALSE = ("true", "yes", "t"), ("false", "no", "f")
NUMERIC_SHARE = 0.9  # share of non-missing cells that must parse as numbers for a numeric column
DATE_SHARE = 0.9
MIN_DISTINCT_ID = 20  # an id / free-text column has more distinct values than this ...
DISTINCT_SHARE_ID = 0.5  # ... and than this share of its non-missing cells

_FINITE = pa.Check(lambda s: np.isfinite(s.astype(float)), element_wise=False, name="finite")


def detect_kind(raw: pd.Series) -> tuple[str, str]:
    """The kind of a column read as text, and why (for a warning when it is left out).

    Returns:
        (``numeric`` | ``boolean`` | ``categorical`` | ``ignore``, a short explanation).
    """
    values = raw.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return "ignore", "has no value at all"
    parsed = pd.to_numeric(values, errors="coerce")
    if parsed.notna().mean() >= NUMERIC_SHARE:
        numbers = parsed.dropna().to_numpy()
        if len(numbers) > MIN_DISTINCT_ID and (numbers == numbers.round()).all():
            ordered = np.sort(numbers)
            if (np.diff(ordered) == 1).all():
                return "ignore", f"looks like row numbers ({int(ordered[0])} to {int(ordered[-1])}, each once)"
        return "numeric", "numbers"
    lower = values.str.lower()
    if lower.isin(TRUE + FALSE).all():
        return "boolean", "true/false values"
    distinct = values.nunique()
    if distinct > MIN_DISTINCT_ID and distinct > DISTINCT_SHARE_ID * len(values):
        if _dates(values).notna().mean() >= DATE_SHARE:
            return "ignore", "looks like dates"
        return "ignore", f"looks like ids or free text ({distinct} distinct values in {len(values)} cells)"
    if values.str.contains(r"\d[-/:]\d").mean() >= DATE_SHARE and _dates(values).notna().mean() >= DATE_SHARE:
        return "ignore", "looks like dates"
    return "categorical", "text"


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", format="mixed")


def parse_boolean(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(nullable boolean values, mask of cells present but not a boolean) of a text column."""
    text = raw.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    out[text.isin(TRUE + ("1", "1.0")).fillna(False).to_numpy(bool)] = True
    out[text.isin(FALSE + ("0", "0.0")).fillna(False).to_numpy(bool)] = False
    bad = out.isna() & raw.notna() & (text != "").fillna(False)
    return out, bad.astype(bool)


def map_unknown(raw: pd.Series, levels: list[str]) -> pd.Series:
    """Cells whose level is not in ``levels`` become ``other`` (missing cells stay missing)."""
    known = raw.isna() | raw.astype(str).isin(levels)
    return raw.where(known, OTHER)


def column_rules(
    frame: pd.DataFrame, *, target: str, features: list[str] | None, declared: Mapping[str, Any], id_column: str | None,
    reserved: tuple[str, ...] = (),
) -> tuple[dict[str, str], dict[str, str]]:
    """The kind of every feature column, and the columns left out with the reason.

    Args:
        frame: the raw table (text, as read).
        features: the feature columns to use (``validate.features``); None = every column
            but the target, the id column and ``reserved`` ones, minus detected non-features.
        declared: ``validate.columns`` (column -> object with a ``kind``).

    Returns:
        ({feature column: kind}, {left-out column: why}).
    """
    candidates = features if features is not None else [
        c for c in frame.columns if c not in (target, id_column, *reserved)
    ]
    kinds: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for c in candidates:
        if c in declared:
            kind = declared[c].kind
            why = "declared kind: ignore"
        else:
            kind, why = detect_kind(frame[c]) if c in frame.columns else ("numeric", "")
            if kind == "ignore" and features is not None:
                kind = "categorical"  # listed as a feature: used, whatever it looks like
        if kind == "ignore":
            left_out[c] = why
        else:
            kinds[c] = kind
    return kinds, left_out


def table_schema(
    kinds: Mapping[str, str], *, target: str, task: str, classes: list | None, ranges: Mapping[str, Any],
    declared: Mapping[str, Any], missing: str, unknown_level: str, left_out: Mapping[str, str] | None = None,
) -> pa.DataFrameSchema:
    """The pandera schema of the validated (coerced) frame: one column per feature, plus the target.

    Numeric columns are floats (finite, within ``ranges``); boolean columns nullable
    booleans; categorical columns text, checked against their ``levels`` under
    ``unknown_level: quarantine``. Columns under the ``impute`` policy are nullable.
    """
    columns: dict[str, pa.Column] = {}
    for name, kind in kinds.items():
        rule = declared.get(name)
        policy = getattr(rule, "missing", None) or missing
        unknown = getattr(rule, "unknown_level", None) or unknown_level
        levels = [str(v) for v in rule.levels] if rule is not None and rule.levels is not None else None
        meta = {"kind": kind, "missing": policy, "unknown_level": unknown, "levels": levels}
        checks: list[pa.Check] = []
        if kind == "numeric":
            checks.append(_FINITE)
            if name in ranges:
                checks.append(pa.Check.in_range(*ranges[name]))
            dtype: Any = float
        elif kind == "boolean":
            dtype = "boolean"
        else:
            dtype = None
            if levels is not None and unknown == "quarantine":
                allowed = set(levels)
                checks.append(pa.Check(lambda s, a=allowed: s.astype(str).isin(a), element_wise=False, name="unknown_level"))
        columns[name] = pa.Column(dtype, checks=checks, nullable=policy == "impute", metadata=meta)
    target_checks = [pa.Check.isin([str(c) for c in classes])] if classes is not None and task == "classification" else []
    if task == "regression":
        target_checks.append(_FINITE)
        if target in ranges:
            target_checks.append(pa.Check.in_range(*ranges[target]))
    columns[target] = pa.Column(float if task == "regression" else None, checks=target_checks, nullable=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False, name="params", metadata={"left_out": dict(left_out or {})})
