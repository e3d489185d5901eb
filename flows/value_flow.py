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

from cleaning.project import Project
from cleaning.tracking import Tracker
from tasks import steps

IN_PROCESS = "in-process"


@flow(name="lossval-value", log_prints=True)
def lossval_value(
    run_id: str,
    project_dir: str | None = None,
    params_file: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    shard: int | None = None,
) -> dict[str, Any]:
    """Value the rows of the project's current split (or one shard of them), for the MLflow run ``run_id`` of a ``lossval-clean`` flow run.

    Args:
        run_id: the parent's MLflow run; per-epoch metrics are logged to it live, and this valuation's own
            system metrics (CPU, memory, GPU) to a nested run ``valuation``.
        project_dir: the project root, as the parent sees it (the same path on this worker).
        params_file: parameters file, relative to the project root.
        overrides: the parent run's ``{"section.key": value}`` overrides.
        shard: with ``value.shards`` > 1, the shard to value (its files go to work/shards/<shard>/; the parent pools them).

    Returns:
        ``{"rows": ..., "device": ..., "seconds": ...}``; the values themselves are in ``work/values.parquet``.
    """
    from prefect.runtime import deployment

    from cleaning.failures import install_logging
    from cleaning.project import check_flow_parameters

    install_logging()
    project = Project.load(project_dir, params_file=params_file, overrides=overrides or {})
    check_flow_parameters(project, params_file=params_file, project_dir=project_dir, deployment_run=bool(deployment.id))
    tracker = Tracker.resume(project, run_id)
    try:
        live = [tracker.epoch_logger()] if not shard else []  # one shard's epochs are the run's curves
        return steps.value(project, callbacks=live, shard=shard)
    finally:
        tracker.close()


def value_step(project: Project, tracker: Tracker, *, params_file: str = "params.yaml") -> dict[str, Any]:
    """Run the value stage where ``value.deployment`` says, as ``value.shards`` Prefect runs when > 1 (then pooled);
    tag the MLflow run with where it ran and on which device.

    Raises:
        RuntimeError: a valuation run did not complete (its state and message are in the error).
    """
    from cleaning.value import load_valued, pool_shards

    deployment, shards = project.params.value.deployment, project.params.value.shards
    logger = get_run_logger()
    if deployment is None and shards == 1:
        result = steps.value(project, callbacks=[tracker.epoch_logger()])
        tracker.set_tags(device=result["device"], value_deployment=IN_PROCESS)
        return result
    parameters = {"run_id": tracker.run_id, "project_dir": str(project.root), "params_file": params_file, "overrides": project.overrides}
    if deployment is None:  # local shards: each its own (sub)flow run of lossval-value, in this process
        for k in range(shards):
            lossval_value.with_options(flow_run_name=f"value-shard-{k}-of-{shards}")(**parameters, shard=k)
    else:
        _run_on_pool(deployment, [{**parameters, **({"shard": k} if shards > 1 else {})} for k in range(shards)], logger)
    valued = pool_shards(project) if shards > 1 else load_valued(project)  # through the project's files, never Prefect results
    tracker.set_tags(device=valued.device, value_deployment=deployment or IN_PROCESS, value_shards=str(shards))
    logger.info("valued %d rows on %s in %.1f s over %d shard(s) (%s)", len(valued.values), valued.device, valued.seconds, shards,
                deployment or IN_PROCESS)
    return valued.summary()


def _run_on_pool(deployment: str, runs: list[dict[str, Any]], logger) -> None:
    """Start one run of ``deployment`` per parameter set (a worker of its pool takes each), then wait for all of them."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    logger.info("valuing on deployment %s: %d run(s), waiting for workers of its work pool", deployment, len(runs))
    started = [run_deployment(deployment, parameters=p, timeout=0, as_subflow=True) for p in runs]
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(run.id).state for run in started]
            if all(s is not None and s.is_final() for s in states):
                break
            time.sleep(3)
    for run, state in zip(started, states):
        if not state.is_completed():
            raise RuntimeError(f"valuation run {run.name!r} of deployment {deployment!r} ended {state.name}: {state.message}")
