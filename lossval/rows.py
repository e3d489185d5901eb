"""Reading a raw table and giving every row a stable id (pure pandas; no pipeline imports).

A row id is either the value of a user-named id column, or a content hash:
the first 16 hex digits of SHA-256 over the row's values as read from the
file (column order, ``\\x1f``-separated), so it does not depend on the row's
position and survives reordering and appends. Ids are unique by construction,
whatever the input: every first occurrence keeps its value, and each later
occurrence gets the first free ``<id>~N`` (N = 2, 3, ...; an id the input
already uses is skipped, so ``a, a, a~2`` become ``a, a~3, a~2``) and is reported
as a duplicate (the pipeline quarantines it). A row whose id column is empty gets
``<missing>~<content hash>`` and is reported as such (the schema step
quarantines it with ``schema:missing_id``), never as an id.

Integer ids are read exactly: a Parquet integer column with nulls stays
integer (``1``, not ``1.0``; 2^53 + 1 stays distinct from 2^53).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_ID = "row_id"
FORMATS = ("auto", "csv", "parquet")
MISSING_ID = "<missing>"
# Columns the pipeline adds to its tables (ids, the quarantine's head, ingestion's flag): an input
# column with one of these names would be overwritten or break a merge, so such a file is refused.
RESERVED = (ROW_ID, "reason", "value", "rule", "stage", "_duplicate", "_extra_fields")


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
    frame, _, extra_fields = read_table_hashed(path, fmt=fmt)
    if extra_fields.any():
        raise TableError(f"{Path(path).name}: {int(extra_fields.sum())} row(s) have more fields than the header (e.g. data row {int(extra_fields.argmax()) + 1})")
    return frame


_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}


def read_table_hashed(path: str | Path, *, fmt: str = "auto") -> tuple[pd.DataFrame, str, np.ndarray]:
    """:func:`read_table`, plus the SHA-256 of exactly the bytes parsed (read once, into memory, so a
    file still being written cannot give a hash of other bytes than the rows), and a mask of the CSV
    rows that had more fields than the header: they are kept with their first fields (the caller
    quarantines them) instead of failing the whole file."""
    path = Path(path)
    if fmt not in FORMATS:
        raise TableError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if not path.is_file():
        raise TableError(f"input file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    data = path.read_bytes()
    extra_fields = None
    try:
        if fmt == "parquet":  # integer columns with nulls stay exact Python ints, not floats
            frame = pq.read_table(io.BytesIO(data)).to_pandas(integer_object_nulls=True)
        else:
            frame, extra_fields = _read_csv(data, path.name, compression=_COMPRESSION.get(path.suffix.lower()))
    except TableError:
        raise
    except UnicodeDecodeError as e:
        raise TableError(f"cannot read {path.name}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except Exception as e:  # pandas/pyarrow raise many types for corrupt files
        raise TableError(f"cannot read {path.name} as {fmt}: {type(e).__name__}: {e}") from e
    if frame.empty:
        raise TableError(f"{path.name} has a header but no data rows" if len(frame.columns) else f"{path.name} is empty")
    return frame, hashlib.sha256(data).hexdigest(), np.zeros(len(frame), dtype=bool) if extra_fields is None else extra_fields


def _read_csv(data: bytes, name: str, *, compression: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    options = {"dtype": str, "encoding": "utf-8", "compression": compression}
    try:
        header = pd.read_csv(io.BytesIO(data), nrows=0, **options)
    except pd.errors.EmptyDataError as e:
        raise TableError(f"{name} is empty (no header row)") from e
    names = [str(c) for c in header.columns]
    # the header as written (pandas renames a repeated `price` to `price.1`, which a real column may also be called)
    written = pd.read_csv(io.BytesIO(data), header=None, nrows=1, keep_default_na=False, **options).iloc[0].astype(str).tolist()
    repeated = sorted({c for c in written if written.count(c) > 1})
    if repeated:
        raise TableError(f"{name} has duplicated column names: {repeated}")
    options.update(keep_default_na=False, na_values=[""])
    extra = np.zeros(0, dtype=bool)
    try:
        frame = pd.read_csv(io.BytesIO(data), on_bad_lines="error", **options)
    except pd.errors.ParserError as e:
        if "fields in line" not in str(e):
            raise
        frame, extra = _read_csv_keeping_long_rows(data, len(names), options)
    if len(frame.columns) == 1 and len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        raise TableError(f"{name} has a single column {names[0]!r}: wrong delimiter? (expected commas)")
    return frame, extra if len(extra) else np.zeros(len(frame), dtype=bool)


def _read_csv_keeping_long_rows(data: bytes, width: int, options: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The slower Python parser, keeping a row with too many fields as its first ``width`` fields,
    marked in the returned mask (pandas would otherwise fail the file or drop the row)."""
    marker = "\x00lossval-extra-fields\x00"

    def keep(fields: list[str]) -> list[str]:
        return [*fields[: width - 1], marker + fields[width - 1]]

    frame = pd.read_csv(io.BytesIO(data), engine="python", on_bad_lines=keep, **options)
    last = frame.columns[-1]
    extra = frame[last].astype("string").str.startswith(marker, na=False).to_numpy(dtype=bool)
    frame.loc[extra, last] = frame.loc[extra, last].str.removeprefix(marker).replace("", None)
    return frame, extra


#: Rows hashed at a time by :func:`content_ids` (bounds the joined text held in memory: about 70 MB for Elec2).
HASH_CHUNK = 1_000_000


def content_ids(frame: pd.DataFrame) -> pd.Series:
    """16-hex-digit SHA-256 of each row's values (as strings, in column order).

    The hashed text is each cell as ``astype("string")`` writes it, ``\\x00`` for a
    missing cell, joined by ``\\x1f``, UTF-8 encoded. The joining is done by Arrow
    and each row's bytes are hashed straight from Arrow's buffer, ``HASH_CHUNK``
    rows at a time (the ids are a contract persisted in ledgers: the same text,
    the same ids as a row-by-row ``str.cat`` and ``hashlib`` give).
    """
    ids: list[str] = []
    for start in range(0, len(frame), HASH_CHUNK):
        ids += _hash_rows(frame.iloc[start : start + HASH_CHUNK])
    return pd.Series(ids, index=frame.index, dtype=object)


def _hash_rows(frame: pd.DataFrame) -> list[str]:
    columns = [pa.array(frame[c].astype("string").fillna("\x00"), type=pa.large_string()) for c in frame.columns]  # \x00: missing
    text = pc.binary_join_element_wise(*columns, pa.scalar("\x1f", pa.large_string())) if len(columns) > 1 else columns[0]
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[text.offset : text.offset + len(text) + 1].tolist()
    data = memoryview(data_buffer if data_buffer is not None else b"")
    sha256 = hashlib.sha256
    return [sha256(data[a:b]).digest()[:8].hex() for a, b in zip(offsets[:-1], offsets[1:])]


def check_reserved(columns: list[str], *, name: str = "the input") -> None:
    """Refuse a table with a column the pipeline reserves for itself.

    Raises:
        TableError: naming the first reserved column found.
    """
    clash = [str(c) for c in columns if str(c) in RESERVED]
    if clash:
        raise TableError(
            f"{name} has a column named {clash[0]!r}, a name lossval-clean uses for its own columns "
            f"({', '.join(RESERVED)}); rename it in the file (nothing was written)"
        )


def _id_text(column: pd.Series) -> pd.Series:
    """Ids as text, integers without a decimal point; None where the id is missing."""
    def text(v: object) -> str | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return str(int(v))
        return str(v)

    return pd.Series([text(v) for v in column.to_numpy(dtype=object)], index=column.index, dtype=object)


def assign_row_ids(frame: pd.DataFrame, id_column: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Unique row ids and a duplicate mask, both aligned with ``frame``.

    A row whose ``id_column`` is empty gets ``<missing>~<content hash>`` (not
    flagged as a duplicate; the schema step quarantines it as ``missing_id``).

    Raises:
        TableError: ``id_column`` is not a column of the frame, or the frame has a reserved column name.
    """
    check_reserved(list(frame.columns))
    if id_column is not None:
        if id_column not in frame.columns:
            raise TableError(f"id column {id_column!r} not found; columns are {list(map(str, frame.columns))}")
        base = _id_text(frame[id_column])
        missing = base.isna().to_numpy()
        if missing.any():
            base[missing] = MISSING_ID + "~" + content_ids(frame.loc[missing])
    else:
        base = content_ids(frame)
        missing = np.zeros(len(frame), dtype=bool)
    values = base.to_numpy(dtype=object)
    first = ~base.duplicated(keep="first").to_numpy() & ~missing
    ids = values.copy()
    # every name given below has a "~" in it, so only the kept ids with one can clash (not a set of all N ids)
    kept = values[first]
    taken = set(kept[pd.Series(kept, dtype=object).str.contains("~", regex=False).to_numpy(dtype=bool)]) if (~first).any() else set()
    counters: dict[str, int] = {}
    for i in np.flatnonzero(~first):  # later occurrences and missing ids: the first free name
        stem = values[i]
        n = counters.get(stem, 1 if missing[i] else 2)
        candidate = stem if n == 1 else f"{stem}~{n}"
        while candidate in taken:
            n += 1
            candidate = f"{stem}~{n}"
        counters[stem] = n + 1
        taken.add(candidate)
        ids[i] = candidate
    duplicate = ~first & ~missing
    return pd.Series(ids, index=frame.index, name=ROW_ID, dtype=object), pd.Series(duplicate, index=frame.index)


def check_row_drop(rows: int, *, previous: int | None, max_drop: float, name: str) -> None:
    """Refuse a file with far fewer rows than the previous run's: a nightly file cut short or still being written.

    Args:
        rows: data rows read now.
        previous: data rows the previous run read (None: no previous run).
        max_drop: largest accepted share lost, in [0, 1] (1 = never refuse).

    Raises:
        TableError: ``rows < (1 - max_drop) * previous``, naming both counts.
    """
    if previous and rows < (1.0 - max_drop) * previous:
        raise TableError(
            f"{name} has {rows} rows, {1 - rows / previous:.0%} fewer than the previous run's {previous} "
            f"(more than ingest.max_row_drop={max_drop:g}): a partly delivered file? Nothing was written; "
            "run again once the file is complete, or raise ingest.max_row_drop for this run (--set ingest.max_row_drop=1)"
        )


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
