"""What started a flow run, for the MLflow tag ``trigger``: ``scheduled``, ``manual`` or ``dvc``."""

from __future__ import annotations

from typing import Literal

Trigger = Literal["manual", "scheduled", "dvc"]


def detect_trigger(explicit: str | None = None) -> str:
    """The run's trigger: ``explicit`` when given, else ``scheduled`` for a run its deployment's schedule created, else ``manual``.

    A deployment run created by the Prefect scheduler carries ``auto_scheduled``;
    one created by ``prefect deployment run``, the UI or ``run_deployment`` does
    not. A flow called directly (``lossval-clean run``) has no deployment.
    """
    if explicit:
        return explicit
    from prefect.runtime import deployment, flow_run

    if not deployment.id or not flow_run.id:
        return "manual"
    import httpx
    from prefect import get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectException

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run.id)
    except (PrefectException, httpx.HTTPError) as e:
        get_run_logger().warning("could not read flow run %s to tell a scheduled run from a manual one (%s): recording 'manual'", flow_run.id, e)
        return "manual"
    return "scheduled" if run.auto_scheduled else "manual"
