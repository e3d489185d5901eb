"""What a new user does, in a real ``git clone``: the README's main command, then the other entry points.

The clone reuses this test run's virtual environment (linked as the clone's ``.venv``, so that
``scripts/bootstrap.sh`` finds the same pyproject.toml installed and installs nothing) and runs the clone's
own code; everything else is the user's path: the README's command, the repository's own .gitignore,
DVC config and local remote, Prefect's temporary local server, MLflow's default sqlite store.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import REPO, clone_repo

# What a run in a clone leaves for git, all of it meant to be committed (README, "Cleaning your own data"):
# dvc.lock, the .gitignore files DVC writes beside its outputs, the metrics and the plot data it keeps in git.
COMMITTED = re.compile(
    r"^(dvc\.lock|params\.overrides\.yaml|data/pipeline/(\.gitignore|work/\.gitignore|metrics/[a-z_]+\.json|work/history\.csv|work/run\.json))$"
)
SNAPSHOT = re.compile(r"snapshot ([0-9a-f]{32}\.dir), DVC experiment (\S+)\s+\(dvc exp show; lossval-clean snapshot checkout ([0-9a-f]{32})\)")


def _user_env(clone: Path) -> dict[str, str]:
    """The environment of a user in the clone: no test session's MLflow store, Prefect server or project dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "LOSSVAL_", "PYTEST"))}
    env.update(
        PYTHONPATH=str(clone), PREFECT_HOME=str(clone.parent / "prefect-home"), MLFLOW_DISABLE_TELEMETRY="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1", CI="true",
        PATH=f"{clone / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    return env


def _run(args: list[str], clone: Path) -> str:
    result = subprocess.run(args, cwd=clone, env=_user_env(clone), capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode} in a fresh clone:\n{output[-6000:]}"
    return output


def _git_changes(clone: Path) -> set[str]:
    status = subprocess.run(["git", "status", "--porcelain", "-uall"], cwd=clone, capture_output=True, text=True, check=True).stdout
    return {line[3:] for line in status.splitlines() if line[3:] != ".venv"}


def _assert_git_sees_only_what_users_commit(clone: Path) -> None:
    changes = _git_changes(clone)
    assert "dvc.lock" in changes, f"dvc.lock is not a change git sees after a run: {sorted(changes)}"
    unexpected = sorted(p for p in changes if not COMMITTED.match(p))
    assert not unexpected, f"after a run, git shows files a user should not commit: {unexpected}"
    # every file DVC writes for git must not be git-ignored (DVC refuses to write an ignored dvc.lock)
    for name in ("dvc.lock", "data/pipeline/.gitignore", "data/pipeline/work/.gitignore", *(p for p in changes if "metrics/" in p)):
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=clone).returncode == 0
        assert not ignored, f"{name} is git-ignored: DVC cannot record runs in a clone"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    root = clone_repo(tmp_path_factory.mktemp("user") / "lossval-clean")
    venv = Path(sys.prefix)
    if not any((venv / name).is_file() for name in (".installed", ".installed-dev")):
        pytest.fail(f"{venv} was not made by scripts/bootstrap.sh: run the suite with `bash scripts/test.sh`")
    (root / ".venv").symlink_to(venv, target_is_directory=True)
    return root


def test_readme_main_command_in_a_fresh_clone(clone: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/demo.sh" in readme, "the README's main command changed: update this test"
    output = _run(["bash", "scripts/demo.sh"], clone)
    # the long steps show they move (a nightly log, no TTY: no progress bar): one line per epoch and per model
    for words in ("rows in", "quarantined", "downstream test", "snapshot", "valuation epoch 1:", "retraining the 'all' model"):
        assert words in output, f"the demo's summary lacks {words!r}:\n{output[-3000:]}"
    assert SNAPSHOT.search(output), f"no snapshot hash and run id in the demo's summary:\n{output[-3000:]}"
    _assert_git_sees_only_what_users_commit(clone)


def test_user_entry_points_in_a_clone(clone: Path) -> None:
    """Two `lossval-clean run`s with different --set values: two DVC experiments with their params and metrics,
    each named by its MLflow run's tag; params.yaml untouched; `dvc repro` up to date; the first run's snapshot
    brought back after the second; `restore` recorded as a run that leaves `dvc status` clean."""
    params_before = (clone / "params.yaml").read_bytes()
    runs = []
    overrides = [{"quarantine.min_precision": "0.8"}, {"quarantine.strategy": "quantile", "quarantine.quantile": "0.02"}]
    for night in overrides:  # the second run (the live snapshot) quarantines rows by value: one is restored below
        sets = [arg for key, value in night.items() for arg in ("--set", f"{key}={value}")]
        match = SNAPSHOT.search(_run([".venv/bin/lossval-clean", "run", *sets], clone))
        assert match, "`lossval-clean run` printed no snapshot hash and DVC experiment"
        runs.append(match.groups())
        assert (clone / "params.yaml").read_bytes() == params_before, "a run edited params.yaml"
    _assert_git_sees_only_what_users_commit(clone)
    assert "up to date" in _run([".venv/bin/python", "-m", "dvc", "repro"], clone).lower()

    shown_csv = subprocess.run([".venv/bin/python", "-m", "dvc", "exp", "show", "--csv"], cwd=clone, env=_user_env(clone), capture_output=True,
                               text=True, timeout=300, check=True).stdout
    table = list(csv.DictReader(io.StringIO(shown_csv)))
    shown = {row["Experiment"]: row for row in table if row["Experiment"]}
    for (_, experiment, _), night in zip(runs, overrides):
        assert experiment in shown, f"{experiment} not in `dvc exp show`: {sorted(shown)}"
        for key, value in night.items():  # each night's own --set values, from params.overrides.yaml
            assert shown[experiment][f"params.overrides.yaml:{key}"] == value, (key, shown[experiment])
        assert shown[experiment]["rows_quarantined_value"] not in ("", "!"), "the experiment lacks the run's metrics"
    client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    for _, experiment, run_id in runs:
        assert client.get_run(run_id).data.tags["dvc_experiment"] == experiment

    (first_md5, first_experiment, first_run), _ = runs
    out = clone / "first-night"
    printed = _run([".venv/bin/lossval-clean", "snapshot", "checkout", first_run, "--output", str(out)], clone)
    assert first_md5 in printed and first_experiment in printed
    restored = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != ".lossval-checkout"}
    assert {"clean.parquet", "quarantine.parquet", "ledger.parquet"} <= restored, restored
    # the restored files are the first night's: each one's hash is the one DVC's manifest of first_md5 lists for it
    cache = _run([".venv/bin/python", "-m", "dvc", "cache", "dir"], clone).strip().splitlines()[-1]
    manifest = {e["relpath"]: e["md5"] for e in json.loads(Path(cache, "files", "md5", first_md5[:2], first_md5[2:]).read_text())}
    assert set(manifest) == restored, (sorted(manifest), sorted(restored))
    for name in restored:
        assert hashlib.md5((out / name).read_bytes()).hexdigest() == manifest[name], f"{name} differs from run {first_run}'s snapshot"

    quarantined = pd.read_parquet(clone / "data" / "pipeline" / "snapshot" / "quarantine.parquet")
    row = quarantined.loc[quarantined["stage"] == "value", "row_id"].iloc[0]
    _run([".venv/bin/lossval-clean", "restore", row, "--note", "checked by hand"], clone)
    assert "up to date" in _run([".venv/bin/python", "-m", "dvc", "status"], clone).lower()
    restores = client.search_runs([client.get_run(first_run).info.experiment_id], filter_string="tags.trigger = 'restore'")
    assert len(restores) == 1 and restores[0].data.tags["dvc_experiment"] in _run([".venv/bin/python", "-m", "dvc", "exp", "list", "--name-only"], clone)
    assert (clone / "params.yaml").read_bytes() == params_before
