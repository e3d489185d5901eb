"""``lossval-clean restore``: take value-quarantined rows back into the clean data, all or nothing.

The rows come back from the quarantine table itself (it keeps every column of
each row), not from the working files: a row whose source is gone (the input
no longer has it, or the last run failed after rewriting ``work/``) is still
put back, never dropped. The new clean data, quarantine and ledger are staged
as a whole new snapshot folder and swapped in like a run's (tasks/publish.py),
the counts updated and the snapshot committed to DVC; any failure puts the
previous snapshot, counts and dvc.lock back, and a kill midway is undone by
the next run's recovery (the previous folder is the one dvc.lock records).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from lossval.ledger import Ledger
from lossval.rows import ROW_ID
from tasks.project import Project


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
    from tasks.publish import FileBackup, discard_previous, stage_files, swap_back, swap_in
    from tasks.snapshot import commit

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

    backup = FileBackup(counts_path, project.root / "dvc.lock")
    stage_files(project, clean=clean, quarantine=table[~table[ROW_ID].astype(str).isin(wanted)], ledger=ledger)
    had_previous = swap_in(project)
    try:
        from lossval.io import write_json

        write_json(counts, counts_path)
        commit(project)  # dvc.lock records the snapshot as it now is
    except BaseException:
        swap_back(project, had_previous)
        backup.restore()
        raise
    discard_previous(project)
    return wanted
