"""Shared fixtures: seeded torch, the bundled example data, opt-in slow tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.helpers import EXAMPLE, experiment_name, make_project, run_command

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (see docs/benchmarks.md)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def electricity() -> pd.DataFrame:
    """3000 real rows of Elec2 (classification, target UP/DOWN); see data/example/README.md."""
    return pd.read_csv(EXAMPLE / "electricity.csv")


@pytest.fixture(scope="session")
def electricity_reference() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE / "electricity_reference.csv")


@pytest.fixture(scope="session")
def white_wine() -> pd.DataFrame:
    """4898 real rows of UCI white wine quality (regression target 3-9)."""
    return pd.read_csv(EXAMPLE / "white_wine.csv.gz")


@pytest.fixture()
def tiny_classification() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A small separable problem with string labels, for API tests."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    return X[:100], y[:100], X[100:], y[100:]


# ---- pipeline fixtures: real Prefect, MLflow sqlite, DVC (no mocks) --------------------
@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One Prefect test server for the whole session (about 12 s to start)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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


@pytest.fixture()
def project_dir(tmp_path, monkeypatch, use_mlflow) -> Path:
    root = make_project(tmp_path / "project", experiment=experiment_name(tmp_path))
    monkeypatch.setenv("LOSSVAL_PROJECT_DIR", str(root))
    return root


@pytest.fixture()
def run_dvc():
    return lambda root, *args: run_command([sys.executable, "-m", "dvc", *args], root)
