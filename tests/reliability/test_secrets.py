"""No credential from a tracking URI in any output or log: the CLI's messages and summary, `ui`, Prefect's
logs, the error a run raises and the MLflow failure tag; with passwords holding "/" and "@"."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from flows.cli import _print_summary, main
from flows.pipeline import lossval_clean
from cleaning.failures import EXIT_SERVICE
from cleaning.project import Project
from cleaning.secrets import without_credentials
from cleaning.tracking import TrackingError, redact
from tests.helpers import REPO

SECRETS = {"slash": ("user:pa/ss", "pa/ss"), "at": ("user:p@ss", "p@ss")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.mark.parametrize("text, expected", [
    ("http://user:pa/ss@127.0.0.1:5000/api", "http://***@127.0.0.1:5000/api"),
    ("API request to http://user:p@ss@host:1/api failed", "API request to http://***@host:1/api failed"),
    ("Invalid url: http://u:a@b/c@host/x", "Invalid url: http://***@host/x"),
    ("a https://token@host/x and s3://k:s@bucket/p", "a https://***@host/x and s3://***@bucket/p"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
])
def test_redact_handles_slashes_and_ats_in_passwords(text, expected):
    assert redact(text) == expected


def test_the_run_summary_and_ui_never_print_the_password(tmp_path, monkeypatch, capsys):
    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    project = Project.load(tmp_path)
    for userinfo, secret in SECRETS.values():
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"https://{userinfo}@mlflow.example")
        gate = {"metric": "accuracy", "test_rows": 4, "scores": {"all": 0.5, "clean": 0.6}, "confidence": 0.9,
                "improvement": {"clean": [0.1, -0.2, 0.4]}, "promoted": "all", "reason": "within the uncertainty"}
        summary = {"rows_in": 3, "rows_quarantined_schema": 0, "rows_quarantined_value": 1, "rows_clean": 2, "rule": "auto",
                   "test_accuracy_all": 0.5, "test_accuracy_clean": 0.6, "snapshot": "x.dir", "dvc_experiment": "night-r1", "run_id": "r1", "run_name": "night",
                   "health": [], "gate": gate, "valuation_unreliable": False,
                   "mlflow_run": f"{without_credentials(os.environ['MLFLOW_TRACKING_URI'])}/#/experiments/1/runs/r1"}
        _print_summary(project, summary)
        from flows.ui import serve

        said: list[str] = []
        assert serve(project, echo=said.append) == 0
        out = capsys.readouterr().out + "\n".join(said)
        assert "https://***@mlflow.example" in out and secret not in out


@pytest.mark.parametrize("kind", SECRETS)
def test_an_unreachable_credentialed_server_leaks_nothing(project, monkeypatch, capfd, caplog, kind):
    userinfo, secret = SECRETS[kind]
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://{userinfo}@127.0.0.1:{_free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert main(["--project", str(project), "run"]) == EXIT_SERVICE
    out = capfd.readouterr()
    text = out.out + out.err + caplog.text
    assert "is unreachable after 3 attempts" in text and "***@127.0.0.1" in text
    assert secret not in text


def test_an_mlflow_error_during_a_run_leaks_nothing(project, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    import cleaning.tracking

    def server_error(*args, **kwargs):
        raise MlflowException("API request to http://user:p@ss@mlflow.example/api/2.0/mlflow/runs/log-batch failed with 503")

    monkeypatch.setattr(cleaning.tracking.Tracker, "_log_result", server_error)  # the MLflow calls inside log_result
    with pytest.raises(TrackingError) as info:
        lossval_clean(project_dir=str(project), overrides={"quarantine.max_fraction": 0.2})
    import traceback

    raised = "".join(traceback.format_exception(info.value))
    out = capfd.readouterr()
    text = raised + out.out + out.err + caplog.text
    assert "http://***@mlflow.example" in text and "p@ss" not in text
    from tests.reliability.test_faults import _runs

    assert "p@ss" not in _runs(Path(project))[0].data.tags["failure"]


@pytest.mark.parametrize("kind", SECRETS)
def test_links_to_the_mlflow_run_carry_no_credentials(kind):
    userinfo, secret = SECRETS[kind]
    assert without_credentials(f"https://{userinfo}@mlflow.example:5000/") == "https://mlflow.example:5000/"
