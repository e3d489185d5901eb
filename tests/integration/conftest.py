"""Fixtures for the operations tests: a real project deployed for real.

``deployed`` runs ``lossval-clean deploy --gpu-worker`` in a fresh project (git,
DVC, the example data, the repo's prefect.yaml) with its own ``PREFECT_HOME``
and a free loopback port: a Prefect server, the work pools, the deployments of
prefect.yaml and two process workers (lossval-cpu, and lossval-gpu standing in
for a GPU machine). Afterwards ``lossval-clean stop`` ends them (workers before
the server) and every pid that deploy recorded and is still alive is killed,
whether the tests passed or not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from flows.processes import State, free_port, stop
from cleaning.project import Project
from tests.helpers import REPO, make_project
from tests.integration.browser import WHY_MISSING, Browser, find_chromium

# Small but real: the first 600 rows of the bundled example, few epochs, large batches (CI has 2 cores).
PARAMS = {"value.batch_size": 128, "retrain.batch_size": 128}
EPOCHS = 3
# Variables of the calling environment that would point the commands elsewhere than the test's own setup.
FOREIGN = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE", "MLFLOW_TRACKING_URI", "LOSSVAL_PROJECT_DIR", "PYTHONPATH")


@dataclass
class Deployed:
    root: Path
    env: dict[str, str]  # what a user's shell would have: PREFECT_HOME, no PREFECT_API_URL (deploy put it in the profile)
    api_url: str
    deploy_output: str

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(list(args), cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result

    def cli(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """``lossval-clean ARGS`` as a user runs it in the project (this checkout's code)."""
        return self.run(sys.executable, "-m", "flows.cli", *args, timeout=timeout, check=check)

    def prefect(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """``prefect ARGS`` as a user types it."""
        return self.run(shutil.which("prefect", path=self.env["PATH"]) or "prefect", *args, timeout=timeout, check=check)


def _user_env(home: Path, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(root),  # the project's own code, as an editable install of it would give
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",  # workers poll every 2 s instead of 10
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


def _kill_leftovers(root: Path) -> None:
    """Last resort after ``lossval-clean stop``: end every recorded process that still runs (SIGTERM, then SIGKILL)."""
    state = State(Project.load(root))
    for started in sorted(state.processes.values(), key=lambda s: s.name == "server"):
        stop(started, timeout=5)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Deployed:
    base = tmp_path_factory.mktemp("ops")
    root = make_project(base / "project", rows=600, reference_rows=160, epochs=EPOCHS, params=PARAMS)
    shutil.copy(REPO / "prefect.yaml", root / "prefect.yaml")
    env = _user_env(base / "prefect-home", root)
    api_url = f"http://127.0.0.1:{free_port()}/api"
    ops = Deployed(root=root, env=env, api_url=api_url, deploy_output="")
    try:
        # deploy honours the port of PREFECT_API_URL; later commands find the server through the Prefect profile
        result = subprocess.run(
            [sys.executable, "-m", "flows.cli", "deploy", "--gpu-worker"], cwd=root, env={**env, "PREFECT_API_URL": api_url},
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, f"lossval-clean deploy failed:\n{result.stdout}\n{result.stderr}"
        ops.deploy_output = result.stdout
        yield ops
    finally:
        try:
            ops.cli("stop", timeout=180, check=False)
        finally:
            _kill_leftovers(root)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = find_chromium()
    if executable is None:
        pytest.skip(WHY_MISSING)
    chromium = Browser(executable, tmp_path_factory.mktemp("chromium"))
    try:
        yield chromium
    finally:
        chromium.close()
