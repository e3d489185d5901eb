"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every write goes to a temporary file in the same folder, is flushed and
fsynced, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). If anything fails midway (full disk, I/O error, a kill), the
temporary file is removed and the target is untouched. The file keeps the
mode a normal write would give (not mkstemp's 0600); a symlink is followed;
what is not a regular file (``/dev/null``, a FIFO) is written through.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd


def _normal_mode(target: Path) -> int:
    """The permission bits a plain ``open(target, "w")`` would leave: the existing file's, else 0o666 minus the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``.

    A symlink is followed (the file it points to is replaced, the link stays).
    A target that exists and is not a regular file (``/dev/null``, a FIFO, a
    terminal) is written through, not replaced: the caller's bytes are copied
    into it. The new file gets the mode a normal write would give.
    """
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    special = target.exists() and not target.is_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=tempfile.gettempdir() if special else target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if special:
            with open(tmp_path, "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            return
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _normal_mode(target))
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
