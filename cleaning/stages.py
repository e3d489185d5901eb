"""The pipeline's stages, each defined once.

A stage reads its inputs from the project's files and writes its outputs there (the paths of
``dvc.yaml``); it takes the project and keyword-only arguments and returns a small summary for the
logs. Both wirings call these very functions: the DVC stages (``lossval-clean stage NAME`` ->
:data:`STAGES`) and the Prefect tasks of the flow (``tasks/steps.py``). See docs/architecture.md.

    ingest -> validate -> reference -> value -> quarantine -> retrain -> record
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from lossval.io import write_json
from lossval.ledger import Ledger
from lossval.rows import ROW_ID
from cleaning import ingest as ingest_rows
from cleaning.project import Project
from cleaning.quarantine import COUNT_KEYS
from cleaning.split import load_split, save_split, split_reference

if TYPE_CHECKING:  # types only: the light stages do not load torch or MLflow
    from cleaning.tracking import Tracker

log = logging.getLogger("lossval_clean")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ingest(project: Project) -> dict[str, Any]:
    """``ingest.path`` -> work/ingested.parquet (every row as read, with its row id)."""
    ingested = ingest_rows.read_input(project)
    ingest_rows.save_ingested(project, ingested)
    log.info("ingested %d rows from %s (sha256 %s)", ingested.rows_in, project.params.ingest.path, ingested.input_sha256[:12])
    return {"rows_in": ingested.rows_in, "input_sha256": ingested.input_sha256}


def validate(project: Project) -> dict[str, Any]:
    """work/ingested.parquet -> work/valid.parquet, work/schema_failures.parquet (rows with their reason)
    and work/schema_failure_cases.parquet (pandera's failure cases)."""
    ingested = ingest_rows.load_ingested(project)
    result = ingest_rows.check_rows(project, ingested)
    ingest_rows.save_validated(project, ingested, result)
    log.info("validated: %d rows pass, %d quarantined by the schema", len(result.valid), len(result.failures))
    if result.extra_columns:
        log.warning("columns not in the schema are kept but not used as features: %s", result.extra_columns)
    for column, why in result.left_out.items():
        log.warning("column %r left out of the features (%s); declare its kind in validate.columns to use it", column, why)
    return {"rows_valid": len(result.valid), "rows_failed": len(result.failures)}


def reference(project: Project) -> dict[str, Any]:
    """work/valid.parquet (+ reference.path, reference.test_path) -> work/{train,reference,test}.parquet, reference_check.json."""
    valid, _ = ingest_rows.load_validated(project)
    split = split_reference(project, valid=valid, features=ingest_rows.feature_names(project, valid))
    save_split(project, split)
    log.info("reference: %d rows (%s), test: %d rows, train: %d rows; OT ratio to train %.2f", len(split.reference),
             split.check["reference_source"], len(split.test), len(split.train), split.check["reference_distance_ratio"])
    return split.check


def value(project: Project, *, callbacks=(), progress: bool | None = None, shard: int | None = None) -> dict[str, Any]:
    """work/train.parquet, work/reference.parquet -> work/values.parquet, canaries.parquet, history.csv, lossval_model.pt.

    With ``value.shards`` K > 1 the rows are split by a hash of their id and each shard is valued against the
    same reference set (into work/shards/<k>/), then pooled (one threshold downstream); ``shard`` values that
    shard only (a fan-out over Prefect runs: flows/value_flow.py pools them).
    """
    from cleaning.value import pool_shards, save_valued, shard_folder, value_rows

    shards = project.params.value.shards
    if shards > 1 and shard is None:  # every shard here, one after the other (dvc repro, an in-process run)
        for k in range(shards):
            value(project, callbacks=callbacks if k == 0 else (), progress=progress, shard=k)
        valued = pool_shards(project)
    else:
        valued = value_rows(project, load_split(project), callbacks=callbacks, progress=progress, shard=shard)
        save_valued(project, valued, folder=None if shard is None else shard_folder(project, shard))
    where = "" if shard is None else f" (shard {shard} of {shards})"
    log.info("valued %d rows%s in %.1f s on %s", len(valued.values), where, valued.seconds, valued.device)
    return valued.summary()


def quarantine(project: Project, *, run_id: str | None = None, at: str | None = None) -> dict[str, Any]:
    """The values and schema failures -> the snapshot folder (clean.parquet, quarantine.parquet, ledger.parquet),
    swapped in whole, and metrics/counts.json. ``run_id`` names the run in the ledger (default: a new id)."""
    from cleaning.quarantine import decide_rows
    from cleaning.transaction import stage_files, swap_in
    from cleaning.value import load_valued

    ingested = ingest_rows.load_ingested(project)
    valid, failures = ingest_rows.load_validated(project)
    cleaned = decide_rows(project, rows_in=ingested.rows_in, input_sha256=ingested.input_sha256, valid=valid, schema_failures=failures,
                          valued=load_valued(project), run_id=run_id or uuid.uuid4().hex, at=at or now())
    stage_files(project, clean=cleaned.clean, quarantine=cleaned.quarantine, ledger=cleaned.ledger)
    swap_in(project)  # the previous snapshot stays aside until the run is published (cleaning/transaction.py)
    calibration = {k: v for k, v in (cleaned.calibration.as_metrics() if cleaned.calibration else {}).items() if v == v}  # no NaN in JSON
    counts = {**cleaned.counts, "rule": cleaned.decision.rule, "threshold": cleaned.decision.threshold, "capped": cleaned.decision.capped,
              "fingerprint": cleaned.fingerprint, "input_sha256": ingested.input_sha256, "valuation_unreliable": cleaned.unreliable, **calibration}
    write_json(counts, project.metrics_dir / "counts.json")
    c = cleaned.counts
    log.info("%d rows in: %d quarantined by schema, %d by value (%s), %d clean", c["rows_in"], c["rows_quarantined_schema"],
             c["rows_quarantined_value"], cleaned.decision.rule, c["rows_clean"])
    return counts


CALIBRATION_KEYS = ("estimated_bad", "estimated_bad_low", "estimated_bad_high", "estimated_precision", "estimated_recall",
                    "canary_auroc", "canary_recall")  # lossval.calibrate.Calibration.as_metrics


def read_counts(project: Project) -> dict[str, Any]:
    return json.loads((project.metrics_dir / "counts.json").read_text())


def retrain(project: Project) -> dict[str, Any]:
    """work/{train,test}.parquet, the snapshot's quarantine and the values -> work/downstream/ (a model per
    variant, gate.json) and metrics/scores.json. The weighted variant is left out when the self-test failed."""
    from cleaning.retrain import describe, retrain_models, save_retrained

    quarantined = pd.read_parquet(project.snapshot_dir / "quarantine.parquet", columns=[ROW_ID, "stage"])
    flagged = quarantined.loc[quarantined["stage"] == "value", ROW_ID].astype(str).tolist()
    values = None if read_counts(project).get("valuation_unreliable") else pd.read_parquet(project.work_file("values.parquet"))
    retrained = retrain_models(project, load_split(project), flagged, values)
    save_retrained(project, retrained)
    log.info("%s", describe(retrained))
    return retrained.gate


def record(project: Project, *, tracker: Tracker, trigger: str, snapshot_hash: str | None = None, live_epochs: bool = False) -> dict[str, Any]:
    """Everything above -> reports/ (report.html and plots), work/run.json, and the MLflow run of ``tracker``
    (params, metrics, tables, models; the champion registered). Returns the run's summary.
    ``live_epochs``: the value stage logged its epochs to this run as they ran (else they are logged here)."""
    from cleaning.report import build_report, health, run_record
    from cleaning.retrain import load_retrained
    from cleaning.value import load_valued

    split, valued, retrained, counts_file = load_split(project), load_valued(project), load_retrained(project), read_counts(project)
    counts = {k: counts_file[k] for k in COUNT_KEYS}
    calibration = {k: counts_file[k] for k in CALIBRATION_KEYS if k in counts_file} or None
    unreliable = bool(counts_file.get("valuation_unreliable", False))
    quarantine_table = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    check = {k: v for k, v in split.check.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    lines = health(project, counts=counts, calibration=calibration, unreliable=unreliable, capped=bool(counts_file.get("capped")),
                   gate=retrained.gate, check=split.check)
    paths = build_report(
        project, values=valued.values, rule=counts_file["rule"], history=valued.history, counts=counts, scores=retrained.scores,
        quarantine=quarantine_table, ledger=Ledger.load(project.ledger_path), run_id=tracker.run_id, run_name=tracker.run_name,
        trigger=trigger, at=now(), device=valued.device, health_lines=lines, check=split.check, link=tracker.url,
        drift=tracker.past_value_quantiles(),
    )
    write_json(run_record(project, run_id=tracker.run_id, trigger=trigger, counts=counts, scores=retrained.scores,
                          fingerprint=counts_file.get("fingerprint", "")), project.work_file("run.json"))
    gate = retrained.gate
    metrics = {**counts, **retrained.scores, **check, **gate["metrics"], "test_rows": gate["test_rows"], **(calibration or {})}
    tags = {"promoted": gate["promoted"], "champion_reason": gate["reason"][:5000], "device": valued.device,
            "test_resolves_one_point": str(gate["resolves_one_point"]).lower()} | ({"valuation_unreliable": "true"} if unreliable else {})
    params = {"input_sha256": counts_file.get("input_sha256", ""),
              **{f"value.resolved.{k}": v for k, v in valued.settings.items()},
              **{f"retrain.resolved.{k}": v for k, v in gate.get("settings", {}).items()}}
    failure_cases = project.work_file("schema_failure_cases.parquet")
    tracker.log_schema_failures(pd.read_parquet(failure_cases) if failure_cases.exists() else pd.DataFrame())
    tracker.log_inputs(train=split.train, reference=split.reference, test=split.test, source=str(project.params.ingest.path))
    tracker.log_result(
        params=params, metrics=metrics, tags=tags, values=valued.values, quarantine=quarantine_table, report_paths=paths,
        lossval_state=valued.model_state, downstream_state=retrained.models[retrained.promoted], train_frame=split.train,
        class_names=_class_names(project, split.train), snapshot_hash=snapshot_hash, history=None if live_epochs else valued.history,
    )
    return {**counts, **retrained.scores, "rule": counts_file["rule"], "promoted": retrained.promoted, "gate": gate, "health": lines,
            "valuation_unreliable": unreliable, "calibration": calibration, "device": valued.device,
            "quarantine": quarantine_table}


def _class_names(project: Project, train: pd.DataFrame) -> list[str] | None:
    if project.params.base.task != "classification":
        return None
    return sorted(map(str, train[project.params.base.target].unique()))


def run_record_stage(project: Project) -> None:
    """The DVC ``record`` stage: the stages above were run by ``dvc repro``; log them as an MLflow run (trigger=dvc)."""
    from cleaning.snapshot import locked_hash
    from cleaning.tracking import Tracker

    tracker = Tracker.start(project, trigger="dvc")
    try:
        summary = record(project, tracker=tracker, trigger="dvc", snapshot_hash=locked_hash(project))
    except BaseException as e:
        tracker.end("FAILED", failure=e)
        raise
    tracker.end("FINISHED")
    if summary["valuation_unreliable"]:
        log.error("valuation unreliable: the canary self-test failed, nothing was quarantined by value (MLflow tag valuation_unreliable)")


STAGES = {f.__name__: f for f in (ingest, validate, reference, value, quarantine, retrain, record)}


def run_stage(name: str, project: Project) -> None:
    """One DVC stage, all or nothing (cleaning/transaction.py): what ``lossval-clean stage NAME`` runs."""
    from cleaning.transaction import publication

    with publication(project):
        if name == "record":
            run_record_stage(project)
        else:
            STAGES[name](project)
