"""Entry points of the DVC stages (dvc.yaml): each reads the previous stage's files, calls the same
step the flow calls, and writes its own outputs. ``lossval-clean stage NAME`` runs one."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

import pandas as pd

from tasks.project import Project

# Each stage is its own process under `dvc repro`: import only what the stage needs.
logger = logging.getLogger("lossval_clean.stages")


def ingest(project: Project) -> None:
    from tasks import ingest as ingest_step

    ingest_step.save_ingested(project, ingest_step.read_input(project))


def validate(project: Project) -> None:
    from tasks import ingest as ingest_step

    ingested = ingest_step.load_ingested(project)
    ingest_step.save_validated(project, ingested, ingest_step.check_rows(project, ingested))


def reference(project: Project) -> None:
    from tasks import ingest as ingest_step
    from tasks import reference as reference_step

    valid, _ = ingest_step.load_validated(project)
    features = ingest_step.feature_names(project, valid)
    reference_step.save_split(project, reference_step.split_reference(project, valid, features, logger))


def value(project: Project) -> None:
    from tasks import reference as reference_step
    from tasks import value as value_step

    value_step.save_valued(project, value_step.value_rows(project, reference_step.load_split(project)))


def quarantine(project: Project) -> None:
    from tasks import ingest as ingest_step
    from tasks import quarantine as quarantine_step
    from tasks import value as value_step
    from tasks.publish import discard_previous, publish_files

    ingested = ingest_step.load_ingested(project)
    valid, failures = ingest_step.load_validated(project)
    cleaned = quarantine_step.decide_rows(
        project, rows_in=ingested.rows_in, input_sha256=ingested.input_sha256, valid=valid, schema_failures=failures,
        valued=value_step.load_valued(project), run_id=uuid.uuid4().hex,
        at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    publish_files(project, cleaned)
    discard_previous(project)


def retrain(project: Project) -> None:
    from tasks import reference as reference_step
    from tasks import retrain as retrain_step

    flagged = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    flagged_ids = flagged.loc[flagged["stage"] == "value", "row_id"].astype(str).tolist()
    values = pd.read_parquet(project.work_file("values.parquet"))
    if json.loads((project.metrics_dir / "counts.json").read_text()).get("valuation_unreliable"):
        values = None  # the canary self-test failed: no value-weighted variant
    retrain_step.save_retrained(project, retrain_step.retrain_models(project, reference_step.load_split(project), flagged_ids, values))


def record(project: Project) -> None:
    """Log this `dvc repro` as an MLflow run (trigger=dvc), like the flow's record step."""
    from lossval.io import write_json
    from lossval.ledger import Ledger
    from tasks import ingest as ingest_step
    from tasks import reference as reference_step
    from tasks import report as report_step
    from tasks import retrain as retrain_step
    from tasks import tracking
    from tasks import value as value_step
    from tasks.snapshot import locked_hash

    split = reference_step.load_split(project)
    valued = value_step.load_valued(project)
    retrained = retrain_step.load_retrained(project)
    counts_file = json.loads((project.metrics_dir / "counts.json").read_text())
    counts = {k: counts_file[k] for k in ("rows_in", "rows_quarantined_schema", "rows_quarantined_value", "rows_clean")}
    calibration = {k: counts_file[k] for k in CALIBRATION_KEYS if k in counts_file} or None
    unreliable = bool(counts_file.get("valuation_unreliable", False))
    quarantine_table = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    ingested = ingest_step.load_ingested(project)
    run_id = tracking.start_run(project, trigger="dvc", device=valued.device)
    try:
        client = tracking.connect(project)[0]
        paths = report_step.build_report(
            project, values=valued.values, rule=counts_file["rule"], capped=bool(counts_file.get("capped", False)),
            history=valued.history, counts=counts, scores=retrained.scores, quarantine=quarantine_table,
            ledger=Ledger.load(project.ledger_path), run_id=run_id, run_name=client.get_run(run_id).info.run_name, trigger="dvc",
            at=datetime.now(timezone.utc).isoformat(timespec="seconds"), device=valued.device, calibration=calibration,
            unreliable=unreliable, gate=retrained.gate, check=split.check,
        )
        record_json = report_step.run_record(project, run_id=run_id, trigger="dvc", counts=counts, scores=retrained.scores,
                                             fingerprint=counts_file.get("fingerprint", ""))
        write_json(record_json, project.work_file("run.json"))
        tracking.log_run(
            project, run_id, input_sha256=ingested.input_sha256, counts=counts, scores=retrained.scores,
            extra_metrics={k: v for k, v in split.check.items() if isinstance(v, (int, float))},
            values=valued.values, quarantine=quarantine_table, report_paths=paths, lossval_state=valued.model_state,
            downstream_state=retrained.models[retrained.promoted], train_frame=split.train, snapshot_hash=locked_hash(project),
            history=valued.history, gate=retrained.gate, calibration=calibration, unreliable=unreliable,
        )
    except BaseException:
        tracking.end_run(project, run_id, "FAILED")
        raise
    tracking.end_run(project, run_id, "FINISHED")
    if unreliable:
        logger.error("valuation unreliable: the canary self-test failed, nothing was quarantined by value (MLflow tag valuation_unreliable)")


#: The calibration metrics the quarantine stage writes into counts.json (lossval.calibrate.Calibration.as_metrics).
CALIBRATION_KEYS = ("estimated_bad", "estimated_bad_low", "estimated_bad_high", "estimated_precision", "estimated_recall",
                    "canary_auroc", "canary_recall")


STAGES = {f.__name__: f for f in (ingest, validate, reference, value, quarantine, retrain, record)}


def run_stage(name: str, project: Project | None = None) -> None:
    STAGES[name](project or Project.load())
