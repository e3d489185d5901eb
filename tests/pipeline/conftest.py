"""Fixtures for pipeline tests: a real Prefect test harness, a temporary project that is a git repo
with DVC and a local DVC remote, and a temporary MLflow sqlite store. No mocks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import EXAMPLE, REPO

CODE = ("lossval", "tasks", "flows", "schemas")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One Prefect test server for the whole session (about 12 s to start)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def make_project(
    root: Path, *, rows: int = 600, reference_rows: int = 160, epochs: int = 3, params: dict | None = None, experiment: str | None = None
) -> Path:
    """A small but real lossval-clean project: code, params, data, git, DVC with a local remote."""
    root.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    (root / "data").mkdir()
    pd.read_csv(EXAMPLE / "electricity.csv", dtype=str, keep_default_na=False).head(rows).to_csv(root / "data" / "raw.csv", index=False)
    pd.read_csv(EXAMPLE / "electricity_reference.csv", dtype=str).head(reference_rows).to_csv(root / "data" / "reference.csv", index=False)
    tree = yaml.safe_load((REPO / "params.yaml").read_text())
    tree["ingest"]["path"] = "data/raw.csv"
    tree["reference"]["path"] = "data/reference.csv"
    tree["value"]["epochs"] = epochs
    tree["retrain"]["epochs"] = epochs
    if experiment:  # tests share one MLflow store; each project logs to its own experiment
        tree["tracking"]["experiment"] = experiment
    for dotted, value in (params or {}).items():
        section, key = dotted.split(".")
        tree[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    (root / ".gitignore").write_text("/mlflow.db\n/mlruns/\n/.dvcstore/\n/data/pipeline/\n__pycache__/\n")
    _run(["git", "init", "-q"], root)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "."], root)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "project"], root)
    _run([sys.executable, "-m", "dvc", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "remote", "add", "-d", "local", ".dvcstore"], root)
    return root


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """One sqlite MLflow store for the session (creating its schema takes seconds)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture()
def use_mlflow(mlflow_store, monkeypatch) -> str:
    """Point both the code under test and the test's own MlflowClient() at the session store."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    mlflow.set_tracking_uri(mlflow_store)
    return mlflow_store


def experiment_name(tmp_path: Path) -> str:
    return f"lossval-clean-{tmp_path.name}"


@pytest.fixture()
def project_dir(tmp_path, monkeypatch, use_mlflow) -> Path:
    root = make_project(tmp_path / "project", experiment=experiment_name(tmp_path))
    monkeypatch.setenv("LOSSVAL_PROJECT_DIR", str(root))
    return root


@pytest.fixture()
def run_dvc():
    return lambda root, *args: _run([sys.executable, "-m", "dvc", *args], root)
