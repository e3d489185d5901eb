"""One run at a time per project: an OS file lock, released even when the holder is killed.

The lock file also records who holds it (pid, start time, MLflow run id), so
a second run can say who is in the way, and the next run can tell that the
previous one died without finishing (its record is still there) and mark its
MLflow run as killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


class RunLockedError(RuntimeError):
    """Another run holds the project's lock."""


@dataclass
class RunLock:
    path: Path
    handle: object = None
    leftover: dict = field(default_factory=dict)  # the record a killed run left behind, if any

    def note(self, **info: object) -> None:
        """Add to the holder's record (e.g. the MLflow run id once known)."""
        record = {**self._read_own(), **info}
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(json.dumps(record))
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def _read_own(self) -> dict:
        self.handle.seek(0)
        text = self.handle.read()
        return json.loads(text) if text.strip() else {}


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    return f"pid {info.get('pid', '?')}, started {info.get('started', '?')}"


@contextlib.contextmanager
def run_lock(path: Path, *, wait_seconds: float = 0.0, poll: float = 0.5) -> Iterator[RunLock]:
    """Hold the project lock for the block; wait up to ``wait_seconds`` for it, then fail clearly.

    Raises:
        RunLockedError: the lock is held by another run after ``wait_seconds``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunLockedError(
                        f"another lossval-clean run is working on this project ({_describe(path)}); "
                        f"nothing was changed. Try again when it finishes, or wait for it with --wait SECONDS"
                    ) from None
                time.sleep(poll)
        lock = RunLock(path=path, handle=handle)
        lock.leftover = lock._read_own()  # a record still here means its run never finished
        handle.seek(0)
        handle.truncate()
        lock.note(pid=os.getpid(), started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        try:
            yield lock
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


HOLDER_ENV = "LOSSVAL_RUN_LOCK_HOLDER"  # set by `lossval-clean repro` for the DVC stages it runs


def _held_by_parent(path: Path) -> bool:
    """Whether the process named in ``LOSSVAL_RUN_LOCK_HOLDER`` holds this lock now (our parent `repro`)."""
    holder = os.environ.get(HOLDER_ENV, "")
    if not holder.isdigit():
        return False
    try:
        record = json.loads(path.read_text() or "{}")
        os.kill(int(holder), 0)
    except (OSError, ValueError):
        return False
    return str(record.get("pid")) == holder


@contextlib.contextmanager
def project_lock(path: Path, *, wait_seconds: float = 0.0) -> Iterator[RunLock | None]:
    """:func:`run_lock` for the commands that write outside a flow run (DVC stages, ``repro``, ``snapshot
    checkout``, ``restore``); a stage run by a ``lossval-clean repro`` that holds the lock goes ahead (yields None)."""
    if _held_by_parent(path):
        yield None
        return
    with run_lock(path, wait_seconds=wait_seconds) as lock:
        yield lock
