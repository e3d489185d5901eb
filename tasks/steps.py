"""The flow's Prefect tasks: each is a stage of cleaning/stages.py (the very function a DVC stage runs),
given a name, retries where a service may blip, and nothing else. Nothing is cached (a stage's inputs are
files, not arguments): no cache key is computed, so Prefect never hashes a tracker or a large object."""

from __future__ import annotations

from functools import partial

from prefect import task as prefect_task
from prefect.cache_policies import NO_CACHE

from cleaning import snapshot, stages

task = partial(prefect_task, cache_policy=NO_CACHE)

ingest = task(stages.ingest, name="ingest")
validate = task(stages.validate, name="validate")
reference = task(stages.reference, name="reference")
value = task(stages.value, name="value")
quarantine = task(stages.quarantine, name="quarantine")
retrain = task(stages.retrain, name="retrain")
record = task(stages.record, name="record")  # no retry: a half-done record is undone by the publication, not repeated
version = task(snapshot.version_run, name="version")  # dvc commit + dvc exp save
push = task(snapshot.push, name="push", retries=3, retry_delay_seconds=2)  # remotes fail transiently
