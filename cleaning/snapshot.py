"""Versioning with DVC: every run's outputs recorded in dvc.lock and saved as a DVC experiment; any past run brought back.

Uses the ``dvc`` command line (the stable interface) run with the same Python as this process, and DVC's
own Python API (``DVCFileSystem``) to read a past experiment. The snapshot is the ``quarantine`` stage's
output folder (clean data, quarantine table, ledger); its DVC hash (``<md5>.dir``) is in ``dvc.lock``
and in the MLflow run (tag ``dvc_snapshot``). Each run is saved as the experiment named in the run's tag
``dvc_experiment``, so ``dvc exp show``, ``dvc metrics diff``, ``dvc plots diff`` and ``dvc exp apply``
work on nights as they do on any experiment.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from lossval.io import write_text
from cleaning.overrides import OVERRIDES_FILE
from cleaning.project import Project


class SnapshotError(RuntimeError):
    """A DVC command failed; the message carries DVC's own words."""


class DestinationError(SnapshotError):
    """``snapshot checkout --output`` names something it must not replace; nothing was changed."""


#: A commit identity for the experiment commits DVC makes, used only when git has none configured.
IDENTITY = {"GIT_AUTHOR_NAME": "lossval-clean", "GIT_AUTHOR_EMAIL": "lossval-clean@localhost",
            "GIT_COMMITTER_NAME": "lossval-clean", "GIT_COMMITTER_EMAIL": "lossval-clean@localhost"}


def dvc(project: Project, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project.root, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise SnapshotError(f"`dvc {' '.join(args)}` failed: {' '.join(message[-3:]) if message else 'no output'}")
    return result.stdout


def snapshot_out(project: Project) -> str:
    return project.snapshot_dir.relative_to(project.root).as_posix()


def locked_hash(project: Project) -> str:
    """The snapshot folder's DVC hash as recorded in dvc.lock."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    for out in lock["stages"]["quarantine"]["outs"]:
        if out["path"] == snapshot_out(project):
            return out["md5"]
    raise SnapshotError(f"dvc.lock has no entry for {snapshot_out(project)}")


def commit(project: Project) -> str:
    """Record every stage's outputs (and the run's parameters, params.overrides.yaml included) in dvc.lock
    and the DVC cache; return the snapshot hash."""
    dvc(project, "commit", "--force")
    return locked_hash(project)


def push(project: Project) -> None:
    dvc(project, "push")


def experiment_name(run_name: str, run_id: str) -> str:
    """A DVC experiment name (a git ref name) for an MLflow run: its readable name, slugged, and its id's head."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.").lower() or "run"
    return f"{slug}-{run_id[:8]}"


def save_experiment(project: Project, name: str) -> str:
    """``dvc exp save``: the workspace as it is now (dvc.lock, the metrics, the overrides, the outputs in the
    cache) saved as experiment ``name``. Returns the name."""
    identity = {} if _git_identity(project.root) else IDENTITY
    metrics = [p.relative_to(project.root).as_posix() for p in (project.metrics_dir / "counts.json", project.metrics_dir / "scores.json",
                                                                project.work_file("history.csv")) if p.exists()]
    include = [arg for path in (*metrics, OVERRIDES_FILE) for arg in ("--include-untracked", path)]
    dvc(project, "exp", "save", "--force", "--name", name, *include, env=identity)
    return name


def _git_identity(root: Path) -> bool:
    try:
        out = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.stdout.strip()) or bool(os.environ.get("GIT_COMMITTER_EMAIL"))


CHECKOUT_MARKER = ".lossval-checkout"


def check_destination(destination: Path) -> None:
    """Refuse to replace anything but an empty folder or a previous checkout (which holds :data:`CHECKOUT_MARKER`).

    Raises:
        SnapshotError: ``destination`` is a file, or a folder with other content (``--output .`` would be the project).
    """
    destination = Path(destination)
    if destination.is_symlink() or (destination.exists() and not destination.is_dir()):
        raise DestinationError(f"--output {destination} exists and is not a folder: nothing was changed; pick an empty or new folder")
    if destination.is_dir() and any(destination.iterdir()) and not (destination / CHECKOUT_MARKER).is_file():
        raise DestinationError(
            f"--output {destination} is a folder with other content, not a previous snapshot checkout: nothing was changed; "
            "pick an empty or new folder"
        )


def checkout(project: Project, experiment: str, destination: Path) -> tuple[str, Path]:
    """The snapshot folder of DVC experiment ``experiment`` copied into ``destination`` by DVC (from the
    cache, else the remote), each file checked against the MD5 DVC records. Returns (snapshot hash, destination)."""
    from dvc.api import DVCFileSystem

    check_destination(destination)
    out = snapshot_out(project)
    try:
        fs = DVCFileSystem(str(project.root), rev=experiment)
        md5 = fs.info(out)["md5"]
        expected = {p[len(out) + 1:]: info["md5"] for p, info in fs.find(out, detail=True).items()}
    except Exception as e:  # an unknown revision, a missing output: DVC's own words
        raise SnapshotError(f"experiment {experiment!r} has no snapshot {out}: {type(e).__name__}: {e}") from None
    staging = project.data_dir / ".restore" / experiment
    shutil.rmtree(staging, ignore_errors=True)
    try:
        fs.get(out, str(staging), recursive=True)
        found = file_md5s(staging)
        if found != expected:
            bad = sorted(set(expected.items()) ^ set(found.items()))
            raise SnapshotError(f"snapshot {md5} of {experiment} failed verification: {bad[:3]}")
        destination = Path(destination)
        if destination.exists():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, destination)
        write_text(f"{md5} {experiment}\n", destination / CHECKOUT_MARKER)
        return md5, destination
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def file_md5s(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` by its relative path, with its MD5 (what DVC records of a folder's files)."""
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def matches_lock(project: Project, folder: Path) -> bool:
    """Whether ``folder`` holds exactly the snapshot dvc.lock records, every file's MD5 as DVC's manifest of it
    says (read through DVC's cache API). False when dvc.lock, its entry or the manifest is missing."""
    import json

    from dvc.repo import Repo

    try:
        md5 = locked_hash(project)
        with Repo(str(project.root)) as repo:
            manifest = Path(repo.cache.local.oid_to_path(md5))
        expected = {e["relpath"]: e["md5"] for e in json.loads(manifest.read_text())}
    except (SnapshotError, OSError, KeyError, TypeError, ValueError):
        return False
    return file_md5s(folder) == expected


def version_run(project: Project, *, run_name: str, run_id: str) -> tuple[str, str]:
    """After a run's stages: ``dvc commit`` (dvc.lock records every output and the run's parameters) and
    ``dvc exp save`` under the run's experiment name. Returns (snapshot hash, experiment name)."""
    md5 = commit(project)
    return md5, save_experiment(project, experiment_name(run_name, run_id))
