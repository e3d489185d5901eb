"""``lossval-clean restore`` and ``snapshot checkout``: a run's rows back into the clean data, a past run's data back.

``restore`` is a run like a night's: it publishes through the same all-or-nothing path
(cleaning/transaction.py), commits to DVC and saves a DVC experiment, and records an MLflow run
tagged ``trigger=restore`` with the restored rows and the new counts.

The rows come back from the quarantine table itself (it keeps every column of
each row), not from the working files: a row whose source is gone (the input
no longer has it, or the last run failed after rewriting ``work/``) is still
put back, never dropped. The new clean data, quarantine and ledger are staged
as a whole new snapshot folder and swapped in like a run's (cleaning/transaction.py),
the counts updated and the snapshot committed to DVC; any failure puts the
previous snapshot, counts and dvc.lock back, and a kill midway is undone by
the next run's recovery (the previous folder is the one dvc.lock records).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pandas as pd

from lossval.ledger import Ledger
from lossval.rows import ROW_ID
from cleaning.project import Project

if TYPE_CHECKING:
    from cleaning.tracking import Tracker


def restored_rows(quarantine: pd.DataFrame, clean: pd.DataFrame, row_ids: list[str]) -> pd.DataFrame:
    """The quarantined rows ``row_ids`` in the clean table's columns and types.

    Raises:
        ValueError: the quarantine table lacks one of the clean table's columns (nothing is changed).
    """
    absent = [c for c in clean.columns if c not in quarantine.columns]
    if absent:
        raise ValueError(f"cannot restore: the quarantine table lacks the clean data's column(s) {absent}; nothing was changed")
    rows = quarantine[quarantine[ROW_ID].astype(str).isin(row_ids)]
    return rows[list(clean.columns)].astype(clean.dtypes.to_dict())


def restore_rows(project: Project, row_ids: list[str], *, note: str = "") -> list[str]:
    """Pin rows as kept: a ``restored`` ledger event each, and the rows moved back into the clean data now.

    Raises:
        ValueError: an id is not value-quarantined in the current snapshot (unknown, or a schema failure).
    """
    path_q, path_c = project.snapshot_dir / "quarantine.parquet", project.snapshot_dir / "clean.parquet"
    if not path_q.exists():
        raise ValueError("nothing to restore: no snapshot yet (run `lossval-clean run` first)")
    table = pd.read_parquet(path_q)
    wanted = list(dict.fromkeys(map(str, row_ids)))
    stage = dict(zip(table[ROW_ID].astype(str), table["stage"]))
    schema_rows = [r for r in wanted if stage.get(r) == "schema"]
    if schema_rows:
        raise ValueError(f"rows {schema_rows} failed the schema (their data is invalid) and cannot be restored; fix them in the source")
    unknown = [r for r in wanted if r not in stage]
    if unknown:
        raise ValueError(f"rows {unknown} are not in the current quarantine; see `lossval-clean quarantine`")
    old_clean = pd.read_parquet(path_c)
    back = restored_rows(table, old_clean, wanted)
    clean = pd.concat([old_clean, back], ignore_index=True)
    ledger = Ledger.load(project.ledger_path).restore(wanted, at=datetime.now(timezone.utc).isoformat(timespec="seconds"), note=note)
    counts_path = project.metrics_dir / "counts.json"
    counts = json.loads(counts_path.read_text())
    counts["rows_quarantined_value"] -= len(back)
    counts["rows_clean"] += len(back)
    if counts["rows_in"] != counts["rows_quarantined_schema"] + counts["rows_quarantined_value"] + counts["rows_clean"]:
        raise AssertionError(f"row accounting is off: {counts}")  # never expected

    from cleaning.transaction import stage_files, swap_in

    stage_files(project, clean=clean, quarantine=table[~table[ROW_ID].astype(str).isin(wanted)], ledger=ledger)
    swap_in(project)
    from lossval.io import write_json

    write_json(counts, counts_path)
    return wanted


def restore_run(project: Project, row_ids: list[str], *, note: str = "") -> tuple[list[str], Tracker, str]:
    """:func:`restore_rows` as a run: published all or nothing, committed to DVC and saved as a DVC experiment,
    recorded as an MLflow run (tag ``trigger=restore``). Returns (the restored ids, the run, the experiment)."""
    from cleaning.quarantine import COUNT_KEYS
    from cleaning.snapshot import version_run
    from cleaning.tracking import Tracker, preflight
    from cleaning.transaction import publication

    preflight(project)
    tracker = Tracker.start(project, trigger="restore", tags={"restored_rows": ",".join(map(str, row_ids))[:5000]})
    try:
        with publication(project):
            restored = restore_rows(project, row_ids, note=note)
            counts = json.loads((project.metrics_dir / "counts.json").read_text())
            for key, number in {**{k: counts[k] for k in COUNT_KEYS}, "rows_restored": len(restored)}.items():
                tracker.client.log_metric(tracker.run_id, key, number)
            md5, experiment = version_run(project, run_name=tracker.run_name, run_id=tracker.run_id)
            tracker.set_tags(dvc_snapshot=md5, dvc_experiment=experiment, note=note[:5000])
    except BaseException as e:
        tracker.end("FAILED", failure=e)
        raise
    tracker.end("FINISHED")
    return restored, tracker, experiment


def checkout_run(project: Project, run_id: str, destination) -> tuple[str, str, object]:
    """The cleaned data of MLflow run ``run_id``: its DVC experiment (tag ``dvc_experiment``) checked out by DVC
    into ``destination``. Returns (snapshot hash, experiment, destination)."""
    from mlflow.tracking import MlflowClient

    from cleaning.snapshot import SnapshotError, check_destination, checkout
    from cleaning.tracking import tracking_uri

    check_destination(destination)  # before anything is fetched
    try:
        tags = MlflowClient(tracking_uri(project)).get_run(run_id).data.tags
    except Exception as e:
        raise SnapshotError(f"no MLflow run {run_id!r} in {project.params.tracking.experiment!r}") from e
    experiment = tags.get("dvc_experiment")
    if not experiment:
        raise SnapshotError(f"run {run_id} has no dvc_experiment tag: it did not finish publishing")
    md5, path = checkout(project, experiment, destination)
    return md5, experiment, path
