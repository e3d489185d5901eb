"""Expected failures print one clear message with a documented exit code, without a traceback, in the CLI and
in Prefect (the flow run's Failed state message and its logs); bugs keep their traceback."""

from __future__ import annotations

import errno
import subprocess
import time

import pytest

from flows.cli import main
from cleaning.failures import EXIT_BUG, EXIT_DATA, EXIT_LOCKED, EXIT_MACHINE, EXIT_SERVICE, EXIT_USAGE, exit_code, message
from cleaning.project import Project


def _latest_flow_run_and_logs():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1)
        deadline = time.monotonic() + 20
        while True:  # logs reach the API in batches
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            if any("Finished in state" in log.message for log in logs) or time.monotonic() > deadline:
                return run, [log.message for log in logs]
            time.sleep(0.5)


def test_a_header_only_file_is_one_message_in_the_cli_and_a_failed_state_in_prefect(project, capfd):
    raw = project / "data" / "raw.csv"
    raw.write_text(raw.read_text().splitlines()[0] + "\n")
    assert main(["--project", str(project), "run"]) == EXIT_DATA
    out = capfd.readouterr()
    assert "Traceback" not in out.out + out.err
    assert out.err.strip().splitlines()[-1] == "lossval-clean run: error: raw.csv has a header but no data rows"
    run, logs = _latest_flow_run_and_logs()
    assert run.state.is_failed() and "raw.csv has a header but no data rows" in run.state.message
    assert logs and not [m for m in logs if "Traceback" in m]


def test_an_unknown_value_option_is_a_usage_error_naming_the_key(project, capfd):
    assert main(["--project", str(project), "run", "--set", "value.options={weight_lrr: 0.1}"]) == EXIT_USAGE
    out = capfd.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "value.options: unknown option(s) ['weight_lrr']" in out.err.strip().splitlines()[-1]


def test_a_diverging_training_is_one_message(project, capfd):
    assert main(["--project", str(project), "run", "--set", "value.lr=1e30"]) == EXIT_DATA
    out = capfd.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "Lower the learning rate" in out.err.strip().splitlines()[-1]


def test_a_locked_project_has_its_own_exit_code(project, capfd):
    from cleaning.transaction import run_lock

    with run_lock(Project.load(project).lock_path):
        assert main(["--project", str(project), "run"]) == EXIT_LOCKED
    assert "another lossval-clean run is working on this project" in capfd.readouterr().err


@pytest.mark.parametrize("error, code, text", [
    (OSError(errno.ENOSPC, "No space left on device", "data/pipeline/work/x.parquet"), EXIT_MACHINE,
     "No space left on device: data/pipeline/work/x.parquet"),
    (subprocess.TimeoutExpired([".venv/bin/python", "-m", "dvc", "push"], 600), EXIT_SERVICE, "`-m dvc push` did not finish within 600 s"),
    (ConnectionError("http://u:p@ss@h/api refused"), EXIT_SERVICE, "http://***@h/api refused"),
    (KeyError("a bug"), EXIT_BUG, "'a bug'"),
])
def test_each_kind_of_failure_has_its_code_and_one_line(error, code, text):
    assert exit_code(error) == code and message(error) == text


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    import flows.cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(flows.cli, "cmd_quarantine", broken)
    from tests.helpers import REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    parser = flows.cli.build_parser()
    parser._subparsers._group_actions[0].choices["quarantine"].set_defaults(func=broken)
    monkeypatch.setattr(flows.cli, "build_parser", lambda: parser)
    with pytest.raises(KeyError):
        main(["--project", str(tmp_path), "quarantine"])
