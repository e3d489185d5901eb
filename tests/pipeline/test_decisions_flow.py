"""The decision layer in the real flow (issue 12): canaries never reach an output, the champion gate and its
MLflow record, a separate test file, and the unreliable-valuation path (Prefect run Failed, nothing quarantined
by value, everything else published)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from flows.pipeline import lossval_clean
from lossval.ledger import Ledger
from cleaning.project import Project
from tests.helpers import EXAMPLE, experiment_name, make_project

pytestmark = pytest.mark.usefixtures("prefect_harness")

CANARY = "canary-"


def _run(client: MlflowClient, project: Project):
    experiment = client.get_experiment_by_name(project.params.tracking.experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    return run


def _champion(client: MlflowClient, project: Project):
    return client.get_model_version_by_alias(project.params.tracking.registered_model, "champion")


def test_canaries_stay_out_of_every_output_and_the_gate_is_recorded(tmp_path, use_mlflow):
    root = make_project(tmp_path / "project", experiment=experiment_name(tmp_path), params={"reference.test_path": "data/test.csv"})
    pd.read_csv(EXAMPLE / "electricity_test.csv", dtype=str).head(400).to_csv(root / "data" / "test.csv", index=False)
    summary = lossval_clean(project_dir=str(root))
    project = Project.load(root)

    # the canaries were valued (work/canaries.parquet: 0.3 x 160 reference rows, half clean, half corrupted) ...
    canaries = pd.read_parquet(project.work_file("canaries.parquet"))
    assert len(canaries) == 48 and (canaries["kind"] == "clean").sum() == 24
    assert canaries["row_id"].str.startswith(CANARY).all()
    # ... and reach no output, table, count or ledger
    tables = {
        "clean": pd.read_parquet(project.snapshot_dir / "clean.parquet"),
        "quarantine": pd.read_parquet(project.snapshot_dir / "quarantine.parquet"),
        "values": pd.read_parquet(project.work_file("values.parquet")),
        "train": pd.read_parquet(project.work_file("train.parquet")),
        "ledger": Ledger.load(project.ledger_path).events,
    }
    for name, table in tables.items():
        assert not table["row_id"].astype(str).str.startswith(CANARY).any(), f"a canary reached {name}"
    assert len(tables["values"]) == len(tables["train"]) == 600
    assert summary["rows_in"] == 600 == summary["rows_quarantined_schema"] + summary["rows_quarantined_value"] + summary["rows_clean"]
    counts = json.loads((project.metrics_dir / "counts.json").read_text())
    assert counts["rows_in"] == 600 and 0.0 <= counts["canary_auroc"] <= 1.0
    assert CANARY not in (project.reports_dir / "report.html").read_text()

    # the separate test file is the test split; the whole reference file is the reference
    check = json.loads(project.work_file("reference_check.json").read_text())
    assert check["test_rows"] == 400 and check["reference_rows"] == 160

    client = MlflowClient()
    run = _run(client, project)
    metrics, tags = run.data.metrics, run.data.tags
    values = pd.read_parquet(client.download_artifacts(run.info.run_id, "values.parquet"))
    assert len(values) == 600 and not values["row_id"].str.startswith(CANARY).any()
    assert {"canary_auroc", "canary_recall", "estimated_bad", "test_rows"} <= set(metrics) and metrics["test_rows"] == 400
    for variant in ("clean", "weighted"):
        assert metrics[f"gain_{variant}_low"] <= metrics[f"gain_{variant}"] <= metrics[f"gain_{variant}_high"]
        assert f"test_accuracy_{variant}" in metrics
    # the champion alias is on this run's model, of the promoted variant, which is all rows unless a variant is
    # better beyond its interval
    promoted = tags["promoted"]
    assert promoted == summary["promoted"] and promoted in ("all", "clean", "weighted")
    if promoted != "all":
        assert metrics[f"gain_{promoted}_low"] > 0
    champion = _champion(client, project)
    assert champion.run_id == run.info.run_id and champion.tags["variant"] == promoted
    assert tags["champion_reason"] and "valuation_unreliable" not in tags
    report = (project.reports_dir / "report.html").read_text()
    for text in ("Tonight's health", "champion", "canary check", run.info.run_name, f"/runs/{run.info.run_id}", "400 rows"):
        assert text in report, text


def test_unreliable_valuation_quarantines_nothing_by_value_and_fails_the_flow_run(tmp_path, use_mlflow, capsys):
    from flows.cli import EXIT_UNRELIABLE, main

    root = make_project(
        tmp_path / "project", experiment=experiment_name(tmp_path),
        params={"quarantine.strategy": "calibrated", "quarantine.min_canary_auroc": 0.7},
    )
    # a garbage reference (labels shuffled): the canaries made from it cannot be told apart
    reference = pd.read_csv(root / "data" / "reference.csv", dtype=str)
    reference["target"] = reference["target"].sample(frac=1.0, random_state=0).to_numpy()
    reference.to_csv(root / "data" / "reference.csv", index=False)
    raw = pd.read_csv(root / "data" / "raw.csv", dtype=str, keep_default_na=False)
    raw.loc[5, "target"] = "FLAT"  # one schema failure, which is still quarantined
    raw.to_csv(root / "data" / "raw.csv", index=False)

    assert main(["--project", str(root), "run"]) == EXIT_UNRELIABLE
    out = capsys.readouterr()
    assert "canary check: FAILED" in out.out and "valuation unreliable" in out.err

    project = Project.load(root)
    counts = json.loads((project.metrics_dir / "counts.json").read_text())
    assert counts["valuation_unreliable"] is True and counts["canary_auroc"] < 0.7
    assert counts["rows_quarantined_value"] == 0 and counts["rows_quarantined_schema"] == 1
    quarantine = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    assert (quarantine["stage"] == "schema").all() and len(quarantine) == 1

    client = MlflowClient()
    run = _run(client, project)
    assert run.info.status == "FINISHED" and run.data.tags["valuation_unreliable"] == "true"
    assert run.data.tags["promoted"] == "all" and "test_accuracy_weighted" not in run.data.metrics  # untrusted values: no weighted model
    assert _champion(client, project).run_id == run.info.run_id

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as prefect:
        (flow_run,) = prefect.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
    assert flow_run.state.is_failed() and "valuation unreliable" in flow_run.state.message
