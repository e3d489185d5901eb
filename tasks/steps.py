"""The flow's Prefect tasks: each is a stage of pipeline/stages.py (the very function a DVC stage runs),
given a name, retries where a service may blip, and nothing else."""

from __future__ import annotations

from prefect import task

from pipeline import snapshot, stages

ingest = task(stages.ingest, name="ingest")
validate = task(stages.validate, name="validate")
reference = task(stages.reference, name="reference")
value = task(stages.value, name="value")
quarantine = task(stages.quarantine, name="quarantine")
retrain = task(stages.retrain, name="retrain")
record = task(stages.record, name="record")  # no retry: a half-done record is undone by the publication, not repeated
version = task(snapshot.version_run, name="version")  # dvc commit + dvc exp save
push = task(snapshot.push, name="push", retries=3, retry_delay_seconds=2)  # remotes fail transiently
