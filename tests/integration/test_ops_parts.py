"""The parts behind deploy / ui / stop, without servers: prefect.yaml, addresses, processes, trigger, drift (seconds)."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from flows.deploy import DEFAULT_PORT, read_deployments, server_address
from flows.processes import State, Started, child_env, spawn, stop
from flows.trigger import detect_trigger
from schemas.params import ParamsError, load_params
from cleaning.project import Project
from tests.helpers import REPO


@pytest.fixture()
def tiny_project(tmp_path) -> Project:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return Project.load(tmp_path)


def test_prefect_yaml_defines_prod_nightly_and_the_gpu_valuation():
    from flows.pipeline import lossval_clean
    from flows.value_flow import lossval_value

    specs = {s.name: s for s in read_deployments(Project.load(REPO))}
    prod, gpu = specs["prod"], specs["gpu"]
    assert prod.entrypoint == "flows/pipeline.py:lossval_clean" and lossval_clean.name == "lossval-clean"
    assert gpu.entrypoint == "flows/value_flow.py:lossval_value" and lossval_value.name == "lossval-value"
    assert (prod.pool, gpu.pool) == ("lossval-cpu", "lossval-gpu")
    (nightly,) = prod.schedules
    assert set(nightly) >= {"cron", "timezone"} and len(nightly["cron"].split()) == 5
    assert not gpu.schedules  # only called by prod
    from zoneinfo import ZoneInfo

    ZoneInfo(nightly["timezone"])  # a real IANA name


def test_server_address_is_loopback_only():
    assert server_address(None) == ("127.0.0.1", DEFAULT_PORT)
    assert server_address("http://127.0.0.1:4311/api") == ("127.0.0.1", 4311)
    assert server_address("http://localhost:4999/api") == ("127.0.0.1", 4999)
    with pytest.raises(RuntimeError, match="only starts a server on 127.0.0.1"):
        server_address("http://10.1.2.3:4200/api")


def test_value_deployment_is_null_by_default_and_must_name_flow_and_deployment():
    assert load_params(REPO / "params.yaml").value.deployment is None
    assert load_params(REPO / "params.yaml", {"value.deployment": "lossval-value/gpu"}).value.deployment == "lossval-value/gpu"
    with pytest.raises(ParamsError, match="value.deployment"):
        load_params(REPO / "params.yaml", {"value.deployment": "gpu"})


def test_trigger_outside_a_deployment_is_manual_unless_given():
    assert detect_trigger(None) == "manual"
    assert detect_trigger("dvc") == "dvc"


def test_stop_ends_a_background_process_and_its_children(tiny_project):
    state = State(tiny_project)
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); time.sleep(300)"
    started = spawn(state, "sleeper", [sys.executable, "-c", child], env=child_env(tiny_project), cwd=tiny_project.root)
    deadline = time.monotonic() + 30
    while len(started.process().children()) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    family = [started.process(), *started.process().children()]
    assert State(tiny_project).alive("sleeper") == started  # recorded on disk
    assert stop(started, timeout=2)
    assert not any(p.is_running() and p.status() != "zombie" for p in family)
    assert not stop(started)  # already gone


def test_stop_never_signals_a_pid_that_is_no_longer_ours():
    me = Started("not-ours", pid=os.getpid(), create_time=0.0, log="")
    assert me.process() is None and not stop(me)


