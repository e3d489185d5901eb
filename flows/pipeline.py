"""The ``lossval-clean`` flow: raw file -> validated, valued, cleaned, versioned snapshot + retrained model + MLflow run."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.transactions import transaction

from flows.trigger import Trigger, detect_trigger
from flows.value_flow import value_step
from tasks.ingest import failed_rows, ingest, save_ingested, save_validated, validate
from tasks.lock import run_lock
from tasks.project import Project
from tasks.publish import publish, recover
from tasks.quarantine import quarantine
from tasks.reference import reference, save_split
from tasks.retrain import HEADLINE, retrain, save_retrained
from tasks.snapshot import push_snapshot, restore_params_backup, snapshot
from tasks.tracking import build_report, close_abandoned_runs, connect, end_run, preflight, record, run_record, start_run


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
    logger = get_run_logger()
    project = Project.load(project_dir, params_file=params_file, overrides=overrides or {})
    with run_lock(project.lock_path, wait_seconds=wait_for_lock) as lock:
        for repaired in filter(None, (restore_params_backup(project.root) and "restored params.yaml from its backup", recover(project))):
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
            cleaned = quarantine(
                project, rows_in=ingested.rows_in, input_sha256=ingested.input_sha256, valid=validated.valid,
                schema_failures=failed_rows(ingested, validated), valued=valued, run_id=run_id,
                at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            retrained = retrain(project, split, cleaned.flagged_ids)
            save_retrained(project, retrained, scores=False)  # scores.json is published below
            report_paths = build_report(
                project, values=valued.values, flagged_ids=cleaned.flagged_ids, threshold=cleaned.decision.threshold,
                rule=cleaned.decision.rule, history=valued.history, counts=cleaned.counts, scores=retrained.scores,
                quarantine=cleaned.quarantine, ledger=cleaned.ledger, run_name=run_id, device=valued.device, imputed=split.check,
            )
            # Publish all-or-nothing: any failure below rolls every step back.
            with transaction() as txn:
                txn.set("project", project)
                txn.set("run_id", run_id)
                publish(project, cleaned, run_record(run_id=run_id, trigger=trigger, counts=cleaned.counts, scores=retrained.scores), retrained.scores)
                md5 = snapshot(project)
                record(
                    project, run_id, input_sha256=ingested.input_sha256, counts=cleaned.counts, scores=retrained.scores,
                    extra_metrics={k: v for k, v in split.check.items() if isinstance(v, (int, float))},
                    values=valued.values, quarantine=cleaned.quarantine, report_paths=report_paths,
                    lossval_state=valued.model_state, downstream_state=retrained.models["clean"], train_frame=split.train,
                    snapshot_hash=md5,
                )
            if project.params.snapshot.push:
                push_snapshot(project, md5)  # after the commit: a remote outage leaves a complete local snapshot
        except BaseException as e:
            end_run(project, run_id, "FAILED", failure=e)
            raise
        end_run(project, run_id, "FINISHED")
    summary = {"run_id": run_id, "snapshot": md5, **cleaned.counts, **retrained.scores, "rule": cleaned.decision.rule}
    create_markdown_artifact(key="lossval-clean-summary", markdown=_markdown(project, summary), description="lossval-clean run summary")
    return summary


def _markdown(project: Project, summary: dict[str, Any]) -> str:
    metric = HEADLINE[project.params.base.task]
    return "\n".join(
        [
            f"# lossval-clean: {project.params.ingest.path}",
            "",
            "| rows | count |",
            "|---|---|",
            *(f"| {k} | {summary[k]} |" for k in ("rows_in", "rows_quarantined_schema", "rows_quarantined_value", "rows_clean")),
            "",
            f"Threshold rule: `{summary['rule']}`",
            "",
            f"| test {metric} | all rows | cleaned rows |",
            "|---|---|---|",
            f"| {metric} | {summary[f'test_{metric}_all']:.4f} | {summary[f'test_{metric}_clean']:.4f} |",
            "",
            f"MLflow run `{summary['run_id']}`, DVC snapshot `{summary['snapshot']}`.",
        ]
    )
