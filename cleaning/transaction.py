"""Crash safety in one place: the project's run lock, recovery after a kill, and the all-or-nothing publication.

- **Lock**: one run at a time per project, an OS file lock released even when the holder is killed. The lock
  file records its holder (pid, start, MLflow run id); the next run reads a leftover record (its run never
  finished) to mark that MLflow run as killed.
- **Publication**: :func:`publication` wraps everything a run or a DVC stage changes (the snapshot folder,
  the metrics, run.json, dvc.lock, the run's overrides file). The snapshot is swapped in by directory renames
  (:func:`swap_in`); on any failure the previous snapshot and the files' previous bytes come back, and the
  undo steps the block registered (e.g. deleting the MLflow model version) run.
- **Recovery**: a process killed mid-way runs no rollback; :func:`recover` (called under the lock at the start
  of every run) finishes or undoes a half-done swap, verified against the snapshot hash in dvc.lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from lossval.io import write_bytes, write_json, write_parquet
from lossval.ledger import Ledger
from cleaning.project import Project

log = logging.getLogger("lossval_clean")


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


# ---- the snapshot swap and its recovery ----

STAGING, PREVIOUS = "snapshot.staging", "snapshot.previous"


def _paths(project: Project) -> tuple[Path, Path, Path]:
    return project.snapshot_dir, project.data_dir / STAGING, project.data_dir / PREVIOUS


def stage_files(project: Project, *, clean: pd.DataFrame, quarantine: pd.DataFrame, ledger: Ledger) -> Path:
    """Write a snapshot's three files into the staging folder (removed again if a write fails)."""
    _, staging, _ = _paths(project)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_parquet(clean, staging / "clean.parquet")
        write_parquet(quarantine, staging / "quarantine.parquet")
        ledger.save(staging / "ledger.parquet")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def swap_in(project: Project) -> None:
    """Move the staged snapshot into place, keeping the old one aside (``snapshot.previous``) until the publication ends."""
    snapshot, staging, previous = _paths(project)
    shutil.rmtree(previous, ignore_errors=True)
    if snapshot.exists():
        os.replace(snapshot, previous)
    os.replace(staging, snapshot)


def discard_previous(project: Project) -> None:
    shutil.rmtree(_paths(project)[2], ignore_errors=True)


def recover(project: Project) -> str | None:
    """Undo what a killed run left half done; returns what was repaired, if anything. A leftover ``snapshot.previous``
    is trusted only when it matches dvc.lock file by file (killed before ``dvc commit``: it is put back); when the live
    snapshot matches (killed after), the leftover is removed; when neither does, nothing is moved.

    Raises:
        SnapshotError: neither folder matches dvc.lock.
    """
    from cleaning.snapshot import SnapshotError, matches_lock

    snapshot, staging, previous = _paths(project)
    repaired = None
    if previous.exists():
        if snapshot.exists() and matches_lock(project, snapshot):  # killed after the commit: the swap stands
            shutil.rmtree(previous)
            repaired = "removed the previous snapshot left by an interrupted run (the published one matches dvc.lock)"
        elif matches_lock(project, previous):  # killed between swapping in and committing: put the old one back
            shutil.rmtree(snapshot, ignore_errors=True)
            os.replace(previous, snapshot)
            repaired = "restored the previous snapshot left by an interrupted run (verified against dvc.lock)"
        else:
            raise SnapshotError(
                f"an interrupted run left {previous.name} and {snapshot.name}, and neither matches the snapshot in dvc.lock: "
                "nothing was moved. Bring the recorded one back with `dvc checkout`, then delete "
                f"{previous.relative_to(project.root)}"
            )
    if staging.exists():
        shutil.rmtree(staging)
        repaired = repaired or "removed a half-written snapshot left by an interrupted run"
    return repaired


class FileBackup:
    """Remember files' bytes (or absence) so a rollback can put them back."""

    def __init__(self, *paths: Path) -> None:
        self.saved = {p: (p.read_bytes() if p.exists() else None) for p in paths}

    def restore(self) -> None:
        for path, data in self.saved.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                write_bytes(data, path)


@contextlib.contextmanager
def first_files(project: Project) -> Iterator[None]:
    """For the whole-file checks (ingest, validate, reference): if they fail, the working files they created are
    removed again, so that a bad file leaves a new project as it was (files of earlier runs were scratch anyway)."""
    before = set(project.work.rglob("*"))
    try:
        yield
    except BaseException:
        for path in set(project.work.rglob("*")) - before:
            if path.is_file():
                path.unlink(missing_ok=True)
        raise


def published_files(project: Project) -> list[Path]:
    """The small files a run rewrites besides the snapshot; a rollback puts their previous bytes back."""
    from cleaning.overrides import OVERRIDES_FILE

    return [project.metrics_dir / "counts.json", project.metrics_dir / "scores.json", project.work_file("run.json"),
            project.root / "dvc.lock", project.root / OVERRIDES_FILE]


@contextlib.contextmanager
def publication(project: Project) -> Iterator[list[Callable[[], None]]]:
    """All or nothing: if the block raises, the snapshot and the :func:`published_files` go back to how they were
    and the undo steps appended to the yielded list run (last first); if it succeeds, the previous snapshot is dropped."""
    snapshot, _, previous = _paths(project)
    had_snapshot = snapshot.exists()
    backup = FileBackup(*published_files(project))
    undo_steps: list[Callable[[], None]] = []
    try:
        yield undo_steps
    except BaseException:
        for undo in reversed(undo_steps):
            try:
                undo()
            except Exception as e:  # a service down: the rest is still undone; the next run's checks see what is left
                log.warning("could not undo part of the failed run: %s", e)
        if previous.exists():  # the block swapped a new snapshot in: the old one goes back
            shutil.rmtree(snapshot, ignore_errors=True)
            os.replace(previous, snapshot)
        elif not had_snapshot:  # the project's first snapshot: removed
            shutil.rmtree(snapshot, ignore_errors=True)
        backup.restore()
        raise
    discard_previous(project)


# ---- MLflow runs a killed process left RUNNING ----

def unfinished_path(project: Project) -> Path:
    return project.data_dir / ".unfinished_runs.json"


def note_unfinished(project: Project, *, add: str | None = None, remove: str | None = None) -> None:
    """Keep the ids of MLflow runs started and not yet ended, so that the next run can close them if this process dies."""
    path = unfinished_path(project)
    ids = json.loads(path.read_text()) if path.exists() else []
    write_json([r for r in [*ids, *([add] if add else [])] if r != remove], path)


def close_abandoned_runs(project: Project, *also: str | None) -> list[str]:
    """Mark runs that a killed or cut-off process left RUNNING as KILLED (those noted by :func:`note_unfinished`, and
    ``also``: e.g. the run id a dead holder left in the run lock's record). Returns their ids."""
    from mlflow.tracking import MlflowClient

    from cleaning.tracking import tracking_uri

    path = unfinished_path(project)
    ids = list(dict.fromkeys([*(json.loads(path.read_text()) if path.exists() else []), *(r for r in also if r)]))
    closed: list[str] = []
    if not ids:
        return closed
    client = MlflowClient(tracking_uri(project))
    for run_id in ids:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status="KILLED")
                client.set_tag(run_id, "failure", "the process ended before the run finished")
                closed.append(run_id)
        except Exception:  # a run deleted by hand: nothing to close
            pass
    write_json([], path)
    return closed
