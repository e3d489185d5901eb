"""Reading a raw table and giving every row a stable id (pure pandas; no pipeline imports).

A row id is either the value of a user-named id column, or a content hash:
the first 16 hex digits of SHA-256 over the row's values as read from the
file (column order, ``\\x1f``-separated), so it does not depend on the row's
position and survives reordering and appends. Ids must be unique: the first
occurrence keeps its id, later occurrences get ``<id>~2``, ``<id>~3`` ... and
are reported as duplicates (the pipeline quarantines them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

ROW_ID = "row_id"
FORMATS = ("auto", "csv", "parquet")


class TableError(ValueError):
    """The file as a whole cannot be used (missing, unreadable, empty...); the message says why."""


def feature_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """The model's input columns of a pipeline frame: every column but the row id and the target."""
    return [c for c in frame.columns if c not in (ROW_ID, target)]


def read_table(path: str | Path, *, fmt: str = "auto") -> pd.DataFrame:
    """Read a CSV (optionally .gz) or Parquet file into a frame, every column as read.

    CSV columns are read as strings, so no value is lost or reinterpreted
    before validation; callers coerce types.

    Raises:
        TableError: missing file, unreadable/truncated/corrupt file, no header,
            no data rows, duplicated column names.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise TableError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if not path.is_file():
        raise TableError(f"input file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_csv(path)
    except TableError:
        raise
    except UnicodeDecodeError as e:
        raise TableError(f"cannot read {path.name}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except Exception as e:  # pandas/pyarrow raise many types for corrupt files
        raise TableError(f"cannot read {path.name} as {fmt}: {type(e).__name__}: {e}") from e
    if frame.empty:
        raise TableError(f"{path.name} has a header but no data rows" if len(frame.columns) else f"{path.name} is empty")
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, nrows=0, dtype=str, encoding="utf-8")
    except pd.errors.EmptyDataError as e:
        raise TableError(f"{path.name} is empty (no header row)") from e
    names = [str(c) for c in header.columns]
    mangled = [c for c in names if "." in c and c.rsplit(".", 1)[0] in names and c.rsplit(".", 1)[1].isdigit()]
    if mangled:
        raise TableError(f"{path.name} has duplicated column names: {sorted({c.rsplit('.', 1)[0] for c in mangled})}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8", on_bad_lines="error")
    if len(frame.columns) == 1 and len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        raise TableError(f"{path.name} has a single column {names[0]!r}: wrong delimiter? (expected commas)")
    return frame


def content_ids(frame: pd.DataFrame) -> pd.Series:
    """16-hex-digit SHA-256 of each row's values (as strings, in column order)."""
    columns = [frame[c].astype("string").fillna("\x00") for c in frame.columns]  # \x00 marks a missing value
    text = columns[0].str.cat(columns[1:], sep="\x1f") if len(columns) > 1 else columns[0]
    return pd.Series([hashlib.sha256(s.encode()).hexdigest()[:16] for s in text], index=frame.index, dtype=object)


def assign_row_ids(frame: pd.DataFrame, id_column: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Unique row ids and a duplicate mask, both aligned with ``frame``.

    Raises:
        TableError: ``id_column`` is not a column of the frame.
    """
    if id_column is not None:
        if id_column not in frame.columns:
            raise TableError(f"id column {id_column!r} not found; columns are {list(map(str, frame.columns))}")
        base = frame[id_column].astype(str).where(frame[id_column].notna(), "<missing>")
    else:
        base = content_ids(frame)
    occurrence = base.groupby(base).cumcount().to_numpy() + 1  # 1 for the first occurrence
    ids = np.where(occurrence == 1, base.to_numpy(), base.to_numpy() + "~" + occurrence.astype(str))
    return pd.Series(ids, index=frame.index, name=ROW_ID), pd.Series(occurrence > 1, index=frame.index)


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
