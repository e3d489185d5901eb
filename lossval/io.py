"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every write goes to a temporary file in the same folder, is flushed and
fsynced, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). If anything fails midway (full disk, I/O error, a kill), the
temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_with(target: str | Path, write: Callable[[Path], Any]) -> Path:
    """Atomically create ``target`` with ``write(tmp_path)``."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_parquet(frame: pd.DataFrame, target: str | Path) -> Path:
    """Deterministic bytes for equal frames (no index, fixed writer)."""
    return write_with(target, lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))


def write_text(text: str, target: str | Path) -> Path:
    return write_with(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(data: Any, target: str | Path) -> Path:
    return write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", target)


def write_bytes(data: bytes, target: str | Path) -> Path:
    return write_with(target, lambda tmp: tmp.write_bytes(data))
