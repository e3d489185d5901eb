"""Recovery after a crash trusts nothing it has not verified, and every path that writes takes the run lock."""

from __future__ import annotations

import shutil

import pytest

from cleaning.project import Project
from cleaning.transaction import PREVIOUS, recover
from cleaning.snapshot import SnapshotError
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

    from cleaning.tracking import Tracker
    from tests.helpers import REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    project = Project.load(tmp_path, overrides={"tracking.experiment": f"locked-{tmp_path.name}"})
    tracker = Tracker.start(project, trigger="manual")
    run_id = tracker.run_id
    log_epoch = tracker.epoch_logger()
    blocker = sqlite3.connect(use_mlflow.removeprefix("sqlite:///"), timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the store for a few seconds
    try:
        with caplog.at_level(logging.WARNING):
            log_epoch(1, {"loss": 0.9})
    finally:
        blocker.rollback()
        blocker.close()
    log_epoch(2, {"loss": 0.5})
    assert caplog.text.count("could not log epoch 1's metrics to MLflow") == 1 and "could not log epoch 2" not in caplog.text
    assert [m.step for m in MlflowClient().get_metric_history(run_id, "loss")] == [2]
    tracker.end("FINISHED")


# ---- 9. every path that writes takes the run lock ----------------------------------------------------
@pytest.mark.parametrize("command", [["stage", "ingest"], ["repro"], ["snapshot", "checkout", "f" * 32], ["restore", "r1"]])
def test_stages_repro_checkout_and_restore_wait_for_a_running_flow(tmp_path, command, capsys):
    from flows.cli import main
    from cleaning.transaction import run_lock
    from tests.helpers import EXAMPLE, REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    (tmp_path / "data" / "example").mkdir(parents=True)
    shutil.copy(EXAMPLE / "electricity.csv", tmp_path / "data" / "example" / "electricity.csv")
    project = Project.load(tmp_path)
    with run_lock(project.lock_path):  # a flow run is working on the project
        code = main(["--project", str(tmp_path), *command])
    assert code == 4  # cleaning.failures.EXIT_LOCKED
    assert "another lossval-clean run is working on this project" in capsys.readouterr().err
    assert not project.work_file("ingested.parquet").exists()


def test_a_stage_under_repro_uses_the_lock_repro_holds(tmp_path, monkeypatch):
    import os

    from flows.cli import main
    from cleaning.transaction import HOLDER_ENV, run_lock
    from tests.helpers import EXAMPLE, REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    (tmp_path / "data" / "example").mkdir(parents=True)
    shutil.copy(EXAMPLE / "electricity.csv", tmp_path / "data" / "example" / "electricity.csv")
    project = Project.load(tmp_path)
    with run_lock(project.lock_path):  # held by this process, standing in for `lossval-clean repro`
        monkeypatch.setenv(HOLDER_ENV, str(os.getpid()))
        assert main(["--project", str(tmp_path), "stage", "ingest"]) == 0
    assert project.work_file("ingested.parquet").exists()


# ---- 7. params.yaml is never edited, so a crash during `dvc commit` cannot leave a run's overrides in it ----
def test_params_yaml_is_never_rewritten_and_dvc_lock_records_the_overrides(project, monkeypatch):
    import yaml

    import cleaning.snapshot
    from flows.pipeline import lossval_clean

    params = project / "params.yaml"
    original = params.read_bytes()
    seen_during_commit: list[bytes] = []
    real_dvc = cleaning.snapshot.dvc

    def watching(p, *args, **kwargs):
        if args[:1] == ("commit",):  # a crash here would leave params.yaml as it is now
            seen_during_commit.append(params.read_bytes())
        return real_dvc(p, *args, **kwargs)

    monkeypatch.setattr(cleaning.snapshot, "dvc", watching)
    lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert seen_during_commit == [original]
    assert params.read_bytes() == original and not list(project.glob("params.yaml.*"))
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["quarantine"]["params"]["params.overrides.yaml"]["quarantine"]["max_fraction"] == 0.2
    assert lock["stages"]["quarantine"]["params"]["params.yaml"]["quarantine.max_fraction"] != 0.2
    assert Project.load(project).params.quarantine.max_fraction == 0.2  # DVC stages see the run's parameters
    assert Project.load(project, overrides={}).params.quarantine.max_fraction != 0.2  # a run without --set: the user's value


# ---- 4. restore puts rows back even when their source is gone, all or nothing ------------------------
def _value_quarantined(p: Project, n: int = 2) -> list[str]:
    import pandas as pd

    q = pd.read_parquet(p.snapshot_dir / "quarantine.parquet")
    return q.loc[q["stage"] == "value", "row_id"].head(n).tolist()


def test_restore_puts_back_a_row_whose_source_is_gone(project):
    import json

    import pandas as pd

    from flows.cli import main

    p = Project.load(project)
    chosen = _value_quarantined(p)
    quarantined = pd.read_parquet(p.snapshot_dir / "quarantine.parquet").set_index("row_id").loc[chosen]
    valid = pd.read_parquet(p.work_file("valid.parquet"))
    valid[~valid["row_id"].isin(chosen)].to_parquet(p.work_file("valid.parquet"), index=False)  # a later failed run rewrote work/
    assert main(["--project", str(project), "restore", *chosen]) == 0
    clean = pd.read_parquet(p.snapshot_dir / "clean.parquet").set_index("row_id")
    assert set(chosen) <= set(clean.index)
    assert (clean.loc[chosen, "nswprice"].to_numpy() == quarantined["nswprice"].astype(float).to_numpy()).all()
    counts = json.loads((p.metrics_dir / "counts.json").read_text())
    assert counts["rows_in"] == len(clean) + counts["rows_quarantined_schema"] + counts["rows_quarantined_value"]
    assert counts["rows_in"] == len(clean) + len(pd.read_parquet(p.snapshot_dir / "quarantine.parquet"))


@pytest.mark.parametrize("where", ["ledger write", "dvc commit"])
def test_a_restore_failing_midway_changes_nothing(project, monkeypatch, where):
    import errno

    import cleaning.snapshot
    from lossval.ledger import Ledger

    p = Project.load(project)
    before = _digest(project)
    if where == "ledger write":
        def disk_full(self, path):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Ledger, "save", disk_full)
    else:
        real_dvc = cleaning.snapshot.dvc

        def dvc_fails(project_, *args, **kwargs):
            if args[:1] == ("commit",):
                raise cleaning.snapshot.SnapshotError("`dvc commit` failed: injected")
            return real_dvc(project_, *args, **kwargs)

        monkeypatch.setattr(cleaning.snapshot, "dvc", dvc_fails)
    from cleaning.restore import restore_run

    with pytest.raises((OSError, cleaning.snapshot.SnapshotError)):
        restore_run(p, _value_quarantined(p))
    assert _digest(project) == before
    assert not (p.data_dir / "snapshot.previous").exists() and not (p.data_dir / "snapshot.staging").exists()


# ---- 6. a step's own failure is undone by the publication, however far the step got ----
def test_a_record_failing_after_registering_the_model_leaves_no_version(project, monkeypatch):
    from flows.pipeline import lossval_clean
    from cleaning.tracking import Tracker
    from tests.reliability.conftest import assert_unchanged, capture

    experiment = Project.load(project).params.tracking.experiment
    before = capture(project, experiment)
    real_log_result = Tracker.log_result
    attempts: list[str] = []

    def registered_then_lost(self, **kwargs):
        attempts.append(real_log_result(self, **kwargs)[1])  # the model version is registered, the alias moved...
        raise ConnectionError("tracking server went away after registering")  # ...then the server goes

    monkeypatch.setattr(Tracker, "log_result", registered_then_lost)
    with pytest.raises(ConnectionError, match="went away after registering"):
        lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert len(attempts) == 1
    assert_unchanged(project, experiment, before)  # no version left, snapshot/ledger/dvc.lock as before


def test_a_publish_failing_after_the_swap_leaves_the_previous_snapshot_live(project, monkeypatch):
    import errno

    from flows.pipeline import lossval_clean
    from tests.reliability.conftest import assert_unchanged, capture
    import cleaning.stages

    experiment = Project.load(project).params.tracking.experiment
    before = capture(project, experiment)
    real_write_json = cleaning.stages.write_json

    def disk_full_on_run_json(data, target):
        if str(target).endswith("run.json"):  # written by the record stage, after the snapshot swap and scores.json
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_json(data, target)

    monkeypatch.setattr(cleaning.stages, "write_json", disk_full_on_run_json)
    with pytest.raises(OSError, match="No space left on device"):
        lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert_unchanged(project, experiment, before)
    assert not (Project.load(project).data_dir / "snapshot.previous").exists()
