"""Publishing a run's results all-or-nothing: the snapshot folder, the ledger, dvc.lock and the MLflow record.

The flow runs these tasks inside one Prefect transaction
(``prefect.transactions.transaction``). Each task that changes something
registers an ``on_rollback`` hook that undoes it, so if any later step fails
(DVC commit, MLflow down, model registration) the project is left exactly as
before the run: the previous snapshot, ledger, counts and dvc.lock, and no
registered model version from the failed run.

A process killed mid-way runs no hook; for that case the snapshot is swapped
in by directory renames and :func:`recover` (called under the run lock at
the start of every run) finishes or undoes a half-done swap.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.transactions import get_transaction

from lossval.io import write_bytes, write_json, write_parquet
from lossval.ledger import Ledger
from tasks.project import Project
from tasks.quarantine import Cleaned

STAGING, PREVIOUS = "snapshot.staging", "snapshot.previous"


def _paths(project: Project) -> tuple[Path, Path, Path]:
    return project.snapshot_dir, project.data_dir / STAGING, project.data_dir / PREVIOUS


def stage_snapshot(project: Project, cleaned: Cleaned) -> Path:
    """Write the new snapshot (clean data, quarantine, ledger) into a staging folder."""
    return stage_files(project, clean=cleaned.clean, quarantine=cleaned.quarantine, ledger=cleaned.ledger)


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


def swap_in(project: Project) -> bool:
    """Move the staged snapshot into place, keeping the old one aside. Returns whether there was an old one."""
    snapshot, staging, previous = _paths(project)
    shutil.rmtree(previous, ignore_errors=True)
    had_previous = snapshot.exists()
    if had_previous:
        os.replace(snapshot, previous)
    os.replace(staging, snapshot)
    return had_previous


def swap_back(project: Project, had_previous: bool) -> None:
    snapshot, _, previous = _paths(project)
    shutil.rmtree(snapshot, ignore_errors=True)
    if had_previous and previous.exists():
        os.replace(previous, snapshot)


def discard_previous(project: Project) -> None:
    shutil.rmtree(_paths(project)[2], ignore_errors=True)


def recover(project: Project) -> str | None:
    """Undo what a killed run left half done; returns what was repaired, if anything.

    A leftover ``snapshot.previous`` is trusted only after verification against
    the snapshot hash in dvc.lock (file by file, :func:`tasks.snapshot.verify`):
    killed before ``dvc commit``, the previous folder is what dvc.lock records
    and it is put back; killed after (e.g. while deleting it), the live snapshot
    is the recorded one and the leftover is removed. When neither checks out,
    nothing is moved and the run stops with a message.

    Raises:
        SnapshotError: neither folder matches dvc.lock.
    """
    from tasks.snapshot import SnapshotError, matches_lock

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


def publish_files(project: Project, cleaned: Cleaned) -> None:
    """The snapshot and ledger swapped in at once, with the run's counts: the quarantine stage's outputs
    (the DVC stage; the flow's :func:`publish` does the same inside its transaction)."""
    stage_snapshot(project, cleaned)
    swap_in(project)
    write_counts(project, cleaned)


def write_counts(project: Project, cleaned: Cleaned) -> None:
    calibration = {k: v for k, v in (cleaned.calibration.as_metrics() if cleaned.calibration else {}).items() if v == v}  # no NaN in JSON
    write_json({**cleaned.counts, "rule": cleaned.decision.rule, "threshold": cleaned.decision.threshold, "capped": cleaned.decision.capped,
                "fingerprint": cleaned.fingerprint, "valuation_unreliable": cleaned.unreliable, **calibration},
               project.metrics_dir / "counts.json")


@task(name="publish")
def publish(project: Project, cleaned: Cleaned, run_record: dict, scores: dict[str, float]) -> None:
    """Swap the new snapshot and ledger in, with the run's counts and downstream scores (the DVC
    metrics); on rollback put the previous ones back."""
    txn = get_transaction()
    scores_path = project.metrics_dir / "scores.json"
    backup = FileBackup(project.metrics_dir / "counts.json", scores_path, project.work_file("run.json"))
    stage_snapshot(project, cleaned)
    had_previous = swap_in(project)
    if txn is not None:  # for a rollback after this task succeeded
        txn.set("had_previous", had_previous)
        txn.set("file_backup", backup)
    try:
        write_counts(project, cleaned)
        write_json(scores, scores_path)
        write_json(run_record, project.work_file("run.json"))
    except BaseException:  # Prefect runs a task's on_rollback only if the task itself succeeded: undo here
        swap_back(project, had_previous)
        backup.restore()
        raise
    get_run_logger().info("snapshot and ledger swapped in (%d clean rows)", len(cleaned.clean))


@publish.on_rollback
def _unpublish(txn) -> None:
    project = txn.get("project")
    swap_back(project, txn.get("had_previous", False))
    txn.get("file_backup").restore()


@publish.on_commit
def _forget_previous(txn) -> None:
    discard_previous(txn.get("project"))
