"""The value distribution across runs, so that drift from night to night shows in the report.

Every run logs the quantiles of its values as metrics (``value_p05`` ...
``value_p95``, see pipeline/tracking.py); this reads them back for the previous
finished runs of the same dataset and appends the current run.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from mlflow.tracking import MlflowClient

QUANTILES = ("value_p05", "value_p25", "value_median", "value_p75", "value_p95")


def value_drift_table(client: MlflowClient, experiment_id: str, *, dataset: str, current: Mapping[str, float], limit: int = 30) -> pd.DataFrame:
    """One row per run, oldest first, at most ``limit``: ``run`` (its name) and the value quantiles; the last row is ``current``."""
    quoted = dataset.replace("'", "\\'")
    previous = client.search_runs(
        [experiment_id], filter_string=f"tags.dataset = '{quoted}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=max(limit - 1, 1),
    )
    rows = [
        {"run": r.info.run_name, **{k: r.data.metrics[k] for k in QUANTILES}}
        for r in reversed(previous)
        if all(k in r.data.metrics for k in QUANTILES)
    ]
    rows.append({"run": "this run", **{k: float(current[k]) for k in QUANTILES}})
    return pd.DataFrame(rows, columns=["run", *QUANTILES])
