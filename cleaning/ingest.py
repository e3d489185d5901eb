"""Steps 1-2: read the raw file and give rows stable ids; validate them with pandera."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from lossval.io import write_parquet
from lossval.rows import ROW_ID, assign_row_ids, check_row_drop, file_sha256, read_table_hashed
from schemas.dataset import ValidationResult, model_schema, schema_from_params, validate_rows
from cleaning.project import Project

DUPLICATE = "_duplicate"
EXTRA_FIELDS = "_extra_fields"  # the CSV row had more fields than the header (kept with its first fields)
INTERNAL = (DUPLICATE, EXTRA_FIELDS)


@dataclass(frozen=True)
class Ingested:
    frame: pd.DataFrame  # every input row, values as read, plus row_id and the duplicate flag
    input_sha256: str

    @property
    def rows_in(self) -> int:
        return len(self.frame)


def read_input(project: Project) -> Ingested:
    """Read ``ingest.path`` (never modified) and assign row ids. Raises TableError on an unusable file."""
    cfg = project.params.ingest
    path = project.input_path(cfg.path)
    frame, sha256, extra_fields = read_table_hashed(path, fmt=cfg.format)  # the hash of exactly the bytes parsed
    check_row_drop(len(frame), previous=previous_rows_in(project), max_drop=cfg.max_row_drop, name=path.name)
    ids, duplicate = assign_row_ids(frame, cfg.id_column)
    frame = frame.copy()
    frame.insert(0, ROW_ID, ids)
    frame[DUPLICATE] = duplicate
    frame[EXTRA_FIELDS] = extra_fields
    return Ingested(frame=frame, input_sha256=sha256)


def previous_rows_in(project: Project) -> int | None:
    """Rows the last published run read (its counts.json), if any."""
    import json

    path = project.metrics_dir / "counts.json"
    try:
        return int(json.loads(path.read_text())["rows_in"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_ingested(project: Project, ingested: Ingested) -> None:
    frame = ingested.frame  # values as read are strings already: only the rest is cast (a cast of every column cost ~30 s at 10^6 rows)
    write_parquet(frame.astype({c: "string" for c in frame.columns if c not in INTERNAL and not pd.api.types.is_string_dtype(frame[c])}),
                  project.work_file("ingested.parquet"))


def load_ingested(project: Project) -> Ingested:
    frame = pd.read_parquet(project.work_file("ingested.parquet"))
    frame = frame.astype({c: object for c in frame.columns if c not in INTERNAL}).where(frame.notna(), None)
    return Ingested(frame=frame, input_sha256=file_sha256(project.input_path(project.params.ingest.path)))


def build_schema(project: Project, frame: pd.DataFrame) -> pa.DataFrameSchema:
    """The schema named in ``validate.schema_name``, or one built from params (column kinds detected from ``frame``)."""
    if project.params.validate_.schema_name != "params":
        return model_schema(project.params.validate_.schema_name)
    return schema_from_params(frame, params=project.params, reserved=(ROW_ID, *INTERNAL))


def feature_names(project: Project, frame: pd.DataFrame) -> list[str]:
    return [c for c in build_schema(project, frame).columns if c != project.params.base.target]


def check_rows(project: Project, ingested: Ingested) -> ValidationResult:
    """Validate every row. Raises DatasetError when the file as a whole is unusable."""
    base = project.params.base
    raw = ingested.frame.drop(columns=[c for c in INTERNAL if c in ingested.frame.columns])
    schema = build_schema(project, raw)
    return validate_rows(
        raw, schema=schema, target=base.target, task=base.task, duplicate=ingested.frame[DUPLICATE],
        extra_fields=ingested.frame.get(EXTRA_FIELDS),
        id_column=project.params.ingest.id_column,
    )


def failed_rows(ingested: Ingested, result: ValidationResult) -> pd.DataFrame:
    """The schema failures with every column of the row as read: row_id, reason, columns..."""
    failed = result.failures.merge(ingested.frame.drop(columns=[c for c in INTERNAL if c in ingested.frame.columns]), on=ROW_ID, how="left")
    return failed.astype("string")


def save_validated(project: Project, ingested: Ingested, result: ValidationResult) -> None:
    write_parquet(result.valid, project.work_file("valid.parquet"))
    write_parquet(failed_rows(ingested, result), project.work_file("schema_failures.parquet"))
    cases = result.failure_cases if result.failure_cases is not None else pd.DataFrame()
    write_parquet(cases.astype("string"), project.work_file("schema_failure_cases.parquet"))  # pandera's own table, for MLflow


def load_validated(project: Project) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, schema failures with their raw columns)."""
    return pd.read_parquet(project.work_file("valid.parquet")), pd.read_parquet(project.work_file("schema_failures.parquet"))
