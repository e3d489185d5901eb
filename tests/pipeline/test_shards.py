"""Sharded valuation (issue 17, ``value.shards``): rows split by a hash of their id, each shard its own Prefect
run against the same reference set, values pooled under one threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cleaning.value import shard_of

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_a_row_keeps_its_shard_and_shards_are_balanced():
    ids = pd.Index([f"{i:032x}" for i in range(4000)])
    shards = shard_of(ids, 4)
    assert set(shards) == {0, 1, 2, 3}
    assert np.array_equal(shards, shard_of(ids, 4))  # a fixed hash: the same ids, the same shards, every night
    assert np.array_equal(shard_of(ids[::-1], 4), shards[::-1])  # a row's shard depends on its id only
    assert np.bincount(shards).min() > 900  # about a quarter each
    assert (shard_of(ids, 1) == 0).all()


def test_the_flow_values_each_shard_as_its_own_prefect_run_and_pools_them(project_dir, use_mlflow):
    from prefect.client.orchestration import get_client

    from flows.pipeline import lossval_clean
    from cleaning.project import Project

    summary = lossval_clean(project_dir=str(project_dir), overrides={"value.shards": 3})
    project = Project.load(project_dir)
    train = pd.read_parquet(project.work_file("train.parquet"))
    values = pd.read_parquet(project.work_file("values.parquet"))
    assert sorted(values["row_id"]) == sorted(train["row_id"])  # every row valued exactly once
    for k in range(3):  # each shard valued its own rows, against the same reference (the same canaries, renamed)
        part = pd.read_parquet(project.work_file("shards") / str(k) / "values.parquet")
        assert (shard_of(part["row_id"], 3) == k).all()
    canaries = pd.read_parquet(project.work_file("canaries.parquet"))
    assert {c.split("-")[1] for c in canaries["row_id"]} == {"s0", "s1", "s2"}  # pooled: one calibration over all shards
    counts = summary["rows_quarantined_schema"] + summary["rows_quarantined_value"] + summary["rows_clean"]
    assert counts == summary["rows_in"]

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    shard_runs = sorted(r.name for r in runs if r.name.startswith("value-shard-"))
    assert shard_runs[-3:] == ["value-shard-0-of-3", "value-shard-1-of-3", "value-shard-2-of-3"]
    run = MlflowClient().get_run(summary["run_id"])
    assert run.data.tags["value_shards"] == "3"
