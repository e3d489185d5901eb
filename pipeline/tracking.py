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
import pandas as pd
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from lossval.io import write_json
from lossval.model import design_input, module_from_state
from lossval.rows import feature_columns
from pipeline.project import Project
from pipeline.secrets import redact  # noqa: F401  (re-exported: pipeline.tracking.redact)

EPOCH_METRICS = ("loss", "weighted_loss", "ot", "weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max")
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


def close_abandoned_runs(project: Project, *also: str | None) -> list[str]:
    """Mark runs that a killed or cut-off process left RUNNING as KILLED. Returns their ids."""
    closed = []
    ids = list(dict.fromkeys([*_unfinished(project), *(r for r in also if r)]))
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

    logging.getLogger("lossval_clean").warning("%s", message)


def _champion_version(project: Project) -> str | None:
    """The version holding the alias ``champion`` now, or None."""
    client, _ = connect(project)
    try:
        return str(client.get_model_version_by_alias(project.params.tracking.registered_model, CHAMPION).version)
    except Exception:  # no registered model or no alias yet
        return None


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


class Tracker:
    """The MLflow run of one pipeline run."""

    def __init__(self, project: Project, run_id: str, *, live: bool = True) -> None:
        self.project, self.run_id = project, run_id
        self.client, self.experiment_id = connect(project)
        self.run_name = self.client.get_run(run_id).info.run_name

    @classmethod
    def start(cls, project: Project, *, trigger: str, tags: Mapping[str, str] | None = None) -> Tracker:
        tracker = cls(project, start_run(project, trigger=trigger))
        for k, v in (tags or {}).items():
            tracker.client.set_tag(tracker.run_id, k, v)
        return tracker

    @classmethod
    def resume(cls, project: Project, run_id: str) -> Tracker:
        return cls(project, run_id)

    def close(self) -> None:
        pass

    @property
    def url(self) -> str:
        from flows.ui import DEFAULT_PORT
        from pipeline.secrets import without_credentials

        uri = tracking_uri(self.project)
        base = f"http://127.0.0.1:{DEFAULT_PORT}" if _is_local(uri) else without_credentials(uri).rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def epoch_logger(self) -> EpochLogger:
        return EpochLogger(self.project, self.run_id)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.client.get_run(self.run_id).data.tags)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def set_tags(self, **tags: str) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def end(self, status: str, *, failure: BaseException | None = None) -> None:
        end_run(self.project, self.run_id, status, failure=failure)

    def champion_version(self) -> str | None:
        return _champion_version(self.project)

    def unregister(self, *, previous_champion: str | None) -> None:
        unregister_run(self.project, self.run_id, previous_champion=previous_champion)

    def past_value_quantiles(self, *, current: Mapping[str, float], limit: int = 30) -> pd.DataFrame:
        from pipeline.drift import value_drift_table

        return value_drift_table(self.client, self.experiment_id, dataset=dataset_name(self.project), current=current, limit=limit).iloc[:-1]

    def log_schema_failures(self, failure_cases: pd.DataFrame) -> None:
        pass

    def log_inputs(self, *, train: pd.DataFrame, reference: pd.DataFrame, test: pd.DataFrame, source: str) -> None:
        pass

    def log_result(self, *, params: Mapping, metrics: Mapping[str, float], tags: Mapping[str, str], values: pd.DataFrame,
                   quarantine: pd.DataFrame, report_paths: Mapping[str, Path], lossval_state: dict, downstream_state: dict,
                   train_frame: pd.DataFrame, class_names: list[str] | None, snapshot_hash: str | None, history: pd.DataFrame | None = None) -> tuple[str, str]:
        client, run_id, project = self.client, self.run_id, self.project
        client.log_batch(run_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in params.items()])
        now = int(time.time() * 1000)
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        if history is not None:
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
            rows = train_frame[features].head(5)
            requirements = [f"torch=={torch.__version__.split('+')[0]}"]
            mlflow.pytorch.log_model(module_from_state(lossval_state), name="lossval_model", serialization_format="pt2",
                                     input_example=design_input(lossval_state, rows), pip_requirements=requirements)
            info = mlflow.pytorch.log_model(
                module_from_state(downstream_state), name="downstream_model", serialization_format="pt2", input_example=design_input(downstream_state, rows),
                pip_requirements=requirements, registered_model_name=project.params.tracking.registered_model,
            )
            if snapshot_hash:
                mlflow.set_tag("dvc_snapshot", snapshot_hash)
        version = str(info.registered_model_version)
        name = project.params.tracking.registered_model
        client.set_model_version_tag(name, version, "variant", tags.get("promoted", "clean"))
        client.set_registered_model_alias(name, CHAMPION, version)
        return info.model_uri, version
