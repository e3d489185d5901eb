"""pandera schemas for the input data, and row-level validation that never drops a row silently.

Two ways to get a schema:

* a ``DataFrameModel`` written for a known dataset (``ElectricityExample``,
  the bundled example), chosen with ``validate.schema_name``;
* ``validate.schema_name: params``: a schema built from ``params.yaml``
  (feature columns and their kinds, allowed classes and levels, ranges,
  missing-cell policies; :mod:`schemas.columns`) for any other dataset.

:func:`validate_rows` checks the file as a whole first (columns present,
numeric columns numeric, rows left) and raises :class:`DatasetError` with one
message naming the problem. Otherwise it runs pandera with ``lazy=True`` so
every row-level failure is collected, and returns the valid rows plus a
failure table ``row_id, reason`` where a reason reads
``schema:<check>:<column>`` (``schema:not_nullable:nswprice``,
``schema:not_numeric:day``, ``schema:isin:target``, ``schema:duplicate_id``,
``schema:missing_id``, ``schema:extra_fields``...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors

from lossval.rows import ROW_ID
from schemas.columns import column_rules, map_unknown, parse_boolean, table_schema


class ElectricityExample(pa.DataFrameModel):
    """The bundled Elec2 sample (data/example/electricity.csv): min-max scaled prices and demands."""

    date: float = pa.Field(ge=0, le=1)
    day: float = pa.Field(isin=[1, 2, 3, 4, 5, 6, 7])  # weekday code
    period: float = pa.Field(ge=0, le=1)
    nswprice: float = pa.Field(ge=0, le=1)
    nswdemand: float = pa.Field(ge=0, le=1)
    vicprice: float = pa.Field(ge=0, le=1)
    vicdemand: float = pa.Field(ge=0, le=1)
    transfer: float = pa.Field(ge=0, le=1)
    target: str = pa.Field(isin=["DOWN", "UP"])

    class Config:
        coerce = False  # types are coerced beforehand, so that failures name the row
        strict = False  # extra columns are reported, not fatal


MODELS: dict[str, type[pa.DataFrameModel]] = {"electricity_example": ElectricityExample}


class DatasetError(ValueError):
    """The dataset as a whole is unusable; nothing is written."""


@dataclass(frozen=True)
class ValidationResult:
    valid: pd.DataFrame  # rows that passed, with row_id, features coerced to float
    failures: pd.DataFrame  # row_id, reason (one row per failed input row)
    features: list[str]
    extra_columns: list[str]
    failure_cases: pd.DataFrame  # pandera's full table, kept for the record
    left_out: dict[str, str] = field(default_factory=dict)  # columns detected as non-features: why


def schema_from_params(frame: pd.DataFrame, *, params: Any, reserved: tuple[str, ...] = ()) -> pa.DataFrameSchema:
    """A schema for any dataset, from ``params.yaml``'s ``validate`` section (kinds: :mod:`schemas.columns`).

    ``frame`` is the raw table; undeclared columns get the kind detected from it.
    """
    base, cfg = params.base, params.validate_
    kinds, left_out = column_rules(
        frame, target=base.target, features=cfg.features, declared=cfg.columns, id_column=params.ingest.id_column, reserved=reserved,
    )  # fmt: skip
    return table_schema(
        kinds, target=base.target, task=base.task, classes=cfg.classes, ranges=cfg.ranges, declared=cfg.columns,
        missing=cfg.missing, unknown_level=cfg.unknown_level, left_out=left_out,
    )  # fmt: skip


def model_schema(name: str) -> pa.DataFrameSchema:
    try:
        return MODELS[name].to_schema()
    except KeyError as e:
        raise DatasetError(f"unknown validate.schema_name {name!r}; known: {sorted(MODELS)} or 'params'") from e


def _check_name(check: object) -> str:
    text = str(check)
    return re.split(r"[(\[]", text, maxsplit=1)[0].strip() or text


def validate_rows(
    frame: pd.DataFrame,
    *,
    schema: pa.DataFrameSchema,
    target: str,
    task: str,
    duplicate: pd.Series,
    id_column: str | None = None,
    extra_fields: pd.Series | None = None,
) -> ValidationResult:
    """Validate a raw frame (strings as read, plus ``row_id``) against ``schema``.

    Raises:
        DatasetError: the target or a feature column is missing, a numeric
            column holds no number at all, or no row passes.
    """
    columns = [str(c) for c in frame.columns if c != ROW_ID]
    if target not in columns:
        raise DatasetError(f"target column {target!r} not found; columns are {columns}")
    features = [c for c in schema.columns if c != target]
    missing = [c for c in features if c not in columns]
    if missing:
        raise DatasetError(f"feature column(s) {missing} not found; columns are {columns}")
    extra = [c for c in columns if c not in schema.columns and c != id_column]
    numeric = [c for c in features if _kind(schema, c) == "numeric"] + ([target] if task == "regression" else [])
    coerced = frame.copy(deep=False)  # copy-on-write (pandas 3): columns are replaced below, the caller's frame is untouched
    reasons: dict[object, list[str]] = {}
    for name in features:
        meta = schema.columns[name].metadata or {}
        if meta.get("kind") == "boolean":
            coerced[name], bad = parse_boolean(frame[name])
            for idx in frame.index[bad.to_numpy()]:
                reasons.setdefault(idx, []).append(f"schema:not_boolean:{name}")
        elif meta.get("kind") == "categorical":
            coerced[name] = frame[name].astype(str).str.strip().where(frame[name].notna(), None)
            if meta.get("levels") is not None and meta.get("unknown_level") == "other":
                coerced[name] = map_unknown(coerced[name], meta["levels"])
    for name in numeric:
        raw = frame[name]
        values = parse_numbers(raw)
        bad = values.isna() & raw.notna()
        if len(raw) and bad.all():
            example = raw[bad].iloc[0]
            raise DatasetError(f"column {name!r} is not numeric: no value parses as a number (e.g. {example!r})")
        for idx in raw.index[bad]:
            reasons.setdefault(idx, []).append(f"schema:not_numeric:{name}")
        coerced[name] = values.astype(float)
    for idx in frame.index[duplicate.to_numpy()]:
        reasons.setdefault(idx, []).append("schema:duplicate_id")
    if extra_fields is not None:  # a CSV row with more fields than the header: kept, quarantined
        for idx in frame.index[extra_fields.to_numpy(dtype=bool)]:
            reasons.setdefault(idx, []).append("schema:extra_fields")
    if id_column is not None and id_column in frame.columns:  # an empty id is not an id: its own reason
        for idx in frame.index[frame[id_column].isna().to_numpy()]:
            reasons.setdefault(idx, []).append("schema:missing_id")
    if task == "classification":  # labels compare as text: CSV and Parquet inputs agree
        coerced[target] = frame[target].astype(str).where(frame[target].notna(), None)
    failure_cases = pd.DataFrame(columns=["column", "check", "failure_case", "index"])
    try:
        schema.validate(coerced, lazy=True)
    except SchemaErrors as e:
        failure_cases = e.failure_cases
        file_level = failure_cases[failure_cases["index"].isna()]
        if not file_level.empty:
            first = file_level.iloc[0]
            raise DatasetError(f"dataset fails schema {schema.name or ''}: {first['check']} on column {first['column']!r}") from e
        for row in failure_cases.itertuples(index=False):
            found = reasons.setdefault(row.index, [])
            check = _check_name(row.check)
            if check == "not_nullable" and {f"schema:not_numeric:{row.column}", f"schema:not_boolean:{row.column}"} & set(found):
                continue  # the value was there but not a number: already said
            found.append(f"schema:{check}:{row.column}")
    failed = coerced.index.isin(list(reasons))
    valid = coerced.loc[~failed].copy()
    if valid.empty:
        sample = next(iter(reasons.values()))[0] if reasons else "?"
        raise DatasetError(f"no rows left: all {len(frame)} rows fail validation (e.g. {sample})")
    failures = pd.DataFrame(
        {ROW_ID: frame.loc[failed, ROW_ID].to_numpy(), "reason": [";".join(dict.fromkeys(reasons[i])) for i in frame.index[failed]]}
    )
    left_out = dict((schema.metadata or {}).get("left_out", {}))
    extra = [c for c in extra if c not in left_out]
    return ValidationResult(
        valid=valid, failures=failures, features=features, extra_columns=extra, failure_cases=failure_cases, left_out=left_out
    )


def parse_numbers(raw: pd.Series) -> pd.Series:
    """``pd.to_numeric(raw, errors="coerce").astype(float)``, about 10x faster on a column that parses whole.

    Arrow parses the column when every cell is a number (its parse is correctly rounded, as pandas'
    is); the zeros (their sign), the non-finite cells and the missing ones are then parsed by pandas
    itself, and a column with any cell Arrow refuses is parsed by pandas whole, so the result is the
    one ``pd.to_numeric`` gives (NaN = missing or not a number).
    """
    try:
        parsed = pc.cast(pyarrow.array(raw, from_pandas=True), pyarrow.float64()).to_numpy(zero_copy_only=False)
    except (pyarrow.ArrowException, TypeError, ValueError):
        return pd.to_numeric(raw, errors="coerce").astype(float)
    values = pd.Series(parsed, index=raw.index, dtype=float)
    odd = ~np.isfinite(parsed) | (parsed == 0)
    if odd.any():
        values[odd] = pd.to_numeric(raw[odd], errors="coerce").astype(float).to_numpy()
    return values


def _kind(schema: pa.DataFrameSchema, column: str) -> str:
    """A column's kind: from its metadata (``params`` schemas), else numeric (every DataFrameModel feature)."""
    return (schema.columns[column].metadata or {}).get("kind", "numeric")
