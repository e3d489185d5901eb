"""A raw mixed-type table end to end: `lossval-clean init`, then the flow on the inferred params file.

Data: data/example/adult_raw_sample.csv (600 UCI Adult rows with their strings; 41 rows with a
missing cell in workclass, occupation or native-country). Never ../shared.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from flows.cli import main
from flows.pipeline import lossval_clean
from lossval.rows import assign_row_ids, read_table
from cleaning.project import Project
from tests.helpers import EXAMPLE, experiment_name, make_project

pytestmark = pytest.mark.usefixtures("prefect_harness")

CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex", "native-country"]


@pytest.fixture()
def adult_project(tmp_path, monkeypatch, use_mlflow):
    root = make_project(tmp_path / "adult", experiment=experiment_name(tmp_path))
    shutil.copy(EXAMPLE / "adult_raw_sample.csv", root / "data" / "adult.csv")
    monkeypatch.setenv("LOSSVAL_PROJECT_DIR", str(root))
    monkeypatch.chdir(root)  # init's PATH is relative to the working folder, as on the command line
    return root


def test_init_writes_every_column_kind_and_refuses_to_overwrite(adult_project, capsys):
    assert main(["init", "data/adult.csv", "--target", "target"]) == 2  # params.yaml exists: never overwritten
    assert "pass --output" in capsys.readouterr().err
    assert main(["init", "data/adult.csv", "--target", "target", "--output", "adult.yaml"]) == 0
    tree = yaml.safe_load((adult_project / "adult.yaml").read_text())
    columns = tree["validate"]["columns"]
    assert tree["base"]["task"] == "classification" and tree["ingest"]["path"] == "data/adult.csv"
    assert tree["validate"]["schema_name"] == "params" and tree["validate"]["classes"] == ["<=50K", ">50K"]
    assert sorted(c for c, r in columns.items() if r["kind"] == "categorical" and c != "target") == sorted(CATEGORICAL)
    assert "Private" in columns["workclass"]["levels"] and columns["target"]["missing"] == "quarantine"
    assert tree["validate"]["ranges"]["age"] == [17.0, 90.0]
    assert tree["reference"]["path"] is None and tree["reference"]["sample_fraction"] == 0.25  # 75 reference rows expected
    assert main(["init", "data/adult.csv", "--target", "target", "--output", "adult.yaml"]) == 2  # exists now


def test_raw_table_runs_with_imputation_and_categories(adult_project):
    assert main(["init", "data/adult.csv", "--target", "target", "--output", "adult.yaml"]) == 0
    tree = yaml.safe_load((adult_project / "adult.yaml").read_text())
    tree["value"]["epochs"] = tree["retrain"]["epochs"] = 2
    (adult_project / "adult.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    raw = pd.read_csv(adult_project / "data" / "adult.csv", dtype=str, keep_default_na=False)
    odd = raw.iloc[[0]].assign(race="Martian")  # a level the inferred schema does not know
    pd.concat([raw, odd]).to_csv(adult_project / "data" / "adult.csv", index=False)

    summary = lossval_clean(params_file="adult.yaml", project_dir=str(adult_project))
    project = Project.load(adult_project, params_file="adult.yaml")
    quarantine = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    schema = quarantine[quarantine["stage"] == "schema"]
    assert schema["reason"].tolist() == ["schema:unknown_level:race"]
    # no row is quarantined by the schema for a missing feature cell: they are imputed
    table = read_table(project.input_path("data/adult.csv"))
    ids, _ = assign_row_ids(table)
    with_missing = set(ids[table.drop(columns="target").isna().any(axis=1)])
    assert len(with_missing) == 41 and not with_missing & set(schema["row_id"])
    assert summary["rows_quarantined_schema"] == 1 and summary["rows_in"] == 601

    # every categorical column reaches LossVal (and the downstream model) as one-hot categories
    state = torch.load(project.work_file("lossval_model.pt"), weights_only=True)
    kinds = state["encoder"]["kinds"]
    assert sorted(c for c, k in kinds.items() if k == "categorical") == sorted(CATEGORICAL)
    assert {"workclass__missing", "occupation__missing", "native-country__missing"} <= {c for c, k in kinds.items() if k == "boolean"}
    assert "workclass=Private" in state["feature_names"] and "workclass" not in state["feature_names"]
    downstream = torch.load(project.work_file("downstream") / "clean.pt", weights_only=True)
    assert downstream["encoder"]["kinds"] == kinds

    run = MlflowClient().get_run(summary["run_id"])
    metrics = run.data.metrics
    assert metrics["imputed_cells.workclass"] == 30 and metrics["imputed_cells.occupation"] == 30
    assert metrics["imputed_cells.native-country"] == 11 and metrics["imputed_cells"] == 71
    assert "workclass: 30" in (project.reports_dir / "report.html").read_text()
    assert 0.5 < metrics["test_accuracy_clean"] <= 1
