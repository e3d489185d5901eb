"""Step 7: version the cleaned snapshot with DVC, push it, and bring any past one back by hash.

Uses the ``dvc`` command line (the stable interface), run with the same
Python as this process. The snapshot is the ``quarantine`` stage's output
folder (clean data, quarantine table, ledger); its DVC hash (``<md5>.dir``)
identifies it everywhere: in ``dvc.lock``, in the MLflow run (tag
``dvc_snapshot``) and in the DVC cache and remote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from prefect import get_run_logger, task

from lossval.io import write_text
from tasks.project import PARAMS_FILE, Project


class SnapshotError(RuntimeError):
    """A DVC command failed; the message carries DVC's own words."""


class DestinationError(SnapshotError):
    """``snapshot checkout --output`` names something it must not replace; nothing was changed."""


def dvc(project: Project, *args: str, timeout: float = 600) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
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


def record_run_params(project: Project) -> None:
    """Make dvc.lock say which parameter values produced this run's outputs (``--set`` overrides included).

    ``params.yaml`` is never edited (a crash can then never leave a run's
    overrides in it): after ``dvc commit`` has recorded every stage, the
    ``params.yaml`` values of each stage's entry in dvc.lock are set to the
    run's effective values, written atomically. ``dvc status`` then reports
    the difference from params.yaml, as ``dvc exp run -S`` would.
    """
    if not project.overrides:
        return
    path = project.root / "dvc.lock"
    lock = yaml.safe_load(path.read_text())
    effective = project.params.as_dict()
    for stage in (lock.get("stages") or {}).values():
        recorded = (stage.get("params") or {}).get(PARAMS_FILE) or {}
        for dotted in recorded:
            node: object = effective
            for part in dotted.split("."):
                node = node[part]
            recorded[dotted] = node
    write_text(yaml.safe_dump(lock, sort_keys=False), path)


def commit(project: Project) -> str:
    """Record every stage's outputs in dvc.lock and the DVC cache; return the snapshot hash."""
    dvc(project, "commit", "--force")
    record_run_params(project)
    return locked_hash(project)


def push(project: Project) -> None:
    dvc(project, "push")


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


def checkout(project: Project, md5: str, destination: Path) -> Path:
    """Bring snapshot ``md5`` back into ``destination`` (from the cache, else the remote) and verify it."""
    if not md5.endswith(".dir") or not all(c in "0123456789abcdef" for c in md5[:-4]) or len(md5) != 36:
        raise SnapshotError(f"not a DVC folder hash: {md5!r}")
    staging = project.data_dir / ".restore"
    staging.mkdir(parents=True, exist_ok=True)
    name = f"snapshot-{md5[:12]}"
    restored = staging / name
    # DVC refuses .dvc files in git-ignored folders: the pointer sits at the root, its output in the data folder
    pointer = project.root / f".lossval-restore-{md5[:12]}.dvc"
    write_text(yaml.safe_dump({"outs": [{"md5": md5, "path": restored.relative_to(project.root).as_posix(), "hash": "md5"}]}), pointer)
    try:
        dvc(project, "pull", pointer.name)
        verify(project, md5, restored)
        destination = Path(destination)
        check_destination(destination)
        if destination.exists():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(restored, destination)
        write_text(md5 + "\n", destination / CHECKOUT_MARKER)
        return destination
    finally:
        pointer.unlink(missing_ok=True)
        shutil.rmtree(restored, ignore_errors=True)


def verify(project: Project, md5: str, folder: Path) -> None:
    """Check every file of ``folder`` against the snapshot's manifest in the DVC cache."""
    manifest_path = project.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    entries = json.loads(manifest_path.read_text())
    expected = {e["relpath"]: e["md5"] for e in entries}
    found = {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}
    if found != expected:
        bad = sorted(set(expected.items()) ^ set(found.items()))
        raise SnapshotError(f"snapshot {md5} failed verification: {bad[:3]}")


def matches_lock(project: Project, folder: Path) -> bool:
    """Whether ``folder`` holds exactly the snapshot dvc.lock records (every file's MD5, from the DVC cache manifest).
    False when dvc.lock, its entry or the manifest is missing: nothing to verify against."""
    try:
        verify(project, locked_hash(project), folder)
    except (SnapshotError, OSError, KeyError, TypeError, ValueError):
        return False
    return True


@task(name="snapshot")
def snapshot(project: Project) -> str:
    """``dvc commit``: record the snapshot in dvc.lock and the cache. On rollback dvc.lock is put back
    (cache objects are content-addressed and harmless)."""
    from prefect.transactions import get_transaction

    from tasks.publish import FileBackup

    txn = get_transaction()
    backup = FileBackup(project.root / "dvc.lock")
    if txn is not None:
        txn.set("lock_backup", backup)
    try:
        md5 = commit(project)
    except BaseException:  # on_rollback runs only for a task that succeeded: put dvc.lock back here
        backup.restore()
        raise
    get_run_logger().info("snapshot %s committed to dvc.lock and the DVC cache", md5)
    return md5


@snapshot.on_rollback
def _restore_lock(txn) -> None:
    txn.get("lock_backup").restore()


@task(name="push", retries=3, retry_delay_seconds=2)
def push_snapshot(project: Project, md5: str) -> None:
    """Push to the DVC remote (retried: remotes fail transiently). The snapshot stays in the cache either way."""
    push(project)
    get_run_logger().info("snapshot %s pushed to the DVC remote", md5)


def checkout_run(project: Project, run_id: str, destination: Path) -> tuple[str, Path]:
    """Find the run's snapshot hash in MLflow (tag ``dvc_snapshot``) and check it out into ``destination``."""
    from mlflow.exceptions import MlflowException

    from tasks.tracking import connect

    check_destination(destination)  # before anything is fetched
    client, _ = connect(project)
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise SnapshotError(f"no MLflow run {run_id!r} in {project.params.tracking.experiment!r}") from e
    md5 = run.data.tags.get("dvc_snapshot")
    if not md5:
        raise SnapshotError(f"run {run_id} has no dvc_snapshot tag: it did not finish its snapshot step")
    return md5, checkout(project, md5, destination)
