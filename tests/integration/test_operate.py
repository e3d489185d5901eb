"""Operating lossval-clean for real: deploy, a manual and a scheduled deployment run, the MLflow UI in a browser, stop.

One Prefect server, two process workers (lossval-cpu for the flow, lossval-gpu
standing in for a GPU machine), one MLflow server and one headless chromium,
all on 127.0.0.1, all started by the commands a user types and stopped by
``lossval-clean stop`` (the fixtures kill what is left, even on failure).
The tests run in file order and share the runs: about 4 minutes on 2 cores.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from flows.deploy import prefect_client
from flows.processes import State, answers, free_port
from lossval.ledger import Ledger
from cleaning.project import Project
from cleaning.report import PLOTS
from tests.integration.conftest import EPOCHS

MANUAL_OVERRIDES = {"value.epochs": 2, "retrain.epochs": 2}
# the metrics every pipeline run logs (see README, "What every MLflow run holds")
RUN_METRICS = {
    "rows_in", "rows_quarantined_schema", "rows_quarantined_value", "rows_clean",
    "test_accuracy_all", "test_accuracy_clean", "test_macro_f1_all", "test_macro_f1_clean",
    "value_min", "value_p05", "value_p25", "value_median", "value_p75", "value_p95", "value_max", "value_mean", "value_std",
    "loss", "weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max",
}


def _mlflow(deployed) -> tuple[MlflowClient, str]:
    client = MlflowClient(f"sqlite:///{deployed.root / 'mlflow.db'}")
    return client, client.get_experiment_by_name("lossval-clean").experiment_id


def _mlflow_run(deployed, trigger: str):
    client, experiment_id = _mlflow(deployed)
    (run,) = client.search_runs([experiment_id], filter_string=f"tags.trigger = '{trigger}'")
    return run


@pytest.fixture(scope="module")
def manual_run(deployed):
    """`prefect deployment run lossval-clean/prod --watch` with parameter overrides, exactly as a user types it."""
    started = time.monotonic()
    result = deployed.prefect(
        "deployment", "run", "lossval-clean/prod", "--watch", "--param", f"overrides={json.dumps(MANUAL_OVERRIDES)}", timeout=900
    )
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", result.stdout).group(1)
    with prefect_client(deployed.api_url) as client:
        flow_run = client.read_flow_run(flow_run_id)
    return {"output": result.stdout, "flow_run": flow_run, "seconds": time.monotonic() - started}


@pytest.fixture(scope="module")
def scheduled_run(deployed, manual_run):
    """A run the nightly schedule created, moved to now; params.yaml first sends the valuation to the lossval-gpu pool."""
    params_path = deployed.root / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["value"]["deployment"] = "lossval-value/gpu"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.states import Scheduled

    with prefect_client(deployed.api_url) as client:
        deployment = client.read_deployment_by_name("lossval-clean/prod")
        only_prod = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        deadline = time.monotonic() + 120
        while not (upcoming := [r for r in client.read_flow_runs(deployment_filter=only_prod) if r.auto_scheduled and r.state_name == "Scheduled"]):
            assert time.monotonic() < deadline, "the scheduler created no run for the nightly schedule"
            time.sleep(2)
        nightly = min(upcoming, key=lambda r: r.expected_start_time)
        client.set_flow_run_state(nightly.id, Scheduled(scheduled_time=datetime.now(timezone.utc)), force=True)
        deadline = time.monotonic() + 900
        while not (flow_run := client.read_flow_run(nightly.id)).state.is_final():
            assert time.monotonic() < deadline, f"the scheduled run is still {flow_run.state_name}"
            time.sleep(2)
        value_deployment = client.read_deployment_by_name("lossval-value/gpu")
        children = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[value_deployment.id])))
        parents = {c.id: client.read_task_run(c.parent_task_run_id).flow_run_id for c in children if c.parent_task_run_id}
    return {"flow_run": flow_run, "nightly": nightly, "children": children, "parents": parents}


def test_deploy_registers_the_nightly_schedule_as_documented(deployed):
    assert "worker on lossval-cpu: started" in deployed.deploy_output and "worker on lossval-gpu: started" in deployed.deploy_output
    documented = next(d for d in yaml.safe_load((deployed.root / "prefect.yaml").read_text())["deployments"] if d["name"] == "prod")
    (nightly,) = documented["schedules"]

    inspected = json.loads(deployed.prefect("deployment", "inspect", "lossval-clean/prod", "--output", "json").stdout)
    (schedule,) = inspected["schedules"]
    assert schedule["schedule"]["cron"] == nightly["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == nightly["timezone"]
    assert schedule["active"] is True
    assert inspected["work_pool_name"] == "lossval-cpu"
    assert inspected["entrypoint"] == "flows/pipeline.py:lossval_clean"
    assert inspected["parameters"] == documented["parameters"] == {"params_file": "params.yaml", "overrides": {}}
    # overlapping runs queue in Prefect (AwaitingConcurrencySlot) instead of a worker sleeping on the project lock
    assert inspected["global_concurrency_limit"]["limit"] == documented["concurrency_limit"]["limit"] == 1
    assert inspected["concurrency_options"]["collision_strategy"] == documented["concurrency_limit"]["collision_strategy"] == "ENQUEUE"
    (pull,) = inspected["pull_steps"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == str(deployed.root)

    gpu = json.loads(deployed.prefect("deployment", "inspect", "lossval-value/gpu", "--output", "json").stdout)
    assert gpu["work_pool_name"] == "lossval-gpu" and not gpu["schedules"]


def test_manual_deployment_run_completes_and_is_recorded(deployed, manual_run):
    assert manual_run["flow_run"].state_name == "Completed"
    assert "Completed" in manual_run["output"]
    run = _mlflow_run(deployed, "manual")
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("raw ") and re.fullmatch(r"raw \d{4}-\d\d-\d\d \d\d:\d\d", run.info.run_name)
    assert RUN_METRICS <= set(run.data.metrics)
    assert run.data.metrics["rows_in"] == 600
    assert run.data.metrics["rows_in"] == sum(run.data.metrics[k] for k in ("rows_quarantined_schema", "rows_quarantined_value", "rows_clean"))
    assert run.data.params["value.epochs"] == "2" and run.data.params["retrain.epochs"] == "2"  # the --param overrides
    tags = run.data.tags
    assert tags["dataset"] == "raw" and tags["device"] == "cpu" and tags["value_deployment"] == "in-process"
    assert re.fullmatch(r"[0-9a-f]{40}", tags["mlflow.source.git.commit"])  # MLflow's own source tags, from the project's checkout
    assert tags["dvc_experiment"] and tags["dvc_snapshot"].endswith(".dir")


def test_scheduled_run_values_on_the_gpu_pool(deployed, scheduled_run):
    flow_run = scheduled_run["flow_run"]
    assert flow_run.state_name == "Completed" and flow_run.auto_scheduled
    (child,) = scheduled_run["children"]  # the valuation, as its own deployment run on the lossval-gpu pool
    assert child.state_name == "Completed" and child.work_pool_name == "lossval-gpu"
    assert scheduled_run["parents"][child.id] == flow_run.id

    client, _ = _mlflow(deployed)
    run = _mlflow_run(deployed, "scheduled")
    assert run.info.status == "FINISHED"
    assert run.data.tags["value_deployment"] == "lossval-value/gpu" and run.data.tags["device"] == "cpu"
    assert run.data.params["value.epochs"] == str(EPOCHS)
    # per-epoch metrics arrived live from the worker that trained
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(1, EPOCHS + 1))


def test_runs_line_up_and_the_report_tracks_rows_across_runs(deployed, manual_run, scheduled_run, tmp_path):
    client, _ = _mlflow(deployed)
    manual, scheduled = _mlflow_run(deployed, "manual"), _mlflow_run(deployed, "scheduled")
    # the same param and metric names every night, so that the MLflow compare view lines them up
    assert set(manual.data.params) == set(scheduled.data.params)
    assert set(manual.data.metrics) == set(scheduled.data.metrics)
    assert set(manual.data.tags) >= {"trigger", "mlflow.source.git.commit", "dataset", "device"}

    artifacts = {a.path for a in client.list_artifacts(scheduled.info.run_id)}
    assert {"report.html", *PLOTS} <= artifacts
    report = open(client.download_artifacts(scheduled.info.run_id, "report.html", str(tmp_path))).read()
    assert "previous run" in report and "change" in report
    assert "Rows quarantined in more than one run" in report

    ledger = Ledger.load(Project.load(deployed.root).ledger_path)
    assert list(ledger.runs()["run_id"]) == [manual.info.run_id, scheduled.info.run_id]
    status = ledger.status()
    twice = status[status["times_quarantined"] == 2]
    assert len(twice) > 0  # rows flagged on both nights: how often and when
    assert (pd.to_datetime(twice["last_quarantined"]) >= pd.to_datetime(twice["first_quarantined"])).all()
    assert set(twice["last_run_id"]) == {scheduled.info.run_id}


def test_mlflow_ui_lists_both_runs_and_renders_the_report(deployed, manual_run, scheduled_run, browser, tmp_path):
    port = free_port()
    result = deployed.cli("ui", "--detach", "--port", str(port), timeout=300)
    base = f"http://127.0.0.1:{port}"
    assert base in result.stdout
    _, experiment_id = _mlflow(deployed)
    names = [_mlflow_run(deployed, t).info.run_name for t in ("manual", "scheduled")]

    browser.open(f"{base}/#/experiments/{experiment_id}/runs")
    listed = browser.poll(
        # each run's name appears in the table (twice when both runs started in the same minute)
        f"(() => {{ const t = document.body.innerText, names = {json.dumps(names)};"
        " return names.every(n => t.split(n).length - 1 >= names.filter(m => m === n).length) ? t : null })()"
    )
    assert "lossval-clean" in listed
    browser.screenshot(tmp_path / "mlflow-runs.png")

    scheduled = _mlflow_run(deployed, "scheduled")
    browser.open(f"{base}/#/experiments/{experiment_id}/runs/{scheduled.info.run_id}/artifacts/report.html")
    page = browser.poll(
        "(() => { const imgs = Array.from(document.images);"
        " return document.readyState === 'complete' && imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
        " ? {title: document.title, images: imgs.map(i => i.alt), headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent)}"
        " : null })()",
        frames=True,  # the artifact view shows report.html in an iframe
    )
    browser.screenshot(tmp_path / "mlflow-report.png")
    assert page["title"].startswith("lossval-clean")
    assert set(page["images"]) == set(PLOTS.values())
    assert "Rows quarantined in more than one run" in page["headings"]


def test_stop_stops_everything_workers_first(deployed):
    state = State(Project.load(deployed.root))
    before = dict(state.processes)
    assert {"server", "worker:lossval-cpu", "worker:lossval-gpu"} <= set(before)
    result = deployed.cli("stop", timeout=300)
    order = re.findall(r"stopped (\S+) \(pid", result.stdout)
    assert order.index("server") == len(order) - 1 and set(order) == {n for n, s in before.items()}
    assert not any(s.alive() for s in before.values())
    assert not answers(f"{deployed.api_url}/health")
    profiles = Path(deployed.env["PREFECT_HOME"]) / "profiles.toml"
    assert not profiles.exists() or "PREFECT_API_URL" not in profiles.read_text()
