"""Run lossval-clean unattended on this machine: ``lossval-clean deploy`` sets everything up, ``lossval-clean stop`` ends it.

``deploy``, in order:

1. a Prefect server on 127.0.0.1: the one ``PREFECT_API_URL`` names when it
   answers, else one started on that URL's port (default 4200; its database
   lives in ``PREFECT_HOME``). When the active Prefect profile has no API URL,
   it is set there, so that ``prefect deployment run ...`` in any shell talks
   to this server (``stop`` removes it again);
2. the work pools that ``prefect.yaml`` names, as process pools when missing
   (an existing pool, e.g. a Kubernetes pool for GPUs, is kept as it is);
3. the deployments of ``prefect.yaml`` (``prefect --no-prompt deploy --all``
   from the project root, with ``LOSSVAL_PROJECT_DIR`` set for the pull step);
4. a process worker on the pool of ``lossval-clean/prod`` (and, with
   ``--gpu-worker``, on the valuation deployment's pool too), in the
   background; it returns once each worker is online.

Processes, logs and state live in ``<data_dir>/ops/`` (see flows/processes.py).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from flows.processes import LOOPBACK, State, answers, child_env, port_free, spawn, stop, wait_until
from cleaning.project import Project

PREFECT_FILE = "prefect.yaml"
MAIN_DEPLOYMENT = "prod"
DEFAULT_PORT = 4200
SERVER = "server"
LOOPBACK_HOSTS = {LOOPBACK, "localhost"}


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    pool: str
    schedules: list[dict[str, Any]]


def read_deployments(project: Project) -> list[DeploymentSpec]:
    """The deployments of the project's prefect.yaml (YAML anchors resolved)."""
    path = project.root / PREFECT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{PREFECT_FILE} not found in {project.root}: it defines the deployments")
    specs = []
    for d in yaml.safe_load(path.read_text()).get("deployments") or []:
        specs.append(DeploymentSpec(d["name"], d["entrypoint"], d["work_pool"]["name"], d.get("schedules") or []))
    if not any(s.name == MAIN_DEPLOYMENT for s in specs):
        raise ValueError(f"{PREFECT_FILE} has no deployment named {MAIN_DEPLOYMENT!r}")
    return specs


# ---- the server ----------------------------------------------------------
def configured_api_url() -> str | None:
    """``PREFECT_API_URL`` from the environment or the active profile, if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def server_address(api_url: str | None) -> tuple[str, int]:
    """(host, port) of the API URL, or the loopback default; a URL that is not on this machine is refused."""
    if not api_url:
        return LOOPBACK, DEFAULT_PORT
    parts = urllib.parse.urlsplit(api_url)
    if parts.hostname not in LOOPBACK_HOSTS or not parts.port:
        raise RuntimeError(
            f"PREFECT_API_URL is {api_url}, which does not answer: lossval-clean deploy only starts a server on "
            f"{LOOPBACK}:PORT. Point PREFECT_API_URL at http://{LOOPBACK}:PORT/api, or unset it"
        )
    return LOOPBACK, parts.port


def api_url_for(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/api"


def server_security(port: int) -> dict[str, str]:
    """Settings for the server deploy starts: CSRF protection on (Prefect's clients and workers send the
    token), and CORS limited to the server's own UI, so a web page open in the operator's browser cannot
    create flow runs (Prefect's defaults are CSRF off and CORS ``*``)."""
    return {
        "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": f"http://{LOOPBACK}:{port},http://localhost:{port}",
    }


def ensure_server(project: Project, state: State) -> tuple[str, bool]:
    """Reuse or start the Prefect server; return (API URL, whether this call started it)."""
    configured = configured_api_url()
    if configured and answers(f"{configured.rstrip('/')}/health"):
        return configured.rstrip("/"), False
    _, port = server_address(configured)
    url = api_url_for(port)
    if answers(f"{url}/health"):
        return url, False
    if not port_free(port):
        raise RuntimeError(f"port {port} on {LOOPBACK} is taken by something that is not a Prefect server: set PREFECT_API_URL to another port")
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", LOOPBACK, "--port", str(port)]
    started = spawn(state, SERVER, cmd, env=child_env(project, {"PREFECT_API_URL": url, **server_security(port)}), cwd=project.root)
    wait_until(lambda: answers(f"{url}/health"), started=started, timeout=180, what=f"the Prefect server on {url}")
    return url, True


def remember_api_url(url: str, state: State) -> None:
    """Put the API URL into the active Prefect profile when it has none, so that plain `prefect ...` commands find the server."""
    import prefect.context
    from prefect.settings import PREFECT_API_URL, load_profiles, save_profiles

    profile = prefect.context.get_settings_context().profile
    profiles = load_profiles()
    if profile.name in profiles.names and profiles[profile.name].settings.get(PREFECT_API_URL):
        return
    profiles.update_profile(profile.name, {PREFECT_API_URL: url})
    save_profiles(profiles)
    state.settings["profile_api_url"] = profile.name
    state.save()


def forget_api_url(state: State) -> str | None:
    """Remove the API URL that deploy put into a profile; return that profile's name."""
    name = state.settings.pop("profile_api_url", None)
    if name is None:
        return None
    from prefect.settings import PREFECT_API_URL, load_profiles, save_profiles

    profiles = load_profiles()
    if name in profiles.names:
        profiles.update_profile(name, {PREFECT_API_URL: None})
        save_profiles(profiles)
    state.save()
    return name


# ---- pools, deployments, workers -----------------------------------------
@contextlib.contextmanager
def prefect_client(url: str) -> Iterator[Any]:
    """A synchronous Prefect client on ``url``, whatever the profile says."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        yield client


def ensure_pools(url: str, pools: list[str]) -> list[str]:
    """Create the missing pools as process pools; return the names created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    created = []
    with prefect_client(url) as client:
        for pool in dict.fromkeys(pools):
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                template = ProcessWorker.get_default_base_job_template()
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
                created.append(pool)
    return created


def apply_deployments(project: Project, url: str) -> str:
    """``prefect --no-prompt deploy --all`` from the project root; return its output."""
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", PREFECT_FILE]
    result = subprocess.run(cmd, cwd=project.root, env=child_env(project, {"PREFECT_API_URL": url}), capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"`prefect deploy --all` failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def deployed_names(url: str, names: list[str]) -> list[str]:
    """``flow/deployment`` of the deployments on the server named ``names``."""
    with prefect_client(url) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in client.read_deployments() if d.name in names)


def worker_name(pool: str) -> str:
    return f"{pool}@{socket.gethostname()}"


def worker_online(url: str, pool: str, name: str) -> bool:
    from prefect.client.schemas.objects import WorkerStatus

    with prefect_client(url) as client:
        return any(w.name == name and w.status == WorkerStatus.ONLINE for w in client.read_workers_for_work_pool(pool))


def ensure_workers(project: Project, state: State, url: str, pools: list[str]) -> dict[str, bool]:
    """A process worker on each pool, unless ours already runs there; all started at once, then waited for until online.

    Returns pool -> whether its worker was started now.
    """
    starting = {}
    for pool in dict.fromkeys(pools):
        key = f"worker:{pool}"
        if state.alive(key):
            continue
        cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process", "--name", worker_name(pool)]
        starting[pool] = spawn(state, key, cmd, env=child_env(project, {"PREFECT_API_URL": url}), cwd=project.root)
    for pool, started in starting.items():
        wait_until(lambda: worker_online(url, pool, worker_name(pool)), started=started, timeout=120, what=f"the worker on pool {pool!r}")
    return {pool: pool in starting for pool in dict.fromkeys(pools)}


# ---- the commands ----------------------------------------------------------
def deploy(project: Project, *, gpu_worker: bool = False, echo=print) -> dict[str, Any]:
    """Server, pools, deployments, workers; returns what it did (also printed through ``echo``)."""
    specs = read_deployments(project)
    main = next(s for s in specs if s.name == MAIN_DEPLOYMENT)
    state = State(project)
    url, server_started = ensure_server(project, state)
    echo(f"Prefect server: {url.removesuffix('/api')} ({'started' if server_started else 'already running'}; log in {state.log(SERVER)})")
    remember_api_url(url, state)
    created = ensure_pools(url, [s.pool for s in specs])
    echo(f"work pools: {', '.join(dict.fromkeys(s.pool for s in specs))}" + (f" (created {', '.join(created)})" if created else ""))
    apply_deployments(project, url)
    names = deployed_names(url, [s.name for s in specs])
    echo(f"deployments: {', '.join(names)}")
    for schedule in main.schedules:
        echo(f"  {MAIN_DEPLOYMENT} runs on cron {schedule.get('cron')!r} in time zone {schedule.get('timezone', 'UTC')} (prefect.yaml)")
    worker_pools = [main.pool] + ([s.pool for s in specs if s.pool != main.pool] if gpu_worker else [])
    for pool, fresh in ensure_workers(project, state, url, worker_pools).items():
        echo(f"worker on {pool}: {'started' if fresh else 'already running'} (log in {state.log('worker:' + pool)})")
    other_pools = [s.pool for s in specs if s.pool not in worker_pools]
    if other_pools:
        echo(f"no worker here for {', '.join(dict.fromkeys(other_pools))}: start one on a GPU machine (docs/deployment.md) "
             "before setting value.deployment in params.yaml")
    echo("\nnext: prefect deployment run lossval-clean/prod --watch    # a run now")
    echo("      lossval-clean ui                                       # compare runs in MLflow")
    echo("      lossval-clean stop                                     # stop the workers and the server")
    return {"api_url": url, "server_started": server_started, "pools": [s.pool for s in specs], "deployments": names, "workers": worker_pools}


def stop_all(project: Project, *, echo=print) -> list[str]:
    """Stop what deploy and ui started for this project: workers first, then the MLflow UI, then the server."""
    state = State(project)
    order = sorted(state.processes, key=lambda n: (n == SERVER, not n.startswith("worker:")))
    stopped = []
    for name in order:
        began = time.monotonic()
        if stop(state.processes[name]):
            stopped.append(name)
            echo(f"stopped {name} (pid {state.processes[name].pid}) in {time.monotonic() - began:.1f} s")
        del state.processes[name]
        state.save()
    profile = forget_api_url(state)
    if profile:
        echo(f"removed PREFECT_API_URL from the Prefect profile {profile!r}")
    if not stopped:
        echo("nothing was running")
    return stopped
