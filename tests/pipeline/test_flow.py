"""The lossval-clean flow end to end, for real: Prefect test harness, MLflow sqlite, DVC with a local remote."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from flows.pipeline import lossval_clean
from lossval.ledger import Ledger
from cleaning.project import Project
from tests.helpers import run_command

pytestmark = pytest.mark.usefixtures("prefect_harness")

EPOCH_METRICS = ("loss", "weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max")


def _ids(path) -> set[str]:
    return set(pd.read_parquet(path)["row_id"].astype(str))


def _input_ids(project: Project) -> set[str]:
    from lossval.rows import assign_row_ids, read_table

    ids, _ = assign_row_ids(read_table(project.input_path(project.params.ingest.path)))
    return set(ids)


def test_flow_end_to_end(project_dir):
    summary = lossval_clean(project_dir=str(project_dir))
    project = Project.load(project_dir)
    snap = project.snapshot_dir

    # every input row is in exactly one of clean and quarantine, by id
    clean, quarantined = _ids(snap / "clean.parquet"), _ids(snap / "quarantine.parquet")
    assert not clean & quarantined
    assert clean | quarantined == _input_ids(project)
    assert summary["rows_in"] == summary["rows_quarantined_schema"] + summary["rows_quarantined_value"] + summary["rows_clean"] == 600

    client = MlflowClient()
    experiment = client.get_experiment_by_name(project.params.tracking.experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == summary["run_id"] and run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["quarantine.strategy"] == "auto" and params["value.epochs"] == "3" and len(params["input_sha256"]) == 64
    assert metrics["rows_in"] == metrics["rows_quarantined_schema"] + metrics["rows_quarantined_value"] + metrics["rows_clean"]
    for name in ("test_accuracy_all", "test_accuracy_clean", "test_macro_f1_all", "test_macro_f1_clean"):
        assert 0 <= metrics[name] <= 1
    for name in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"values.parquet", "quarantine.parquet", "report.html", "values_hist.png", "values_sorted.png", "training.png"} <= artifacts
    assert tags["trigger"] == "manual" and tags["device"] == "cpu" and len(tags["mlflow.source.git.commit"]) == 40
    assert tags["dvc_experiment"] == summary["dvc_experiment"]
    assert any(k.startswith("system/") for k in metrics)  # MLflow's system metrics monitor ran on the flow's run
    assert json.loads(client.get_model_version_by_alias("lossval-clean-downstream", "champion").tags["classes"]) == ["DOWN", "UP"]
    lock = yaml.safe_load((project_dir / "dvc.lock").read_text())
    (snapshot_out,) = [o for o in lock["stages"]["quarantine"]["outs"] if o["path"] == "data/pipeline/snapshot"]
    assert tags["dvc_snapshot"] == snapshot_out["md5"] == summary["snapshot"]
    contexts = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(contexts) == {"training", "reference", "evaluation"} and contexts["training"].name == "raw.csv"

    values = pd.read_parquet(client.download_artifacts(run.info.run_id, "values.parquet"))
    assert {"row_id", "value", "loss_part", "transport_part", "reason"} <= set(values.columns)
    q = pd.read_parquet(client.download_artifacts(run.info.run_id, "quarantine.parquet"))
    assert {"row_id", "reason", "value", "rule", "date", "target"} <= set(q.columns)
    assert q["reason"].str.startswith(("value:", "schema:")).all()

    models = client.search_logged_models([experiment.experiment_id])
    assert {m.name for m in models} == {"lossval_model", "downstream_model"}
    versions = client.search_model_versions("name='lossval-clean-downstream'")
    assert run.info.run_id in {v.run_id for v in versions}

    ledger = Ledger.load(project.ledger_path)
    assert set(ledger.events["row_id"]) == quarantined and set(ledger.events["run_id"]) == {summary["run_id"]}

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["lossval-clean-summary", "quarantined-rows", "mlflow-run", "report"])))
    mine = [a for a in artifacts if summary["run_id"] in str(a.data) or summary["dvc_experiment"] in str(a.data)]  # this run's
    by_key = {a.key: a for a in mine}
    assert "rows_quarantined_value" in by_key["lossval-clean-summary"].data
    assert summary["run_id"] in by_key["mlflow-run"].data  # a link artifact (Prefect stores it as markdown: [text](url))
    assert "/artifacts/report.html" in by_key["report"].data
    tables = [json.loads(a.data) if isinstance(a.data, str) else a.data for a in artifacts if a.key == "quarantined-rows"]
    assert any(table and {"row_id", "stage", "reason", "value"} <= set(table[0]) and len(table) == min(len(quarantined), 50)
               and {r["row_id"] for r in table} <= quarantined for table in tables)


def test_rerun_is_idempotent_and_a_past_snapshot_comes_back(project_dir, tmp_path):
    first = lossval_clean(project_dir=str(project_dir))
    project = Project.load(project_dir)
    first_clean = (project.snapshot_dir / "clean.parquet").read_bytes()
    again = lossval_clean(project_dir=str(project_dir))
    assert again["snapshot"] == first["snapshot"]  # same inputs and params: same snapshot
    assert (project.snapshot_dir / "clean.parquet").read_bytes() == first_clean
    ledger = Ledger.load(project.ledger_path)
    assert not ledger.events.duplicated(["row_id", "event"]).any()

    other = lossval_clean(project_dir=str(project_dir), overrides={"quarantine.strategy": "quantile", "quarantine.quantile": 0.02})
    assert other["snapshot"] != first["snapshot"]
    assert (project.snapshot_dir / "clean.parquet").read_bytes() != first_clean

    from cleaning.restore import checkout_run

    md5, experiment, restored = checkout_run(project, first["run_id"], tmp_path / "restored")
    assert md5 == first["snapshot"] and experiment == first["dvc_experiment"]
    assert (restored / "clean.parquet").read_bytes() == first_clean
    # the override run's parameters are in params.overrides.yaml, which dvc.lock records; params.yaml is as it was
    lock = yaml.safe_load((project_dir / "dvc.lock").read_text())
    assert lock["stages"]["quarantine"]["params"]["params.overrides.yaml"]["quarantine"] == {"strategy": "quantile", "quantile": 0.02}
    assert yaml.safe_load((project_dir / "params.yaml").read_text())["quarantine"]["strategy"] == "auto"


def test_restore_then_rerun_keeps_the_restored_rows(project_dir):
    from flows.cli import main

    lossval_clean(project_dir=str(project_dir))
    project = Project.load(project_dir)
    q = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    chosen = q.loc[q["stage"] == "value", "row_id"].head(2).tolist()
    assert main(["--project", str(project_dir), "restore", *chosen, "--note", "checked by hand"]) == 0
    assert set(chosen) <= _ids(project.snapshot_dir / "clean.parquet")
    assert not set(chosen) & _ids(project.snapshot_dir / "quarantine.parquet")
    counts = json.loads((project.metrics_dir / "counts.json").read_text())
    assert counts["rows_in"] == counts["rows_quarantined_schema"] + counts["rows_quarantined_value"] + counts["rows_clean"]

    # restore is a run: an MLflow run tagged trigger=restore, a DVC experiment, and nothing left for `dvc status`
    experiment = MlflowClient().get_experiment_by_name(project.params.tracking.experiment)
    (restore_run,) = MlflowClient().search_runs([experiment.experiment_id], filter_string="tags.trigger = 'restore'")
    assert restore_run.info.status == "FINISHED" and restore_run.data.metrics["rows_restored"] == 2
    assert restore_run.data.tags["dvc_experiment"].endswith(restore_run.info.run_id[:8])
    assert "up to date" in run_command([sys.executable, "-m", "dvc", "status"], project_dir).lower()

    lossval_clean(project_dir=str(project_dir), overrides={"quarantine.max_fraction": 0.5})
    assert set(chosen) <= _ids(project.snapshot_dir / "clean.parquet")
    assert Ledger.load(project.ledger_path).pinned() == set(chosen)
    assert main(["--project", str(project_dir), "restore", "no-such-row"]) == 2


def _corrupt(project_dir, how: str) -> str:
    raw = project_dir / "data" / "raw.csv"
    frame = pd.read_csv(raw, dtype=str)
    if how == "missing file":
        raw.unlink()
        return "input file not found"
    if how == "missing target":
        frame.drop(columns="target").to_csv(raw, index=False)
        return "target column 'target' not found"
    if how == "missing feature":
        frame.drop(columns="nswprice").to_csv(raw, index=False)
        return r"feature column\(s\) \['nswprice'\] not found"
    if how == "wrong types everywhere":
        frame.assign(date="monday").to_csv(raw, index=False)
        return "column 'date' is not numeric"
    if how == "no rows left":
        frame.assign(target="SIDEWAYS").to_csv(raw, index=False)
        return "no rows left: all 600 rows fail validation"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing file", "missing target", "missing feature", "wrong types everywhere", "no rows left"])
def test_file_level_failures_fail_clearly_and_write_nothing(project_dir, how):
    message = _corrupt(project_dir, how)
    with pytest.raises(Exception, match=message):
        lossval_clean(project_dir=str(project_dir))
    written = [p for p in (project_dir / "data" / "pipeline").rglob("*") if p.is_file() and p.name != ".run.lock"]
    assert written == []
    experiment = MlflowClient().get_experiment_by_name(Project.load(project_dir).params.tracking.experiment)
    assert experiment is None or not MlflowClient().search_runs([experiment.experiment_id])
