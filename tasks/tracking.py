"""MLflow: one run per pipeline run, with params, metrics, value tables, plots, the report and the models.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else a sqlite file in
the project (``mlflow.db``, artifacts in ``mlruns/``). Per-epoch metrics
arrive live through :class:`EpochLogger`, a LossVal callback; the core
library never imports MLflow. Names logged here are a contract that other
tools read (see README): change them only with care.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.transactions import get_transaction

from lossval.io import write_json
from lossval.model import design_input, module_from_state
from lossval.rows import feature_columns
from tasks.project import Project
from tasks.secrets import redact  # noqa: F401  (re-exported: tasks.tracking.redact)

EPOCH_METRICS = ("loss", "weighted_loss", "ot", "weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max")
PLOTS = {"values_hist.png": "Value histogram", "values_sorted.png": "Sorted values", "training.png": "Training", "scores.png": "Before / after",
         "values_drift.png": "Value distribution across runs"}
CHAMPION = "champion"  # the registered model's alias on the gate's promoted variant
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"  # the MLflow UI then opens the experiment on its runs table


def tracking_uri(project: Project) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project.root / 'mlflow.db'}"


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking store cannot be reached; the run did not start."""


class TrackingError(RuntimeError):
    """An MLflow call failed during the run; the message is redacted."""


def preflight(project: Project, *, attempts: int = 3, delay: float = 2.0) -> None:
    """Check the tracking store answers before the run writes anything (transient errors retried).

    MLflow's own HTTP retries are bounded here (unless the user set them), so an
    unreachable server fails in seconds, not minutes.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    uri = tracking_uri(project)
    for attempt in range(1, attempts + 1):
        try:
            MlflowClient(uri).search_experiments(max_results=1)
            return
        except Exception as e:  # MlflowException, requests errors, sqlalchemy errors...
            if attempt == attempts:
                # Not chained (`from None`): the original error repeats the URL, credentials included,
                # and a chained traceback would carry them into the logs.
                raise TrackingUnavailableError(
                    f"MLflow tracking store {redact(uri)} is unreachable after {attempts} attempts "
                    f"({type(e).__name__}: {redact(str(e).splitlines()[0])[:200]}); nothing was written. "
                    "Start the server or fix MLFLOW_TRACKING_URI, then run again"
                ) from None
            time.sleep(delay * attempt)


def _unfinished_path(project: Project) -> Path:
    return project.data_dir / ".unfinished_runs.json"


def _unfinished(project: Project) -> list[str]:
    path = _unfinished_path(project)
    return json.loads(path.read_text()) if path.exists() else []


def close_abandoned_runs(project: Project) -> list[str]:
    """Mark runs that a killed or cut-off process left RUNNING as KILLED. Returns their ids."""
    closed = []
    ids = _unfinished(project)
    if not ids:
        return closed
    client, _ = connect(project)
    for run_id in ids:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status="KILLED")
                client.set_tag(run_id, "failure", "the process ended before the run finished")
                closed.append(run_id)
        except Exception:  # a run deleted by hand: nothing to close
            pass
    write_json([], _unfinished_path(project))
    return closed


def _is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def connect(project: Project) -> tuple[MlflowClient, str]:
    """Point MLflow at the project's store and return (client, experiment id), creating the experiment once."""
    uri = tracking_uri(project)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    name = project.params.tracking.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, KIND_TAG, KIND)
        return client, experiment.experiment_id
    location = (project.root / "mlruns").as_uri() if _is_local(uri) else None
    return client, client.create_experiment(name, artifact_location=location, tags={KIND_TAG: KIND})


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dataset_name(project: Project) -> str:
    return Path(project.params.ingest.path).stem


def start_run(project: Project, *, trigger: str, device: str | None = None) -> str:
    """Create the run (status RUNNING) with its readable name and tags; return its id."""
    client, experiment_id = connect(project)
    dataset = dataset_name(project)
    now = datetime.now(timezone.utc)
    tags = {
        "trigger": trigger,
        "git_commit": git_commit(project.root),
        "dataset": dataset,
        "mlflow.source.name": "lossval-clean",
    }
    if device:
        tags["device"] = device
    run = client.create_run(experiment_id, run_name=f"{dataset} {now:%Y-%m-%d %H:%M}", tags=tags)
    write_json([*_unfinished(project), run.info.run_id], _unfinished_path(project))
    return run.info.run_id


def end_run(project: Project, run_id: str, status: str, *, failure: BaseException | None = None) -> None:
    client, _ = connect(project)
    if failure is not None:
        client.set_tag(run_id, "failure", redact(f"{type(failure).__name__}: {failure}")[:5000])
    client.set_terminated(run_id, status=status)
    write_json([r for r in _unfinished(project) if r != run_id], _unfinished_path(project))


class EpochLogger:
    """LossVal callback: logs each epoch's metrics to the run, step = epoch."""

    def __init__(self, project: Project, run_id: str) -> None:
        self.client, _ = connect(project)
        self.run_id = run_id
        self.skipped = 0  # epochs whose metrics could not be logged

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Best effort: a failed call (a locked store, a server blip) is a warning, never the end of the run;
        the whole history is in the final record's artifacts and report either way."""
        now = int(time.time() * 1000)
        batch = [Metric(f"epoch_{k}" if k == "seconds" else k, float(v), now, epoch) for k, v in metrics.items()]
        try:
            self.client.log_batch(self.run_id, metrics=batch)
        except Exception as e:  # MlflowException, sqlalchemy OperationalError, requests errors...
            self.skipped += 1
            _warn(f"could not log epoch {epoch}'s metrics to MLflow ({redact(f'{type(e).__name__}: {e}'.splitlines()[0])[:300]}); "
                  "the run goes on")


def _warn(message: str) -> None:
    """A warning in the Prefect run's log when there is one, else in this module's log."""
    import logging

    try:
        get_run_logger().warning("%s", message)
    except Exception:  # no Prefect run context (DVC stage, library use)
        logging.getLogger(__name__).warning("%s", message)


def log_run(
    project: Project,
    run_id: str,
    *,
    input_sha256: str,
    counts: Mapping[str, int],
    scores: Mapping[str, float],
    extra_metrics: Mapping[str, float],
    values: pd.DataFrame,
    quarantine: pd.DataFrame,
    report_paths: Mapping[str, Path],
    lossval_state: dict,
    downstream_state: dict,
    train_frame: pd.DataFrame,
    snapshot_hash: str,
    history: pd.DataFrame | None = None,
    gate: Mapping | None = None,
    calibration: Mapping[str, float] | None = None,
    unreliable: bool = False,
) -> tuple[str, str]:
    """Log everything but the live epoch metrics; register the downstream model last.

    ``downstream_state`` is the champion's model (the gate's promoted variant): it is registered and gets
    the alias ``champion``. ``gate`` (tasks.retrain.gate_record) adds the tag ``promoted``, the reason and
    the gains with their intervals; ``calibration`` (Calibration.as_metrics) the canary metrics;
    ``unreliable`` the tag ``valuation_unreliable``.

    Returns (model URI, registered version).
    """
    client, _ = connect(project)
    params = {**project.params.flat(), "input_sha256": input_sha256}
    client.log_batch(run_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in params.items()])
    now = int(time.time() * 1000)
    metrics = {**counts, **scores, **extra_metrics, **_value_distribution(values["value"].to_numpy())}
    metrics |= {k: v for k, v in (calibration or {}).items() if np.isfinite(v)}
    tags = {"valuation_unreliable": "true"} if unreliable else {}
    if gate:
        metrics |= {**gate["metrics"], "test_rows": gate["test_rows"]}
        tags |= {"promoted": gate["promoted"], "champion_reason": gate["reason"][:5000],
                 "test_resolves_one_point": str(gate["resolves_one_point"]).lower()}
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    if history is not None:  # runs that were not watched live (dvc repro)
        rows = history.to_dict("records")
        client.log_batch(run_id, metrics=[Metric(k, float(r[k]), now, int(r["epoch"])) for r in rows for k in EPOCH_METRICS if k in r])
    with mlflow.start_run(run_id=run_id):
        tmp = project.work / "artifacts"
        tmp.mkdir(parents=True, exist_ok=True)
        values.to_parquet(tmp / "values.parquet", index=False)
        quarantine.to_parquet(tmp / "quarantine.parquet", index=False)
        mlflow.log_artifact(str(tmp / "values.parquet"))
        mlflow.log_artifact(str(tmp / "quarantine.parquet"))
        for path in report_paths.values():
            mlflow.log_artifact(str(path))
        features = feature_columns(train_frame, project.params.base.target)
        mlflow.log_input(
            mlflow.data.from_pandas(train_frame, source=str(project.params.ingest.path), name=Path(project.params.ingest.path).name,
                                    targets=project.params.base.target),
            context="training",
        )
        rows = train_frame[features].head(5)  # each model's own input (its categorical levels may differ)
        requirements = [f"torch=={torch.__version__.split('+')[0]}"]
        mlflow.pytorch.log_model(module_from_state(lossval_state), name="lossval_model", serialization_format="pt2",
                                 input_example=design_input(lossval_state, rows), pip_requirements=requirements)
        info = mlflow.pytorch.log_model(
            module_from_state(downstream_state), name="downstream_model", serialization_format="pt2", input_example=design_input(downstream_state, rows),
            pip_requirements=requirements, registered_model_name=project.params.tracking.registered_model,
        )
        mlflow.set_tag("dvc_snapshot", snapshot_hash)
    version = str(info.registered_model_version)
    name = project.params.tracking.registered_model
    client.set_model_version_tag(name, version, "variant", gate["promoted"] if gate else "clean")
    client.set_registered_model_alias(name, CHAMPION, version)
    return info.model_uri, version


def _value_distribution(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    names = ("value_min", "value_p05", "value_p25", "value_median", "value_p75", "value_p95", "value_max")
    return {**dict(zip(names, map(float, q))), "value_mean": float(values.mean()), "value_std": float(values.std())}


def _champion_version(project: Project) -> str | None:
    """The version holding the alias ``champion`` now, or None."""
    client, _ = connect(project)
    try:
        return str(client.get_model_version_by_alias(project.params.tracking.registered_model, CHAMPION).version)
    except Exception:  # no registered model or no alias yet
        return None


@task(name="record", retries=2, retry_delay_seconds=5)
def record(project: Project, run_id: str, **inputs) -> str:
    """Log the run to MLflow (retried: a tracking server can blip). On rollback the registered
    model version and the snapshot tag are removed, so nothing points at an unpublished snapshot."""
    txn = get_transaction()
    if txn is not None and not txn.get("champion_saved", False):  # the rollback gives the alias back (first attempt only)
        txn.set("previous_champion", _champion_version(project))
        txn.set("champion_saved", True)
    try:
        uri, version = log_run(project, run_id, **inputs)
    except BaseException as e:
        # Prefect runs on_rollback only for tasks that succeeded: this attempt's registration is undone here
        try:
            unregister_run(project, run_id, previous_champion=txn.get("previous_champion", None) if txn is not None else None)
        except Exception as cleanup:  # MLflow down: the flow's rollback and the next run's check see the rest
            _warn(f"could not remove this attempt's model versions: {redact(str(cleanup))[:300]}")
        if not isinstance(e, Exception) or "://" not in str(e):
            raise
        # MLflow's errors repeat the tracking URL, credentials included: re-raised redacted and unchained
        raise TrackingError(f"recording the run in MLflow failed: {redact(f'{type(e).__name__}: {e}')}") from None
    get_run_logger().info("MLflow run %s recorded at %s", run_id, redact(tracking_uri(project)))
    return uri


@record.on_rollback
def _unregister(txn) -> None:
    """Remove every model version this run registered (a retried record may have registered one before failing)."""
    unregister_run(txn.get("project"), txn.get("run_id"), previous_champion=txn.get("previous_champion", None))


def unregister_run(project: Project, run_id: str, *, previous_champion: str | None = None) -> None:
    """Delete the model versions ``run_id`` registered and its ``dvc_snapshot`` tag; give the alias
    ``champion`` back to ``previous_champion`` (the version that held it before the run)."""
    client, _ = connect(project)
    for version in client.search_model_versions(f"name='{project.params.tracking.registered_model}'"):
        if version.run_id == run_id:
            client.delete_model_version(version.name, version.version)
    if previous_champion is not None:
        try:
            client.set_registered_model_alias(project.params.tracking.registered_model, CHAMPION, previous_champion)
        except Exception:  # the previous version was deleted by hand: no champion to give back
            pass
    if client.get_run(run_id).data.tags.get("dvc_snapshot"):
        client.delete_tag(run_id, "dvc_snapshot")
