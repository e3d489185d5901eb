"""The valuation step, where it runs: in the flow's own process, or as the flow ``lossval-value`` on a GPU work pool.

With ``value.deployment: null`` (the default) the parent flow values the
rows itself. With ``value.deployment: lossval-value/gpu`` it calls that
deployment with ``run_deployment``: a worker on the deployment's work pool
(a machine with a GPU, or a Kubernetes pod with a GPU request) runs
:func:`lossval_value`, while the parent waits on its CPU worker.

The two exchange data through the project's files, never through Prefect
results: the parent has written ``work/train.parquet`` and
``work/reference.parquet`` before it calls; the valuation run writes
``work/values.parquet``, ``work/history.csv`` and ``work/lossval_model.pt``
(with the device it used), which the parent reads back. So the GPU worker
must see the same project folder at the same path (the same machine, or a
shared volume mounted at the same path; see docs/deployment.md), and log to the
same MLflow store: the worker's ``MLFLOW_TRACKING_URI`` (never passed as a
parameter, so that no credential lands in Prefect's database) or the project's
sqlite file.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from pipeline.project import Project
from pipeline.tracking import Tracker
from tasks import steps

IN_PROCESS = "in-process"


@flow(name="lossval-value", log_prints=True)
def lossval_value(
    run_id: str,
    project_dir: str | None = None,
    params_file: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Value the rows of the project's current split, for the MLflow run ``run_id`` of a ``lossval-clean`` flow run.

    Args:
        run_id: the parent's MLflow run; per-epoch metrics are logged to it live, and this valuation's own
            system metrics (CPU, memory, GPU) to a nested run ``valuation``.
        project_dir: the project root, as the parent sees it (the same path on this worker).
        params_file: parameters file, relative to the project root.
        overrides: the parent run's ``{"section.key": value}`` overrides.

    Returns:
        ``{"rows": ..., "device": ..., "seconds": ...}``; the values themselves are in ``work/values.parquet``.
    """
    from prefect.runtime import deployment

    from pipeline.failures import install_log_filter
    from pipeline.project import check_flow_parameters

    install_log_filter()
    project = Project.load(project_dir, params_file=params_file, overrides=overrides or {})
    check_flow_parameters(project, params_file=params_file, project_dir=project_dir, deployment_run=bool(deployment.id))
    tracker = Tracker.resume(project, run_id)
    try:
        return steps.value(project, callbacks=[tracker.epoch_logger()])
    finally:
        tracker.close()


def value_step(project: Project, tracker: Tracker, *, params_file: str = "params.yaml") -> dict[str, Any]:
    """Run the value stage where ``value.deployment`` says; tag the MLflow run with where it ran and on which device.

    Raises:
        RuntimeError: the valuation deployment's run did not complete (its state and message are in the error).
    """
    deployment = project.params.value.deployment
    if deployment is None:
        result = steps.value(project, callbacks=[tracker.epoch_logger()])
        tracker.set_tags(device=result["device"], value_deployment=IN_PROCESS)
        return result
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    logger.info("valuing on deployment %s: waiting for a worker of its work pool", deployment)
    child = run_deployment(
        deployment,
        parameters={"run_id": tracker.run_id, "project_dir": str(project.root), "params_file": params_file, "overrides": project.overrides},
        poll_interval=3,
        as_subflow=True,
    )
    state = child.state
    if state is None or not state.is_completed():
        name, message = (state.name, state.message) if state else ("unknown", "")
        raise RuntimeError(f"valuation run {child.name!r} of deployment {deployment!r} ended {name}: {message}")
    from pipeline.value import load_valued

    valued = load_valued(project)  # through the project's files, never Prefect results
    result = {"rows": len(valued.values), "device": valued.device, "seconds": round(valued.seconds, 3), "settings": valued.settings}
    tracker.set_tags(device=result["device"], value_deployment=deployment)
    logger.info("deployment %s valued %d rows on %s in %.1f s (flow run %s)", deployment, result["rows"], result["device"], result["seconds"], child.name)
    return result
