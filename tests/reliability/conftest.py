"""Fixtures for the reliability suite: a project with one good run done, cloned per test, so every
failure can be checked against an untouched previous snapshot, ledger and MLflow history."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import make_project

RELIABILITY_ROWS = 300


@dataclass
class State:
    """What must survive a failed run: snapshot and metrics bytes, dvc.lock, every finished MLflow run
    as it was, and the registered model versions. (A run that fails after valuation started is kept in
    MLflow as FAILED, with a ``failure`` tag: that is a record of the failure, not a change to history.)"""

    files: dict[str, str]
    finished_runs: dict[str, tuple]
    versions: int


def _digest(root: Path) -> dict[str, str]:
    tracked = [root / "dvc.lock", root / "params.overrides.yaml", *(root / "data" / "pipeline" / d for d in ("snapshot", "metrics"))]
    files = {}
    for item in tracked:
        for path in [item] if item.is_file() else sorted(item.rglob("*")) if item.exists() else []:
            if path.is_file():
                files[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def capture(root: Path, experiment: str) -> State:
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    finished = {
        r.info.run_id: (sorted(r.data.metrics.items()), sorted(r.data.tags.items()), r.info.end_time)
        for r in runs
        if r.info.status == "FINISHED"
    }
    for r in runs:
        if r.info.status != "FINISHED":
            assert r.info.status in ("FAILED", "KILLED") and r.data.tags.get("failure"), f"run {r.info.run_id} left {r.info.status}"
    versions = len(client.search_model_versions("name='lossval-clean-downstream'"))
    return State(files=_digest(root), finished_runs=finished, versions=versions)


def assert_unchanged(root: Path, experiment: str, before: State) -> None:
    """The project and its MLflow history are as ``before`` (field by field, so a failure names what changed)."""
    after = capture(root, experiment)
    assert after.files == before.files, "snapshot, ledger, metrics or dvc.lock changed"
    assert after.finished_runs == before.finished_runs, "a finished MLflow run changed"
    assert after.versions == before.versions, "registered model versions changed"


@pytest.fixture(scope="session")
def baseline(tmp_path_factory, prefect_harness, mlflow_store):
    """One small project after one good run (made once: each test clones it)."""
    import os

    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = mlflow_store
    mlflow.set_tracking_uri(mlflow_store)
    folder = tmp_path_factory.mktemp("baseline")
    root = make_project(folder / "project", rows=RELIABILITY_ROWS, reference_rows=120, epochs=1, experiment=f"reliability-{folder.name}")
    from flows.pipeline import lossval_clean

    lossval_clean(project_dir=str(root))
    return root


@pytest.fixture()
def project(baseline, tmp_path, use_mlflow):
    """A private copy of the baseline project (with its DVC cache, remote and ledger)."""
    root = tmp_path / "project"
    shutil.copytree(baseline, root, symlinks=True)
    return root
