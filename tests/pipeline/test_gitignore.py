"""The repository's ignore rules let DVC record runs (it refuses to write a git-ignored dvc.lock) and keep
run state out of git. Fast: asks git, runs nothing (the clone tests run the product itself)."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import REPO

# Files DVC writes for git to track (dvc.lock, its own .gitignore files, metrics and plot data kept in git).
DVC_WRITES_FOR_GIT = [
    "dvc.lock",
    "data/pipeline/.gitignore",
    "data/pipeline/work/.gitignore",
    "data/pipeline/metrics/counts.json",
    "data/pipeline/metrics/scores.json",
    "data/pipeline/work/history.csv",
    "data/pipeline/work/run.json",
]
RUN_STATE = [
    "mlflow.db",
    "mlruns/0/meta.yaml",
    ".dvcstore/files/md5/00/0",
    "data/demo/electricity_noisy.csv",
    "data/pipeline/.run.lock",
    "data/pipeline/.unfinished_runs.json",
    "data/pipeline/snapshot.staging/clean.parquet",
    "data/pipeline/snapshot.previous/clean.parquet",
    "data/pipeline/ops/server.log",
    "data/pipeline/restored/run/clean.parquet",
]


def _ignored(path: str) -> bool:
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO)
    if result.returncode not in (0, 1):
        pytest.fail(f"git check-ignore failed in {REPO}")
    return result.returncode == 0


@pytest.mark.parametrize("path", DVC_WRITES_FOR_GIT)
def test_files_dvc_writes_for_git_are_not_ignored(path: str) -> None:
    assert not _ignored(path), f"{path} is git-ignored: `dvc commit` fails in every clone (see .gitignore)"


@pytest.mark.parametrize("path", RUN_STATE)
def test_run_state_is_ignored(path: str) -> None:
    assert _ignored(path), f"{path} would show in `git status` after a run: add it to .gitignore"
