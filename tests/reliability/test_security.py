"""Security promises: no unpickling of model files, no writes outside the project, spreadsheet-safe CSV
exports, no secret in logs, params or MLflow."""

from __future__ import annotations

import csv
import pickle

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from flows.cli import main
from flows.pipeline import lossval_clean
from schemas.params import ParamsError
from cleaning.project import Project
from cleaning.quarantine import csv_safe
from cleaning.tracking import redact


class _Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_model_files_load_without_unpickling_code(project, monkeypatch):
    monkeypatch.chdir(project)
    target = Project.load(project).work_file("lossval_model.pt")
    torch.save({"state_dict": {}, "payload": _Exploit()}, target)
    from cleaning.value import load_valued

    with pytest.raises(pickle.UnpicklingError):
        load_valued(Project.load(project))
    assert not (project / "PWNED").exists()


@pytest.mark.parametrize("data_dir", ["../outside", "/tmp/lossval-elsewhere", "data/../../outside"])
def test_params_cannot_send_outputs_outside_the_project(project, data_dir):
    with pytest.raises(ParamsError, match="must be relative to the project|resolves outside the project"):
        Project.load(project, overrides={"base.data_dir": data_dir})


def test_a_symlink_cannot_send_outputs_outside_the_project(project, tmp_path):
    (project / "escape").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ParamsError, match="resolves outside the project"):
        Project.load(project, overrides={"base.data_dir": "escape/pipeline"})


def test_redact_hides_credentials_in_urls():
    assert redact("http://alice:pw@mlflow.example:5000/api") == "http://***@mlflow.example:5000/api"
    assert redact("failed: https://token@host/x and s3://k:s@bucket/p") == "failed: https://***@host/x and s3://***@bucket/p"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_csv_safe_defuses_formulas_only_in_text():
    frame = pd.DataFrame({"text": ["=1+1", "+cmd", "-2", "@SUM(A1)", "plain", None], "num": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0]})
    out = csv_safe(frame)
    assert out["text"].tolist()[:5] == ["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "plain"]
    assert out["num"].tolist() == frame["num"].tolist()


def test_exports_are_spreadsheet_safe_and_no_secret_is_recorded(project, monkeypatch, tmp_path):
    secret = "hunter2-Zq81"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    raw = pd.read_csv(project / "data" / "raw.csv", dtype=str, keep_default_na=False)
    raw["comment"] = "ok"
    raw.loc[3, ["comment", "nswprice"]] = ['=HYPERLINK("http://evil.example","click")', ""]  # quarantined by the schema
    raw.to_csv(project / "data" / "raw.csv", index=False)
    summary = lossval_clean(project_dir=str(project))

    out = tmp_path / "quarantine.csv"
    assert main(["--project", str(project), "quarantine", "--csv", str(out)]) == 0
    cells = [cell for row in csv.reader(out.open()) for cell in row]
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]

    run = MlflowClient().get_run(summary["run_id"])
    recorded = [*run.data.params.values(), *run.data.tags.values()]
    assert not [v for v in recorded if secret in v]
    project_obj = Project.load(project)
    for path in [project_obj.reports_dir / "report.html", project_obj.work_file("run.json"), project / "dvc.lock"]:
        assert secret not in path.read_text()
