"""Background processes that ``lossval-clean deploy`` and ``ui`` start, and ``stop`` ends.

Each process runs in its own session (so it outlives the command that started
it and can be stopped as a group) and logs to a file. Its pid and start time
are kept in ``<data_dir>/ops/state.json``: a pid is only ever signalled while
it still belongs to the process we started (same start time), never by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from lossval.io import write_text
from cleaning.project import Project

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Started:
    """A process we started: its pid, start time (to recognise it later) and log file."""

    name: str
    pid: int
    create_time: float
    log: str

    def process(self) -> psutil.Process | None:
        """The live process, or None when it ended (or its pid now belongs to another process)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self.process() is not None


class State:
    """``<data_dir>/ops/state.json``: the processes started for this project, and settings to undo at stop."""

    def __init__(self, project: Project) -> None:
        self.dir = project.data_dir / "ops"
        self.path = self.dir / "state.json"
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.processes = {name: Started(**p) for name, p in data.get("processes", {}).items()}
        self.settings: dict[str, str] = data.get("settings", {})

    def save(self) -> None:
        data = {"processes": {n: asdict(p) for n, p in self.processes.items()}, "settings": self.settings}
        write_text(json.dumps(data, indent=2), self.path)

    def alive(self, name: str) -> Started | None:
        started = self.processes.get(name)
        return started if started is not None and started.alive() else None

    def log(self, name: str) -> Path:
        return self.dir / f"{name.replace(':', '-')}.log"


def child_env(project: Project, extra: Mapping[str, str] = ()) -> dict[str, str]:
    """This environment, with this interpreter's scripts first on PATH, the project first on PYTHONPATH, telemetry off."""
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(p for p in (str(project.root), env.get("PYTHONPATH", "")) if p),
            "LOSSVAL_PROJECT_DIR": str(project.root),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "DVC_NO_ANALYTICS": "1",
        }
    )
    env.update(extra)
    return env


def spawn(state: State, name: str, cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> Started:
    """Start ``cmd`` in the background, in its own session, logging to ``ops/<name>.log``; record it in the state."""
    log = state.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    started = Started(name=name, pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(), log=str(log))
    state.processes[name] = started
    state.save()
    return started


def stop(started: Started, *, timeout: float = 20.0) -> bool:
    """Stop the process and its children; True if it was running.

    SIGTERM goes to the process first: a ``prefect worker`` or ``mlflow server``
    command hands it on to its children and shuts down cleanly. Children still
    there 2 s after it ended (or after ``timeout / 2`` s) get SIGTERM
    themselves, and whatever is left ``timeout / 2`` s later gets SIGKILL.
    """
    proc = started.process()
    if proc is None:
        return False
    family = _family(proc)
    _signal(proc, signal.SIGTERM)
    psutil.wait_procs([proc], timeout=timeout / 2)
    _, alive = psutil.wait_procs(family, timeout=2)
    for sig, wait in ((signal.SIGTERM, timeout / 2), (signal.SIGKILL, 5)):
        if not alive:
            break
        alive = list({p.pid: p for p in (*alive, *(c for p in alive for c in _family(p)))}.values())
        for p in alive:
            _signal(p, sig)
        _, alive = psutil.wait_procs(alive, timeout=wait)
    return True


def _family(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def wait_until(ready: Callable[[], bool], *, started: Started | None, timeout: float, what: str) -> None:
    """Poll ``ready`` until it holds; fail early with the log's tail when ``started`` died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if started is not None and not started.alive():
            raise RuntimeError(f"{what} exited before it was ready; its log ({started.log}) ends with:\n{log_tail(started)}")
        time.sleep(0.5)
    tail = f"; its log ({started.log}) ends with:\n{log_tail(started)}" if started else ""
    raise RuntimeError(f"{what} was not ready after {timeout:.0f} s{tail}")


def log_tail(started: Started, lines: int = 15) -> str:
    try:
        return "\n".join(Path(started.log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when an HTTP GET of ``url`` returns 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URLs we built)
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
