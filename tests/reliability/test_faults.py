"""Faults injected into real runs: a kill, servers and remotes going away, a failing disk, two runs at
once, a tampered ledger, a diverging training. After each: nothing partial, nothing lost."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from flows.pipeline import lossval_clean
from lossval.ledger import Ledger, LedgerError
from lossval.errors import TrainingDivergedError
from cleaning.transaction import RunLockedError
from cleaning.project import Project
from cleaning.snapshot import SnapshotError
from cleaning.tracking import TrackingUnavailableError
from tests.reliability.conftest import _digest, assert_unchanged, capture


def _experiment(root: Path) -> str:
    return Project.load(root).params.tracking.experiment


def _runs(root: Path):
    """The project's runs, newest first."""
    client = MlflowClient()
    return client.search_runs([client.get_experiment_by_name(_experiment(root)).experiment_id], order_by=["attributes.start_time DESC"])


def _spawn(root: Path, *args: str, log: Path) -> subprocess.Popen:
    """`lossval-clean run` in its own process group, talking to the test's Prefect server and MLflow store."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--project", str(root), "run", *args],
        cwd=root, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended before {what}:\n{log.read_text()[-3000:] if log else ''}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:] if log else ''}")


def _epochs_logged(root: Path) -> int:
    client = MlflowClient()
    running = [r for r in _runs(root) if r.info.status == "RUNNING"]
    return max((len(client.get_metric_history(r.info.run_id, "loss")) for r in running), default=0)


def test_sigkill_during_valuation_leaves_nothing_partial_and_the_next_run_completes(project, tmp_path):
    before = capture(project, _experiment(project))
    log = tmp_path / "killed.log"
    proc = _spawn(project, "--set", "value.epochs=500", log=log)
    try:
        _wait_for(lambda: _epochs_logged(project) >= 2, 240, "valuation to start", proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    data = Project.load(project).data_dir
    assert _digest(project) == before.files  # snapshot, ledger, metrics, dvc.lock as they were
    assert not (data / "snapshot.staging").exists() and not (data / "snapshot.previous").exists()
    assert len(MlflowClient().search_model_versions("name='lossval-clean-downstream'")) == before.versions
    (killed,) = [r for r in _runs(project) if r.info.status == "RUNNING"]

    summary = lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert summary["rows_in"] == 300
    client = MlflowClient()
    assert client.get_run(killed.info.run_id).info.status == "KILLED"
    assert client.get_run(summary["run_id"]).info.status == "FINISHED"


def test_mlflow_unreachable_fails_fast_and_writes_nothing(project, monkeypatch):
    before = capture(project, _experiment(project))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    started = time.monotonic()
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_TRACKING_URI", f"http://user:s3cret@127.0.0.1:{port}")
        m.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        with pytest.raises(TrackingUnavailableError, match=r"MLflow tracking store http://\*\*\*@127.0.0.1:\d+ is unreachable after 3 attempts") as info:
            lossval_clean(project_dir=str(project))
    assert "s3cret" not in str(info.value)
    assert time.monotonic() - started < 60
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    assert_unchanged(project, _experiment(project), before)


def test_mlflow_failing_while_recording_rolls_everything_back(project, monkeypatch):
    before = capture(project, _experiment(project))
    import cleaning.tracking

    def server_gone(*args, **kwargs):
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(cleaning.tracking.Tracker, "log_result", server_gone)
    with pytest.raises(ConnectionError, match="tracking server went away"):
        lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert_unchanged(project, _experiment(project), before)  # snapshot, ledger, dvc.lock restored by rollback
    newest = _runs(project)[0]
    assert newest.info.status == "FAILED" and "tracking server went away" in newest.data.tags["failure"]


def test_dvc_remote_unreachable_fails_clearly_keeps_the_snapshot_and_the_next_run_pushes(project, run_dvc):
    (project / "not-a-folder").write_text("a file where the remote should be")
    run_dvc(project, "remote", "modify", "local", "url", "not-a-folder")
    with pytest.raises(SnapshotError, match="`dvc push` failed"):
        lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    project_obj = Project.load(project)
    from cleaning.snapshot import locked_hash

    md5 = locked_hash(project_obj)  # the new snapshot is committed locally and on disk
    assert (project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()
    assert (project_obj.snapshot_dir / "clean.parquet").exists()
    failed = _runs(project)[0]
    assert failed.info.status == "FAILED" and "dvc push" in failed.data.tags["failure"] and failed.data.tags["dvc_snapshot"] == md5

    run_dvc(project, "remote", "modify", "local", "url", ".dvcstore")
    lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert "in sync" in run_dvc(project, "status", "--cloud")


def test_a_write_failing_midway_leaves_the_previous_snapshot_whole(project, monkeypatch):
    before = capture(project, _experiment(project))
    original = pd.DataFrame.to_parquet

    def disk_full(self, path, *args, **kwargs):
        if "clean.parquet" in str(path):
            original(self, path, *args, **kwargs)
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])  # half the file reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(pd.DataFrame, "to_parquet", disk_full)
        with pytest.raises(OSError, match="No space left on device"):
            lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert_unchanged(project, _experiment(project), before)
    data = Project.load(project).data_dir
    assert not list(data.rglob("*.tmp")) and not (data / "snapshot.staging").exists()


def test_two_runs_at_once_one_fails_clearly_and_the_ledger_stays_whole(project, tmp_path):
    project_obj = Project.load(project)
    log = tmp_path / "first.log"
    first = _spawn(project, "--set", "value.epochs=20", "--set", "quarantine.max_fraction=0.2", log=log)
    try:
        _wait_for(lambda: f'"pid": {first.pid}' in project_obj.lock_path.read_text() if project_obj.lock_path.exists() else False,
                  180, "the first run to take the lock", first, log)
        with pytest.raises(RunLockedError, match=rf"another lossval-clean run is working on this project \(pid {first.pid}"):
            lossval_clean(project_dir=str(project))
        assert first.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    ledger = Ledger.load(project_obj.ledger_path)  # verifies the checksum and the structure
    assert not ledger.events.duplicated(["fingerprint", "row_id", "event"]).any()
    assert ledger.events["fingerprint"].nunique() == 2  # the baseline run and the first run, nothing else


@pytest.mark.parametrize("how", ["corrupt bytes", "edited by hand"])
def test_a_tampered_ledger_is_refused_not_overwritten(project, how):
    path = Project.load(project).ledger_path
    if how == "corrupt bytes":
        path.write_bytes(path.read_bytes()[:-40] + b"garbage")
    else:
        events = pd.read_parquet(path)
        events.loc[0, "reason"] = "edited"
        events.to_parquet(path, index=False)
    tampered = path.read_bytes()
    with pytest.raises(LedgerError, match="does not match its checksum: it is corrupt or was edited by hand"):
        lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    assert path.read_bytes() == tampered


def test_nan_in_training_fails_with_what_to_change(project):
    before = capture(project, _experiment(project))
    with pytest.raises(TrainingDivergedError, match=r"Lower the learning rate \(lr=1e\+30"):
        lossval_clean(project_dir=str(project), overrides={"value.lr": 1e30})
    assert_unchanged(project, _experiment(project), before)
