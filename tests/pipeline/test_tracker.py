"""cleaning.tracking.Tracker against a real sqlite MLflow store (no mocks): one tracker object per run."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from lossval.model import MLP, export_state
from cleaning.tracking import CHAMPION, Tracker
from cleaning.transaction import close_abandoned_runs
from schemas.dataset import model_schema, validate_rows
from cleaning.project import Project
from tests.helpers import EXAMPLE, REPO, git_commit_all

SYSTEM = ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes")


@pytest.fixture()
def project(tmp_path, use_mlflow) -> Project:
    """A project folder that is its own git checkout (params.yaml committed), with its own experiment."""
    root = tmp_path / "project"
    root.mkdir()
    tree = yaml.safe_load((REPO / "params.yaml").read_text())
    tree["tracking"]["experiment"] = f"tracker-{tmp_path.name}"
    tree["tracking"]["registered_model"] = f"model-{tmp_path.name}"
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    git_commit_all(root, "params")
    return Project.load(root)


def _head(root) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, MLP]:
    """Elec2 rows with a categorical column (``season``) and a classifier trained on them (export_state)."""
    frame = pd.read_csv(EXAMPLE / "electricity.csv").head(400)
    frame["season"] = np.where(frame["date"] < 0.5, "early", "late")
    features = ["season", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]
    model = MLP("classification", epochs=3, random_state=0, progress=False).fit(frame[features], frame["target"])
    return frame[[*features, "target"]].assign(row_id=[f"r{i}" for i in range(len(frame))]), model


def test_a_run_carries_mlflow_source_tags_and_system_metrics(project):
    """As from the ``lossval-clean`` console script or a Prefect worker, sys.argv[0] (pytest) is no file of the project's
    checkout, so MLflow's own resolution from it finds no commit of the project: the tags come from the project root."""
    from mlflow.utils.git_utils import get_git_commit

    assert get_git_commit(sys.argv[0]) != _head(project.root)
    tracker = Tracker.start(project, trigger="manual", tags={"device": "cpu"})
    assert mlflow.active_run().info.run_id == tracker.run_id  # MLflow's fluent run
    tracker.end("FINISHED")  # shorter than one sampling interval (10 s): still one sample
    run = MlflowClient().get_run(tracker.run_id)
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == _head(project.root) and tags["mlflow.source.git.branch"]
    assert tags["mlflow.source.name"] == "lossval-clean" and "git_commit" not in tags
    assert tags["trigger"] == "manual" and tags["dataset"] == "electricity" and tags["device"] == "cpu"
    assert run.info.run_name == tracker.run_name and run.info.run_name.startswith("electricity 20") and run.info.status == "FINISHED"
    assert set(SYSTEM) <= set(run.data.metrics)
    assert mlflow.active_run() is None and not close_abandoned_runs(project)
    assert tracker.url.endswith(f"/#/experiments/{tracker.experiment_id}/runs/{tracker.run_id}")


def test_a_failed_run_ends_failed_with_a_redacted_failure(project):
    tracker = Tracker.start(project, trigger="manual")
    tracker.end("FAILED", failure=RuntimeError("POST http://user:secret@mlflow.example/api failed"))
    run = MlflowClient().get_run(tracker.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure"] == "RuntimeError: POST http://***@mlflow.example/api failed"


def test_a_run_ended_on_another_thread_is_no_longer_active(project):
    tracker = Tracker.start(project, trigger="manual")
    worker = threading.Thread(target=tracker.end, args=("KILLED",))
    worker.start()
    worker.join()
    assert MlflowClient().get_run(tracker.run_id).info.status == "KILLED" and mlflow.active_run() is None


def test_the_result_inputs_failures_and_a_label_predicting_champion(project, mixed, caplog, monkeypatch):
    frame, model = mixed
    state = export_state(model)
    tracker = Tracker.start(project, trigger="manual")
    train, reference, test = frame.iloc[:300], frame.iloc[300:350], frame.iloc[350:]
    tracker.log_inputs(train=train, reference=reference, test=test)
    raw = pd.read_csv(EXAMPLE / "electricity.csv", dtype=str).head(30).assign(row_id=[f"x{i}" for i in range(30)])
    raw.loc[3, "nswprice"], raw.loc[5, "target"] = "2.5", "SIDEWAYS"  # out of range, unknown class
    checked = validate_rows(raw, schema=model_schema("electricity_example"), target="target", task="classification",
                            duplicate=pd.Series(False, index=raw.index))  # fmt: skip
    tracker.log_schema_failures(checked.failure_cases)
    caplog.set_level(logging.INFO, logger="lossval_clean")
    log_epoch = tracker.epoch_logger()
    for epoch in (1, 2):
        log_epoch(epoch, {"loss": 1.0 / epoch, "seconds": 0.1})
    lines = [r.getMessage() for r in caplog.records if r.name == "lossval_clean"]  # the flow run's log shows the epochs go by
    assert lines == ["valuation epoch 1: loss 1, seconds 0.1"], lines  # then one line per 10 s at most
    values = pd.DataFrame({"row_id": train["row_id"], "value": np.linspace(-1, 1, len(train))})
    report = tracker.project.root / "report.html"
    report.write_text("<html></html>")
    uri, version = tracker.log_result(
        params={"input_sha256": "0" * 64}, metrics={"rows_in": 300, "test_accuracy_all": 0.8, "gain_clean": float("nan")},
        tags={"promoted": "clean", "champion_reason": "better"}, values=values, quarantine=values.head(3).assign(reason="value:low"),
        report_paths={"report.html": report}, lossval_state=state, downstream_state=state, class_names=None,
        train_frame=train, snapshot_hash="abc123",
    )  # fmt: skip
    tracker.end()

    client = MlflowClient()
    run = client.get_run(tracker.run_id)
    contexts = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(contexts) == {"training", "reference", "evaluation"}
    assert '"num_rows": 300' in contexts["training"].profile and '"num_rows": 50' in contexts["evaluation"].profile
    assert "season" in contexts["training"].schema and contexts["training"].name == "electricity.csv"
    table = json.loads(open(client.download_artifacts(tracker.run_id, "schema_failures.json")).read())
    failures = pd.DataFrame(table["data"], columns=table["columns"])
    assert {"schema_context", "column", "check", "failure_case", "index"} <= set(failures.columns)
    assert {"nswprice", "target"} <= set(failures["column"]) and "SIDEWAYS" in set(failures["failure_case"].astype(str))
    metrics = run.data.metrics
    assert metrics["rows_in"] == 300 and "gain_clean" not in metrics and metrics["value_min"] == -1
    assert [m.value for m in client.get_metric_history(tracker.run_id, "loss")] == [1.0, 0.5]
    assert run.data.params["input_sha256"] == "0" * 64 and run.data.params["tracking.experiment"] == project.params.tracking.experiment
    assert run.data.tags["dvc_snapshot"] == "abc123" and run.data.tags["promoted"] == "clean"
    assert {"values.parquet", "quarantine.parquet", "report.html", "schema_failures.json"} <= {a.path for a in client.list_artifacts(tracker.run_id)}

    name = project.params.tracking.registered_model
    mv = client.get_model_version_by_alias(name, CHAMPION)
    assert str(mv.version) == version and mv.tags["variant"] == "clean" and mv.tags["classes"] == '["DOWN", "UP"]'
    assert tracker.champion_version() == version
    served = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    assert served.metadata.metadata["classes"] == ["DOWN", "UP"]
    rows = frame.drop(columns=["target", "row_id"]).iloc[350:]
    predicted = np.asarray(served.predict(rows))
    assert set(predicted) <= {"DOWN", "UP"} and len(predicted) == len(rows)
    assert (predicted == model.predict(rows)).all()  # the served model predicts as the estimator it was exported from
    rows.to_csv(project.root / "rows.csv", index=False)
    fresh = subprocess.run(  # another process, without this checkout on its path: the model brings its own code
        [sys.executable, "-c", "import sys, mlflow, pandas as pd; print(list(mlflow.pyfunc.load_model(sys.argv[1]).predict(pd.read_csv(sys.argv[2]))))",
         f"models:/{name}@{CHAMPION}", str(project.root / "rows.csv")],
        cwd=project.root, capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert fresh.stdout.strip().splitlines()[-1] == str(list(predicted))

    tracker.unregister(previous_champion=None)
    assert not client.search_model_versions(f"name='{name}'") and "dvc_snapshot" not in client.get_run(tracker.run_id).data.tags

    monkeypatch.setattr("cleaning.tracking.EPOCH_LINE_SECONDS", 0.0)  # a long night: every epoch takes longer than that
    slow = tracker.epoch_logger()
    for epoch in (1, 2):
        slow(epoch, {"loss": 1.0 / epoch, "seconds": 0.1})
    assert [r.getMessage() for r in caplog.records if r.name == "lossval_clean"][-2:] == [
        "valuation epoch 1: loss 1, seconds 0.1", "valuation epoch 2: loss 0.5, seconds 0.1"]


def test_resume_logs_epochs_to_the_parent_and_values_in_a_nested_run(project):
    parent = Tracker.start(project, trigger="manual")
    found: dict = {}

    def worker() -> None:  # another worker: no active run in this thread
        valuation = Tracker.resume(project, parent.run_id)
        valuation.epoch_logger()(1, {"loss": 0.5})
        found["child"] = valuation.child_run_id
        valuation.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    client = MlflowClient()
    child = client.get_run(found["child"])
    assert child.info.run_name == "valuation" and child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == parent.run_id and set(SYSTEM) <= set(child.data.metrics)
    assert [m.value for m in client.get_metric_history(parent.run_id, "loss")] == [0.5]
    assert client.get_run(parent.run_id).info.status == "RUNNING"
    in_process = Tracker.resume(project, parent.run_id)  # on the parent's own thread: nested under its active run
    in_process.close("FAILED")
    assert client.get_run(in_process.child_run_id).info.status == "FAILED" and mlflow.active_run().info.run_id == parent.run_id
    parent.end()
    assert client.get_run(parent.run_id).info.status == "FINISHED" and mlflow.active_run() is None


def test_past_value_quantiles_lists_finished_runs_of_the_dataset(project):
    for median in (0.1, 0.2):
        tracker = Tracker.start(project, trigger="manual")
        tracker.client.log_batch(tracker.run_id, metrics=[mlflow.entities.Metric(k, median, 0, 0) for k in
                                                          ("value_p05", "value_p25", "value_median", "value_p75", "value_p95")])
        tracker.end()
    current = Tracker.start(project, trigger="manual")
    past = current.past_value_quantiles(limit=5)
    current.end()
    assert list(past["value_median"]) == [0.1, 0.2] and list(past.columns[:2]) == ["run", "value_p05"]


def test_the_link_to_a_run_on_a_server_carries_no_credentials(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://user:s3cret@mlflow.example.org/")
    tracker = Tracker(project, run_id="r1", run_name="electricity 2026-12-01 02:00", experiment_id="7")
    assert tracker.url == "https://mlflow.example.org/#/experiments/7/runs/r1"


def test_the_served_model_predicts_numbers_for_regression(white_wine, tmp_path):
    from mlflow.pyfunc import PythonModelContext

    from cleaning.serving import STATE, LabelModel

    features = white_wine.drop(columns=["target"]).head(300)
    model = MLP("regression", epochs=3, random_state=0, progress=False).fit(features, white_wine["target"].head(300))
    torch.save(export_state(model), tmp_path / "state.pt")
    served = LabelModel()
    served.load_context(PythonModelContext(artifacts={STATE: str(tmp_path / "state.pt")}, model_config={}))
    predicted = served.predict(None, features.head(20))
    assert predicted.dtype == np.float64 and np.allclose(predicted, model.predict(features.head(20)), atol=1e-4)
