"""MLflow: one :class:`Tracker` per pipeline run, with params, metrics, inputs, tables, plots, the report and the models.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else a sqlite file in
the project (``mlflow.db``, artifacts in ``mlruns/``). The run is started
with MLflow's fluent API (its system metrics monitor: CPU, memory, disk,
network, and GPU where ``nvidia-ml-py`` finds one) and carries MLflow's own
source tags (``mlflow.source.git.commit`` ...). Every later call names the
run explicitly, so a Prefect task on another thread logs to the right run.
The core library never imports MLflow. Names logged here are a contract that
other tools read (see README): change them only with care.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lossval.rows import feature_columns
from cleaning.mlflow_parts import dataset_entity, end_run, source_tags
from cleaning.serving import log_label_model
from cleaning.project import Project
from cleaning.report import DRIFT_QUANTILES as QUANTILES
from cleaning.report import value_distribution
from cleaning.transaction import note_unfinished
from cleaning.secrets import redact, without_credentials

EPOCH_METRICS = ("loss", "weighted_loss", "ot", "weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max")
CHAMPION = "champion"  # the registered model's alias on the gate's promoted variant
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"  # the MLflow UI then opens the experiment on its runs table
VALUATION = "valuation"  # the nested run of a valuation on another worker
_log = logging.getLogger(__name__)
progress = logging.getLogger("lossval_clean")  # reaches the flow run's logs: a night's long steps show they move
EPOCH_LINE = ("seconds", "loss", "ot")
EPOCH_LINE_SECONDS = 10.0


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
                # Not chained (`from None`): the original error repeats the URL, credentials included.
                raise TrackingUnavailableError(
                    f"MLflow tracking store {redact(uri)} is unreachable after {attempts} attempts "
                    f"({type(e).__name__}: {redact(str(e).splitlines()[0])[:200]}); nothing was written. "
                    "Start the server or fix MLFLOW_TRACKING_URI, then run again"
                ) from None
            time.sleep(delay * attempt)


def _is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def experiment_id(project: Project) -> str:
    """Point MLflow at the project's store and experiment (created once, artifacts in ``mlruns/`` for a local store)."""
    uri = tracking_uri(project)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    name = project.params.tracking.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = (project.root / "mlruns").as_uri() if _is_local(uri) else None
        found = client.create_experiment(name, artifact_location=location, tags={KIND_TAG: KIND})
    else:
        found = experiment.experiment_id
        if KIND_TAG not in experiment.tags:
            client.set_experiment_tag(found, KIND_TAG, KIND)
    mlflow.set_experiment(experiment_id=found)
    return found


def dataset_name(project: Project) -> str:
    return Path(project.params.ingest.path).stem


class Tracker:
    """One pipeline run in MLflow: start it, log to it, end it (see the module docstring)."""

    def __init__(self, project: Project, *, run_id: str, run_name: str, experiment_id: str, child_run_id: str | None = None) -> None:
        self.project, self.run_id, self.run_name, self.experiment_id = project, run_id, run_name, experiment_id
        self.child_run_id = child_run_id  # the nested valuation run of Tracker.resume
        self.uri = tracking_uri(project)
        self.client = MlflowClient(self.uri)

    @classmethod
    def start(cls, project: Project, *, trigger: str, tags: Mapping[str, str] = {}) -> Tracker:  # noqa: B006 (read only)
        """Start the run (RUNNING, named "<dataset> YYYY-mm-dd HH:MM", tags ``trigger``, ``dataset`` and ``tags``),
        with system metrics; nested under the caller's active run if there is one."""
        found = experiment_id(project)
        dataset = dataset_name(project)
        name = f"{dataset} {datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
        all_tags = {**source_tags(project.root), "trigger": trigger, "dataset": dataset, **tags}
        run = mlflow.start_run(run_name=name, tags=all_tags, log_system_metrics=True, nested=mlflow.active_run() is not None)
        note_unfinished(project, add=run.info.run_id)
        return cls(project, run_id=run.info.run_id, run_name=name, experiment_id=found)

    @classmethod
    def resume(cls, project: Project, run_id: str) -> Tracker:
        """For a step of run ``run_id`` in another process (the valuation on a GPU worker): epoch metrics go to
        ``run_id``, and a nested run "valuation" gets this process's system metrics; :meth:`close` ends it."""
        found = experiment_id(project)
        parent = MlflowClient(tracking_uri(project)).get_run(run_id)
        child = mlflow.start_run(run_name=VALUATION, parent_run_id=run_id, nested=True, log_system_metrics=True, tags=source_tags(project.root))
        note_unfinished(project, add=child.info.run_id)
        return cls(project, run_id=run_id, run_name=parent.info.run_name, experiment_id=found, child_run_id=child.info.run_id)

    @property
    def url(self) -> str:
        """The run's page: on the tracking server (no credentials), or in the local UI of ``lossval-clean ui``."""
        from flows.ui import DEFAULT_PORT

        base = f"http://127.0.0.1:{DEFAULT_PORT}" if _is_local(self.uri) else without_credentials(self.uri).rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    def set_tags(self, **tags: str) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def epoch_logger(self, warn: Callable[[str], None] = _log.warning) -> Callable[[int, Mapping[str, float]], None]:
        """A LossVal callback logging each epoch's metrics to the run (step = epoch); best effort: a failed call
        (a locked store, a server blip) is passed to ``warn``, never the end of the run. The run's log gets a
        line for the first epoch and then at most one every :data:`EPOCH_LINE_SECONDS` (a long night shows it
        moves; a short one is not flooded)."""
        last_line = float("-inf")  # the first epoch always gets its line

        def log_epoch(epoch: int, metrics: Mapping[str, float]) -> None:
            nonlocal last_line
            if (now_line := time.monotonic()) - last_line >= EPOCH_LINE_SECONDS:
                last_line = now_line
                progress.info("valuation epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in EPOCH_LINE))
            now = int(time.time() * 1000)
            batch = [Metric(f"epoch_{k}" if k == "seconds" else k, float(v), now, epoch) for k, v in metrics.items()]
            try:
                self.client.log_batch(self.run_id, metrics=batch)
            except Exception as e:  # MlflowException, sqlalchemy OperationalError, requests errors...
                warn(f"could not log epoch {epoch}'s metrics to MLflow ({redact(f'{type(e).__name__}: {e}'.splitlines()[0])[:300]}); the run goes on")

        return log_epoch

    def log_inputs(self, *, train: pd.DataFrame, reference: pd.DataFrame, test: pd.DataFrame, source: str | None = None) -> None:
        """The training, reference and test sets as dataset inputs (contexts training, reference, evaluation).

        ``source``: the training rows' file (default ``ingest.path``); the others name ``reference.path`` /
        ``reference.test_path`` when set. Cheap at any size: schema and digest from the first rows (:func:`cleaning.mlflow_parts.dataset_entity`).
        """
        params, target = self.project.params, self.project.params.base.target
        train_source = source or str(params.ingest.path)
        reference_source = str(params.reference.path or train_source)
        test_source = str(params.reference.test_path or reference_source)
        inputs = [("training", train, train_source), ("reference", reference, reference_source), ("evaluation", test, test_source)]
        self.client.log_inputs(self.run_id, datasets=[
            DatasetInput(dataset_entity(frame, source=where, name=Path(where).name, targets=target), tags=[InputTag("mlflow.data.context", context)])
            for context, frame, where in inputs
        ])  # fmt: skip

    def log_schema_failures(self, failure_cases: pd.DataFrame) -> None:
        """pandera's failure cases (schema_context, column, check, check_number, failure_case, index) as the table
        ``schema_failures.json`` (shown in the MLflow UI's evaluation view); nothing when there are none."""
        if failure_cases is None or failure_cases.empty:
            return
        table = failure_cases.astype({c: "string" for c in failure_cases.columns if failure_cases[c].dtype == object})
        mlflow.log_table(table.reset_index(drop=True), artifact_file="schema_failures.json", run_id=self.run_id)

    def log_result(self, *, params: Mapping[str, object], metrics: Mapping[str, float], tags: Mapping[str, str], values: pd.DataFrame,
                   quarantine: pd.DataFrame, report_paths: Mapping[str, Path], lossval_state: dict, downstream_state: dict,
                   class_names: list[str] | None, train_frame: pd.DataFrame, snapshot_hash: str | None,
                   history: pd.DataFrame | None = None) -> tuple[str, str]:
        """Log everything but the live epoch metrics; register the downstream model last. Returns (model URI, version).

        Params: ``params.yaml`` flattened plus ``params`` (``input_sha256``...). Metrics: ``metrics`` (non-finite ones
        left out) plus :func:`value_distribution`; ``history`` (runs not watched live, e.g. ``dvc repro``) adds the
        epoch metrics. ``downstream_state`` is the champion (the gate's promoted variant, tag ``promoted`` in ``tags``):
        registered as ``tracking.registered_model``, alias ``champion``, version tags ``variant`` and ``classes``.
        """
        try:
            return self._log_result(params=params, metrics=metrics, tags=tags, values=values, quarantine=quarantine, report_paths=report_paths,
                                    lossval_state=lossval_state, downstream_state=downstream_state, class_names=class_names,
                                    train_frame=train_frame, snapshot_hash=snapshot_hash, history=history)
        except Exception as e:
            if "://" not in str(e):
                raise
            # MLflow's errors repeat the tracking URL, credentials included: re-raised redacted and unchained
            raise TrackingError(f"recording the run in MLflow failed: {redact(f'{type(e).__name__}: {e}')}") from None

    def _log_result(self, *, params, metrics, tags, values, quarantine, report_paths, lossval_state, downstream_state, class_names,
                    train_frame, snapshot_hash, history) -> tuple[str, str]:
        run_id, project = self.run_id, self.project
        flat = {**project.params.flat(), **params}
        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in flat.items()])
        now = int(time.time() * 1000)
        logged = {k: float(v) for k, v in {**metrics, **value_distribution(values["value"].to_numpy())}.items() if np.isfinite(v)}
        batch = [Metric(k, v, now, 0) for k, v in logged.items()]
        if history is not None:
            batch += [Metric(k, float(r[k]), now, int(r["epoch"])) for r in history.to_dict("records") for k in EPOCH_METRICS if k in r]
        self.client.log_batch(run_id, metrics=batch, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        with tempfile.TemporaryDirectory(prefix="lossval-artifacts-") as tmp:
            for name, table in (("values.parquet", values), ("quarantine.parquet", quarantine)):
                table.to_parquet(Path(tmp) / name, index=False)
                self.client.log_artifact(run_id, str(Path(tmp) / name))
        for path in report_paths.values():
            self.client.log_artifact(run_id, str(path))
        rows = train_frame[feature_columns(train_frame, project.params.base.target)].head(5)
        log_label_model(run_id=run_id, name="lossval_model", state=lossval_state, input_rows=rows, class_names=class_names)
        name = project.params.tracking.registered_model
        info = log_label_model(run_id=run_id, name="downstream_model", state=downstream_state, input_rows=rows, class_names=class_names,
                               registered_model_name=name)
        if snapshot_hash:  # a flow run tags it after `dvc commit`
            self.set_tags(dvc_snapshot=snapshot_hash)
        version = str(info.registered_model_version)
        self.client.set_model_version_tag(name, version, "variant", tags.get("promoted", "clean"))
        self.client.set_model_version_tag(name, version, "classes", json.dumps(info.metadata["classes"]))
        self.client.set_registered_model_alias(name, CHAMPION, version)
        return info.model_uri, version

    def champion_version(self) -> str | None:
        """The version holding the alias ``champion`` now, or None."""
        try:
            return str(self.client.get_model_version_by_alias(self.project.params.tracking.registered_model, CHAMPION).version)
        except Exception:  # no registered model or no alias yet
            return None

    def unregister(self, previous_champion: str | None = None) -> None:
        """Delete the model versions this run registered and its ``dvc_snapshot`` tag; give the alias ``champion``
        back to ``previous_champion`` (the version that held it before the run)."""
        name = self.project.params.tracking.registered_model
        for version in self.client.search_model_versions(f"name='{name}'"):
            if version.run_id == self.run_id:
                self.client.delete_model_version(version.name, version.version)
        if previous_champion is not None:
            try:
                self.client.set_registered_model_alias(name, CHAMPION, previous_champion)
            except Exception:  # the previous version was deleted by hand: no champion to give back
                pass
        if self.client.get_run(self.run_id).data.tags.get("dvc_snapshot"):
            self.client.delete_tag(self.run_id, "dvc_snapshot")

    def past_value_quantiles(self, limit: int = 29) -> pd.DataFrame:
        """The value quantiles (QUANTILES) of the last ``limit`` finished runs of this dataset, oldest first, with
        ``run`` (their names): the value drift plot's history (runs that lack one of them are left out)."""
        quoted = dataset_name(self.project).replace("'", "\\'")
        previous = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.dataset = '{quoted}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"], max_results=max(limit, 1),
        )  # fmt: skip
        rows = [{"run": r.info.run_name, **{k: r.data.metrics[k] for k in QUANTILES}} for r in reversed(previous)
                if all(k in r.data.metrics for k in QUANTILES)]
        return pd.DataFrame(rows, columns=["run", *QUANTILES])

    def end(self, status: str = "FINISHED", failure: BaseException | None = None) -> None:
        """End the run with ``status`` (FINISHED, FAILED, KILLED); ``failure`` becomes the tag ``failure``, redacted."""
        if failure is not None:
            self.client.set_tag(self.run_id, "failure", redact(f"{type(failure).__name__}: {failure}")[:5000])
        end_run(self.run_id, status, self.client)
        self._forget(self.run_id)

    def close(self, status: str = "FINISHED") -> None:
        """End the nested valuation run of :meth:`resume` (the parent run goes on)."""
        if self.child_run_id is not None:
            end_run(self.child_run_id, status, self.client)
            self._forget(self.child_run_id)

    def _forget(self, run_id: str) -> None:
        note_unfinished(self.project, remove=run_id)
