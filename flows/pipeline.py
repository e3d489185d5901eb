"""The ``lossval-clean`` flow: raw file -> validated, valued, cleaned, versioned snapshot + retrained model + MLflow run.

The flow only wires: the stages are cleaning/stages.py (the same functions ``dvc repro`` runs), crash
safety is cleaning/transaction.py, MLflow is one :class:`cleaning.tracking.Tracker`, DVC versioning is
cleaning/snapshot.py. See docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment
from prefect.states import Failed

from flows.artifacts import failure_summary, run_artifacts
from flows.trigger import Trigger, detect_trigger
from flows.value_flow import value_step
from cleaning.failures import install_logging
from cleaning.overrides import write_overrides
from cleaning.project import Project, check_flow_parameters
from cleaning.tracking import Tracker, preflight
from cleaning.transaction import close_abandoned_runs, first_files, publication, recover, run_lock
from tasks import steps


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
        overrides: ``{"section.key": value}`` applied on top of the file for this run (recorded in params.overrides.yaml).
        project_dir: the project root (default: ``LOSSVAL_PROJECT_DIR`` or the working folder).
        trigger: recorded as the MLflow tag ``trigger`` (manual, scheduled, dvc, restore); None = detect it
            (``scheduled`` for a run created by the deployment's schedule, else ``manual``).
        wait_for_lock: seconds to wait for another run on the same project to finish (default: fail at once;
            the ``prod`` deployment queues its runs with a Prefect concurrency limit instead).

    Guarantees (docs/operations.md): a bad file fails before anything is published; one run at a time per
    project; snapshot, ledger, metrics, dvc.lock, the DVC experiment and the MLflow record are published
    all-or-nothing; a killed run is repaired by the next one.
    """
    install_logging()  # no credential in any log (Prefect's included), no traceback for an expected failure
    logger = get_run_logger()
    project = Project.load(project_dir, params_file=params_file, overrides=overrides or {})
    check_flow_parameters(project, params_file=params_file, project_dir=project_dir, deployment_run=bool(deployment.id))
    trigger = detect_trigger(trigger)
    with run_lock(project.lock_path, wait_seconds=wait_for_lock) as lock:
        if repaired := recover(project):
            logger.warning("%s", repaired)
        if closed := close_abandoned_runs(project, lock.leftover.get("mlflow_run_id")):
            logger.warning("marked the MLflow run left running by an interrupted run as KILLED: %s", closed)
        preflight(project)  # MLflow answers, before anything is written
        with first_files(project):  # whole-file checks first: a bad file fails here, with nothing published
            steps.ingest(project)
            steps.validate(project)
            steps.reference(project)
        tracker = Tracker.start(project, trigger=trigger)
        lock.note(mlflow_run_id=tracker.run_id)
        try:
            with publication(project) as undo_steps:  # any failure below puts everything back (cleaning/transaction.py)
                value_step(project, tracker, params_file=params_file)  # in-process, or value.deployment's pool
                steps.quarantine(project, run_id=tracker.run_id)
                steps.retrain(project)
                previous_champion = tracker.champion_version()
                undo_steps.append(lambda: tracker.unregister(previous_champion=previous_champion))
                summary = steps.record(project, tracker=tracker, trigger=trigger, live_epochs=True)
                write_overrides(project.root, project.overrides)  # last: a run killed before this leaves the previous run's
                md5, experiment = steps.version(project, run_name=tracker.run_name, run_id=tracker.run_id)
                tracker.set_tags(dvc_snapshot=md5, dvc_experiment=experiment)
            if project.params.snapshot.push:
                steps.push(project)  # after the publication: a remote outage leaves a complete local snapshot
        except BaseException as e:
            tracker.end("FAILED", failure=e)
            failure_summary(project, tracker, e)
            raise
        tracker.end("FINISHED")
    summary |= {"run_id": tracker.run_id, "run_name": tracker.run_name, "snapshot": md5, "dvc_experiment": experiment,
                "mlflow_run": tracker.url}
    run_artifacts(project, summary)
    quarantine = summary.pop("quarantine")
    logger.info("%d rows quarantined; DVC experiment %s; MLflow run %s", len(quarantine), experiment, tracker.url)
    if summary["valuation_unreliable"]:
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
