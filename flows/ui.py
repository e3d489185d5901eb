"""``lossval-clean ui``: the MLflow UI on 127.0.0.1, on the project's tracking store, to compare runs.

Every pipeline run is one MLflow run of the experiment ``tracking.experiment``
(default ``lossval-clean``), named "<dataset> <date>", tagged ``trigger``
(scheduled / manual / dvc), ``git_commit``, ``device``, with the same param
and metric names every night: select runs and press Compare to line them up.
"""

from __future__ import annotations

import subprocess
import sys

from flows.processes import LOOPBACK, State, answers, child_env, free_port, port_free, spawn, wait_until
from cleaning.project import Project

UI = "mlflow-ui"
DEFAULT_PORT = 5000


def server_command(project: Project, port: int) -> list[str]:
    from cleaning.tracking import tracking_uri

    return [
        sys.executable, "-m", "mlflow", "server", "--host", LOOPBACK, "--port", str(port),
        "--backend-store-uri", tracking_uri(project), "--default-artifact-root", (project.root / "mlruns").as_uri(),
        "--workers", "1",
        "--cors-allowed-origins", f"http://{LOOPBACK}:{port},http://localhost:{port}",  # its own UI only
    ]


def runs_page(project: Project) -> str:
    """The path of the experiment's runs table in the UI (the experiment is created, tagged for that view, if it is missing)."""
    from cleaning.tracking import experiment_id

    return f"/#/experiments/{experiment_id(project)}/runs"


def serve(project: Project, *, port: int | None = None, detach: bool = False, echo=print) -> int:
    """Start the MLflow server on the project's store; in the foreground until Ctrl-C, or in the background with ``detach``."""
    from cleaning.secrets import redact
    from cleaning.tracking import _is_local, tracking_uri

    uri = tracking_uri(project)
    if not _is_local(uri):
        echo(f"runs are tracked on the MLflow server {redact(uri)}: open it in a browser")
        return 0
    state = State(project)
    running = state.alive(UI)
    if running is not None:
        echo(f"the MLflow UI already runs (pid {running.pid}, log {running.log})")
        return 0
    page = runs_page(project)  # before the server starts: creates the store's tables and the experiment once
    port = port or (DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port())
    if not port_free(port):
        raise RuntimeError(f"port {port} on {LOOPBACK} is in use: pick another with --port")
    base = f"http://{LOOPBACK}:{port}"
    cmd = server_command(project, port)
    env = child_env(project, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no GenAI job runner: 7 fewer processes
    if detach:
        started = spawn(state, UI, cmd, env=env, cwd=project.root)
        wait_until(lambda: answers(f"{base}/health"), started=started, timeout=180, what=f"the MLflow UI on {base}")
        echo(f"MLflow UI: {base}{page}  (store {uri}; stop it with: lossval-clean stop)")
        return 0
    echo(f"MLflow UI: {base}{page}  (store {uri}); stop it with Ctrl-C")
    proc = subprocess.Popen(cmd, cwd=project.root, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait(timeout=30)
