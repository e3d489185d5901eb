"""What cleaning.tracking needs from MLflow beyond its public calls: source tags from the project's checkout,
cheap dataset inputs, and ending a fluent run (its system metrics monitor included) from any thread.

Kept apart from :mod:`cleaning.tracking` because two of them reach into MLflow internals
(``mlflow.tracking.fluent``'s run stacks and monitors): when MLflow changes them, this is the one place to look
(tests/pipeline/test_tracker.py fails first).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Dataset
from mlflow.tracking import MlflowClient
from mlflow.tracking import fluent as _fluent
from mlflow.utils.git_utils import get_git_branch, get_git_commit, get_git_repo_url
from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL, MLFLOW_SOURCE_NAME

from cleaning.secrets import redact

SAMPLE_ROWS = 10_000  # rows a dataset input's schema and digest are computed from
_log = logging.getLogger(__name__)


def source_tags(root: Path) -> dict[str, str]:
    """MLflow's source tags for the code in ``root``, resolved by MLflow's own git helpers.

    MLflow resolves them from ``sys.argv[0]``, which for the ``lossval-clean`` console script, a
    Prefect worker or pytest is a file in the environment's ``bin/`` (outside the checkout, or
    git-ignored), so it would log none; the project root is where the pipeline's code lives.
    """
    found = {MLFLOW_GIT_COMMIT: get_git_commit(str(root)), MLFLOW_GIT_BRANCH: get_git_branch(str(root)),
             MLFLOW_GIT_REPO_URL: get_git_repo_url(str(root))}
    return {MLFLOW_SOURCE_NAME: "lossval-clean", **{k: v for k, v in found.items() if v}}



def dataset_entity(frame: pd.DataFrame, *, source: str, name: str, targets: str | None) -> Dataset:
    """An MLflow dataset entity for ``frame`` whose schema and digest come from its first SAMPLE_ROWS rows, its
    profile (rows, cells) from the whole frame: MLflow's own from_pandas infers both from every row (minutes at 1e7)."""
    head = frame.head(SAMPLE_ROWS)
    digest = hashlib.md5(pd.util.hash_pandas_object(head, index=False).to_numpy().tobytes())
    digest.update(f"{frame.shape}{list(map(str, frame.columns))}{list(map(str, frame.dtypes))}".encode())
    with warnings.catch_warnings():  # a local path "can be interpreted in multiple ways" (two local source classes): same result
        warnings.simplefilter("ignore", UserWarning)
        sample = mlflow.data.from_pandas(head, source=source, name=name, targets=targets, digest=digest.hexdigest()[:8])._to_mlflow_entity()
    profile = json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)})
    return Dataset(name=sample.name, digest=sample.digest, source_type=sample.source_type, source=sample.source, schema=sample.schema, profile=profile)


def end_run(run_id: str, status: str, client: MlflowClient) -> None:
    """End ``run_id`` and its system metrics monitor, from any thread; a run shorter than one sampling interval
    still gets the one sample the monitor took at its start."""
    monitor = _fluent.run_id_to_system_metrics_monitor.get(run_id)
    if monitor is not None and monitor._logging_step == 0:
        try:
            monitor.publish_metrics(monitor.aggregate_metrics())
        except Exception as e:  # best effort: never the end of the run
            _log.warning("could not log the run's first system metrics sample: %s", redact(str(e))[:300])
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)
        return
    for stack in _fluent._active_run_stack.get_all_thread_values().values():  # started on another thread
        stack[:] = [r for r in stack if r.info.run_id != run_id]
    client.set_terminated(run_id, status=status)
    if (monitor := _fluent.run_id_to_system_metrics_monitor.pop(run_id, None)) is not None:
        monitor.finish()


