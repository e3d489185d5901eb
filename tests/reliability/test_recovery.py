"""Recovery after a crash trusts nothing it has not verified, and every path that writes takes the run lock."""

from __future__ import annotations

import shutil

import pytest

from tasks.project import Project
from tasks.publish import PREVIOUS, recover
from tasks.snapshot import SnapshotError
from tests.reliability.conftest import _digest


# ---- 8. a leftover snapshot.previous is verified before it is trusted --------------------------------
def test_a_partial_previous_folder_left_by_a_crash_is_not_trusted(project):
    """Killed while deleting snapshot.previous after the commit: the live snapshot is the recorded one and stays."""
    p = Project.load(project)
    before = _digest(project)
    previous = p.data_dir / PREVIOUS
    shutil.copytree(p.snapshot_dir, previous)
    (previous / "ledger.parquet").unlink()  # half deleted
    assert "removed the previous snapshot" in recover(p)
    assert not previous.exists() and _digest(project) == before


def test_a_previous_folder_matching_dvc_lock_is_put_back(project):
    """Killed between swapping in and `dvc commit`: the previous folder is what dvc.lock records."""
    p = Project.load(project)
    before = _digest(project)
    previous = p.data_dir / PREVIOUS
    shutil.copytree(p.snapshot_dir, previous)
    (p.snapshot_dir / "clean.parquet").write_bytes(b"an uncommitted new snapshot")
    assert "restored the previous snapshot" in recover(p)
    assert not previous.exists() and _digest(project) == before


def test_when_neither_folder_matches_nothing_is_moved(project):
    p = Project.load(project)
    previous = p.data_dir / PREVIOUS
    shutil.copytree(p.snapshot_dir, previous)
    (previous / "ledger.parquet").unlink()
    (p.snapshot_dir / "clean.parquet").write_bytes(b"not the recorded snapshot")
    before = {path: path.read_bytes() for path in p.data_dir.rglob("*") if path.is_file() and ".run.lock" not in path.name}
    with pytest.raises(SnapshotError, match="neither matches the snapshot in dvc.lock: nothing was moved"):
        recover(p)
    assert {path: path.read_bytes() for path in p.data_dir.rglob("*") if path.is_file() and ".run.lock" not in path.name} == before


# ---- 10. per-epoch logging is best effort ------------------------------------------------------------
def test_a_locked_tracking_store_during_valuation_is_a_warning_not_a_failure(tmp_path, use_mlflow, caplog):
    import logging
    import sqlite3

    from mlflow.tracking import MlflowClient

    from tasks.tracking import EpochLogger, start_run
    from tests.helpers import REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    project = Project.load(tmp_path, overrides={"tracking.experiment": f"locked-{tmp_path.name}"})
    run_id = start_run(project, trigger="manual")
    log_epoch = EpochLogger(project, run_id)
    blocker = sqlite3.connect(use_mlflow.removeprefix("sqlite:///"), timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the store for a few seconds
    try:
        with caplog.at_level(logging.WARNING):
            log_epoch(1, {"loss": 0.9})
    finally:
        blocker.rollback()
        blocker.close()
    log_epoch(2, {"loss": 0.5})
    assert "could not log epoch 1's metrics to MLflow" in caplog.text and log_epoch.skipped == 1
    assert [m.step for m in MlflowClient().get_metric_history(run_id, "loss")] == [2]


# ---- 9. every path that writes takes the run lock ----------------------------------------------------
@pytest.mark.parametrize("command", [["stage", "ingest"], ["repro"], ["snapshot", "checkout", "f" * 32], ["restore", "r1"]])
def test_stages_repro_checkout_and_restore_wait_for_a_running_flow(tmp_path, command, capsys):
    from flows.cli import main
    from tasks.lock import run_lock
    from tests.helpers import EXAMPLE, REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    (tmp_path / "data" / "example").mkdir(parents=True)
    shutil.copy(EXAMPLE / "electricity.csv", tmp_path / "data" / "example" / "electricity.csv")
    project = Project.load(tmp_path)
    with run_lock(project.lock_path):  # a flow run is working on the project
        code = main(["--project", str(tmp_path), *command])
    assert code != 0
    assert "another lossval-clean run is working on this project" in capsys.readouterr().err
    assert not project.work_file("ingested.parquet").exists()


def test_a_stage_under_repro_uses_the_lock_repro_holds(tmp_path, monkeypatch):
    import os

    from flows.cli import main
    from tasks.lock import HOLDER_ENV, run_lock
    from tests.helpers import EXAMPLE, REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    (tmp_path / "data" / "example").mkdir(parents=True)
    shutil.copy(EXAMPLE / "electricity.csv", tmp_path / "data" / "example" / "electricity.csv")
    project = Project.load(tmp_path)
    with run_lock(project.lock_path):  # held by this process, standing in for `lossval-clean repro`
        monkeypatch.setenv(HOLDER_ENV, str(os.getpid()))
        assert main(["--project", str(tmp_path), "stage", "ingest"]) == 0
    assert project.work_file("ingested.parquet").exists()
