"""The ``lossval-clean`` flow: raw file -> validated, valued, cleaned, versioned snapshot + retrained model + MLflow run."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import deployment
from prefect.states import Failed
from prefect.transactions import transaction

from flows.trigger import Trigger, detect_trigger
from flows.value_flow import value_step
from tasks.failures import install_log_filter
from tasks.ingest import failed_rows, ingest, save_ingested, save_validated, validate
from tasks.lock import run_lock
from tasks.project import Project, check_flow_parameters
from tasks.publish import publish, recover
from tasks.quarantine import quarantine
from tasks.reference import reference, save_split
from tasks.retrain import HEADLINE, retrain, save_retrained
from tasks.report import build_report, health, run_link, run_record
from tasks.snapshot import push_snapshot, snapshot
from tasks.tracking import close_abandoned_runs, connect, end_run, preflight, record, start_run


@flow(name="lossval-clean", log_prints=True)
def lossval_clean(
    params_file: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    project_dir: str | None = None,
    trigger: Trigger | None = None,
    wait_for_lock: float = 0.0,
) -> dict[str, Any]:
    """Clean one dataset end to end.

    Args:
        params_file: parameters file, relative to the project root.
        overrides: ``{"section.key": value}`` applied on top of the file for this run.
        project_dir: the project root (default: ``LOSSVAL_PROJECT_DIR`` or the working folder).
        trigger: recorded as the MLflow tag ``trigger`` (manual, scheduled, dvc); None = detect it
            (``scheduled`` for a run created by the deployment's schedule, else ``manual``).
        wait_for_lock: seconds to wait for another run on the same project to finish (default: fail at once).

    Guarantees (docs/operations.md): a bad file fails before anything is written; one run
    at a time per project; snapshot, ledger, dvc.lock and the MLflow record are published
    all-or-nothing in one Prefect transaction; a killed run is repaired by the next one.
    """
    install_log_filter()  # no credential in any log (Prefect's included), no traceback for an expected failure
    logger = get_run_logger()
    project = Project.load(project_dir, params_file=params_file, overrides=overrides or {})
    check_flow_parameters(project, params_file=params_file, project_dir=project_dir, deployment_run=bool(deployment.id))
    with run_lock(project.lock_path, wait_seconds=wait_for_lock) as lock:
        if repaired := recover(project):
            logger.warning("%s", repaired)
        # Whole-file checks first, in memory: a bad file fails here and writes nothing.
        preflight(project)
        ingested = ingest(project)
        validated = validate(project, ingested)
        split = reference(project, validated)
        if closed := close_abandoned_runs(project):
            logger.warning("marked MLflow runs left running by an interrupted run as KILLED: %s", closed)
        save_ingested(project, ingested)
        save_validated(project, ingested, validated)
        save_split(project, split)

        trigger = detect_trigger(trigger)
        run_id = start_run(project, trigger=trigger)
        lock.note(mlflow_run_id=run_id)
        try:
            valued, ran_on = value_step(project, split, run_id, params_file=params_file)  # in-process, or value.deployment's pool
            client = connect(project)[0]
            client.set_tag(run_id, "device", valued.device)
            client.set_tag(run_id, "value_deployment", ran_on)
            started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            cleaned = quarantine(
                project, rows_in=ingested.rows_in, input_sha256=ingested.input_sha256, valid=validated.valid,
                schema_failures=failed_rows(ingested, validated), valued=valued, run_id=run_id, at=started_at,
            )
            retrained = retrain(project, split, cleaned.flagged_ids, None if cleaned.unreliable else valued.values)
            save_retrained(project, retrained, scores=False)  # scores.json is published below
            run_name = client.get_run(run_id).info.run_name
            calibration = cleaned.calibration.as_metrics() if cleaned.calibration else None
            report_paths = build_report(
                project, values=valued.values, rule=cleaned.decision.rule, capped=cleaned.decision.capped, history=valued.history,
                counts=cleaned.counts, scores=retrained.scores, quarantine=cleaned.quarantine, ledger=cleaned.ledger, run_id=run_id,
                run_name=run_name, trigger=trigger, at=started_at, device=valued.device, calibration=calibration,
                unreliable=cleaned.unreliable, gate=retrained.gate, check=split.check,
            )
            # Publish all-or-nothing: any failure below rolls every step back.
            with transaction() as txn:
                txn.set("project", project)
                txn.set("run_id", run_id)
                record_json = run_record(project, run_id=run_id, trigger=trigger, counts=cleaned.counts, scores=retrained.scores,
                                         fingerprint=cleaned.fingerprint)
                publish(project, cleaned, record_json, retrained.scores)
                md5 = snapshot(project)
                record(
                    project, run_id, input_sha256=ingested.input_sha256, counts=cleaned.counts, scores=retrained.scores,
                    extra_metrics={k: v for k, v in split.check.items() if isinstance(v, (int, float))},
                    values=valued.values, quarantine=cleaned.quarantine, report_paths=report_paths,
                    lossval_state=valued.model_state, downstream_state=retrained.models[retrained.promoted], train_frame=split.train,
                    snapshot_hash=md5, gate=retrained.gate,
                    calibration=calibration, unreliable=cleaned.unreliable,
                )
            if project.params.snapshot.push:
                push_snapshot(project, md5)  # after the commit: a remote outage leaves a complete local snapshot
        except BaseException as e:
            end_run(project, run_id, "FAILED", failure=e)
            raise
        end_run(project, run_id, "FINISHED")
    lines = health(project, counts=cleaned.counts, calibration=calibration, unreliable=cleaned.unreliable, capped=cleaned.decision.capped,
                   gate=retrained.gate, check=split.check)
    summary = {
        "run_id": run_id, "run_name": run_name, "snapshot": md5, **cleaned.counts, **retrained.scores, "rule": cleaned.decision.rule,
        "promoted": retrained.promoted, "gate": retrained.gate, "health": lines, "valuation_unreliable": cleaned.unreliable,
        "calibration": calibration, "mlflow_run": run_link(project, run_id),
    }
    create_markdown_artifact(key="lossval-clean-summary", markdown=_markdown(project, summary), description="lossval-clean run summary")
    if cleaned.unreliable:
        # Everything is published (schema quarantine applied, nothing quarantined by value, all-rows model champion);
        # the run still ends Failed so that an operator sees it (docs/operations.md, "Unreliable valuation").
        logger.error("%s", UNRELIABLE)
        return Failed(message=UNRELIABLE, data=ValuationUnreliable(summary))
    return summary


UNRELIABLE = (
    "valuation unreliable: the canary self-test failed (corrupted canaries did not rank below clean controls), so nothing "
    "was quarantined by value; the snapshot, the schema quarantine and the MLflow run (tag valuation_unreliable) are "
    "published. Check the reference set (distance, size) and the value settings"
)


class ValuationUnreliable(RuntimeError):
    """The flow run published its results but its canary self-test failed; ``summary`` holds the run's summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(UNRELIABLE)
        self.summary = summary


def _markdown(project: Project, summary: dict[str, Any]) -> str:
    metric = HEADLINE[project.params.base.task]
    variants = [k for k in ("all", "clean", "weighted") if f"test_{metric}_{k}" in summary]
    return "\n".join(
        [
            f"# lossval-clean: {project.params.ingest.path}",
            "",
            "| health | status | |",
            "|---|---|---|",
            *(f"| {topic} | {status} | {text} |" for topic, status, text in summary["health"]),
            "",
            "| rows | count |",
            "|---|---|",
            *(f"| {k} | {summary[k]} |" for k in ("rows_in", "rows_quarantined_schema", "rows_quarantined_value", "rows_clean")),
            "",
            f"Threshold rule: `{summary['rule']}`",
            "",
            f"| test {metric} | " + " | ".join(variants) + " |",
            "|---|" + "---|" * len(variants),
            f"| {metric} | " + " | ".join(f"{summary[f'test_{metric}_{k}']:.4f}" for k in variants) + " |",
            "",
            f"Champion: **{summary['promoted']}**. MLflow run `{summary['run_name']}` ({summary['mlflow_run']}), DVC snapshot `{summary['snapshot']}`.",
        ]
    )
