"""Helpers shared by the pipeline, reliability and integration tests: a real temporary project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "data" / "example"


def run_command(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


#: What a pipeline run writes into the checkout: dvc.lock, the metrics and work files DVC leaves to git, the
#: last run's overrides. Run state, not source: a test's clone takes these as committed, so a user who ran the
#: README's main command before its test command in the same clone does not run the tests on that night's state.
RUN_STATE = ("dvc.lock", "params.overrides.yaml", "data/pipeline/")


def is_run_state(name: str) -> bool:
    return any(name == entry or (entry.endswith("/") and name.startswith(entry)) for entry in RUN_STATE)


def _git_files(repo: Path, *args: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", *args], cwd=repo, capture_output=True, text=True, check=True).stdout
    return [name for name in listed.split("\0") if name]


def clone_files(repo: Path = REPO) -> list[str]:
    """The files a ``git clone`` of ``repo`` would hold, as its working tree has them now: tracked files
    plus untracked ones that git does not ignore (so uncommitted edits are tested too), minus deleted ones,
    and minus the run state (:data:`RUN_STATE`) that is not committed."""
    tracked = set(_git_files(repo, "--cached"))
    listed = _git_files(repo, "--cached", "--others", "--exclude-standard")
    return sorted({name for name in listed if (repo / name).is_file() and (name in tracked or not is_run_state(name))})


def committed_bytes(name: str, repo: Path = REPO) -> bytes:
    """``name`` as the last commit has it."""
    return subprocess.run(["git", "show", f"HEAD:{name}"], cwd=repo, capture_output=True, check=True).stdout


def git_commit_all(root: Path, message: str) -> None:
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", message]):
        if args[0] == "init" and (root / ".git").exists():
            continue
        run_command(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], root)


def clone_repo(destination: Path) -> Path:
    """A real ``git clone`` of this repository's working tree (committed as a clone would see it)."""
    source = destination.with_name(destination.name + "-origin")
    source.mkdir(parents=True)
    for name in clone_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if is_run_state(name):  # a run's edit of a committed file (params.overrides.yaml): as committed
            (source / name).write_bytes(committed_bytes(name))
        else:
            shutil.copy2(REPO / name, source / name)
    git_commit_all(source, "the working tree")
    run_command(["git", "clone", "-q", str(source), str(destination)], destination.parent)
    return destination


#: Test projects (hundreds of rows, a few epochs, ~80 reference rows) are too small for the canary self-test
#: (issue 12) to mean anything, so by default they keep the 2-means rule and switch the self-test off; tests of
#: the decision layer pass the defaults back (tests/pipeline/test_decisions_flow.py).
PLUMBING = {"quarantine.strategy": "auto", "quarantine.min_canary_auroc": 0.0}


def make_project(
    root: Path, *, rows: int = 600, reference_rows: int = 160, epochs: int = 3, params: dict | None = None, experiment: str | None = None
) -> Path:
    """A small but real lossval-clean project, as a user has it: a git clone of this repository (its own
    .gitignore, .dvc config and local remote), with smaller data and epochs set in params.yaml and committed."""
    clone_repo(root)
    pd.read_csv(EXAMPLE / "electricity.csv", dtype=str, keep_default_na=False).head(rows).to_csv(root / "data" / "raw.csv", index=False)
    pd.read_csv(EXAMPLE / "electricity_reference.csv", dtype=str).head(reference_rows).to_csv(root / "data" / "reference.csv", index=False)
    tree = yaml.safe_load((REPO / "params.yaml").read_text())
    tree["ingest"]["path"] = "data/raw.csv"
    tree["reference"]["path"] = "data/reference.csv"
    tree["value"]["epochs"] = epochs
    tree["retrain"]["epochs"] = epochs
    if experiment:  # tests share one MLflow store; each project logs to its own experiment
        tree["tracking"]["experiment"] = experiment
    for dotted, value in {**PLUMBING, **(params or {})}.items():
        section, key = dotted.split(".")
        tree[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    git_commit_all(root, "test data and params")
    return root


def experiment_name(tmp_path: Path) -> str:
    return f"lossval-clean-{tmp_path.name}"


