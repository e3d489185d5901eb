"""The servers the project starts refuse cross-site requests, and flow parameters cannot point outside the project."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

from flows.deploy import server_security
from flows.processes import free_port
from schemas.params import ParamsError
from cleaning.project import Project, check_flow_parameters
from tests.helpers import REPO


def _request(url: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


@pytest.fixture()
def prefect_server(tmp_path):
    """`prefect server start` as `lossval-clean deploy` starts it (its settings), on a free port."""
    port = free_port()
    env = {**os.environ, **server_security(port), "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if _request(f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the Prefect server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_deploy_server_refuses_cross_site_requests(prefect_server):
    evil = {"Origin": "http://evil.example", "Content-Type": "application/json"}
    status, _ = _request(f"{prefect_server}/work_pools/", "POST", evil, b'{"name": "from-a-web-page", "type": "process"}')
    assert status == 403  # no CSRF token
    status, headers = _request(f"{prefect_server}/work_pools/", "OPTIONS",
                               {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert headers.get("access-control-allow-origin", headers.get("Access-Control-Allow-Origin")) in (None, "")
    from flows.deploy import ensure_pools

    assert ensure_pools(prefect_server, ["lossval-cpu-test"]) == ["lossval-cpu-test"]  # Prefect's own client still works


def test_the_mlflow_ui_allows_only_its_own_origin(tmp_path):
    from flows.ui import server_command

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    cmd = server_command(Project.load(tmp_path), 5123)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--cors-allowed-origins") + 1] == "http://127.0.0.1:5123,http://localhost:5123"


@pytest.fixture()
def workspace(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    return root


@pytest.mark.parametrize("params_file", ["../params.yaml", "/etc/passwd", "data/../../x.yaml"])
def test_a_params_file_outside_the_project_is_refused(workspace, params_file):
    with pytest.raises(ParamsError, match="must be a file inside the project"):
        check_flow_parameters(Project.load(workspace), params_file=params_file, project_dir=None)


@pytest.mark.parametrize("key", ["ingest.path", "reference.path"])
def test_an_input_override_outside_the_project_is_refused_unless_the_params_file_allows_it(workspace, key):
    project = Project.load(workspace, overrides={key: "/etc/passwd", "ingest.allow_outside_overrides": True})
    with pytest.raises(ParamsError, match=rf"override {key}='/etc/passwd' points outside the project"):
        check_flow_parameters(project, params_file="params.yaml", project_dir=None)  # an override cannot allow itself
    tree = yaml.safe_load((workspace / "params.yaml").read_text())
    tree["ingest"]["allow_outside_overrides"] = True
    (workspace / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    check_flow_parameters(Project.load(workspace, overrides={key: "/etc/passwd"}), params_file="params.yaml", project_dir=None)
    check_flow_parameters(Project.load(workspace, overrides={key: "data/raw.csv"}), params_file="params.yaml", project_dir=None)


def test_a_deployment_run_cannot_point_at_another_project(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSVAL_PROJECT_DIR", str(workspace))
    project = Project.load(workspace)
    with pytest.raises(ParamsError, match="is not this deployment's project"):
        check_flow_parameters(project, params_file="params.yaml", project_dir=str(tmp_path), deployment_run=True)
    check_flow_parameters(project, params_file="params.yaml", project_dir=str(workspace), deployment_run=True)
