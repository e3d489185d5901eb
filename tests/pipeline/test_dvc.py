"""`dvc repro` runs the same steps as the flow and gives the same outputs."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from flows.pipeline import lossval_clean
from tests.helpers import experiment_name, make_project

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_dvc_repro_matches_the_flow_and_reruns_only_what_changed(tmp_path, use_mlflow, run_dvc):
    small = dict(rows=300, reference_rows=120, epochs=2, experiment=experiment_name(tmp_path))
    by_flow = make_project(tmp_path / "flow", **small)
    by_dvc = make_project(tmp_path / "dvc", **small)
    lossval_clean(project_dir=str(by_flow))
    # after a flow run, DVC sees everything up to date
    assert "Data and pipelines are up to date" in run_dvc(by_flow, "status")

    out = run_dvc(by_dvc, "repro")
    for stage in ("ingest", "validate", "reference", "value", "quarantine", "retrain", "record"):
        assert f"Running stage '{stage}'" in out
    for name in ("work/values.parquet", "snapshot/clean.parquet", "snapshot/quarantine.parquet"):
        a = pd.read_parquet(by_flow / "data/pipeline" / name)
        b = pd.read_parquet(by_dvc / "data/pipeline" / name)
        pd.testing.assert_frame_equal(a, b)

    runs = MlflowClient().search_runs([MlflowClient().get_experiment_by_name(experiment_name(tmp_path)).experiment_id])
    triggers = sorted(r.data.tags["trigger"] for r in runs)
    assert triggers == ["dvc", "manual"]
    dvc_run = next(r for r in runs if r.data.tags["trigger"] == "dvc")
    lock = yaml.safe_load((by_dvc / "dvc.lock").read_text())
    (snapshot_out,) = [o for o in lock["stages"]["quarantine"]["outs"] if o["path"] == "data/pipeline/snapshot"]
    assert dvc_run.data.tags["dvc_snapshot"] == snapshot_out["md5"]
    assert [m.step for m in MlflowClient().get_metric_history(dvc_run.info.run_id, "loss")] == [1, 2]

    params = yaml.safe_load((by_dvc / "params.yaml").read_text())
    params["quarantine"]["quantile"] = 0.2
    params["quarantine"]["strategy"] = "quantile"
    (by_dvc / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run_dvc(by_dvc, "repro")
    assert "Running stage 'quarantine'" in out and "Running stage 'record'" in out
    for stage in ("ingest", "validate", "reference", "value"):
        assert f"Stage '{stage}' didn't change, skipping" in out
