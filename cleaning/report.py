"""The run's report (report.html and its plots) and the night's health it opens with; work/run.json for the next run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossval import report as report_lib
from lossval.health import breakdown, changes, night_health
from lossval.io import write_bytes, write_text
from lossval.ledger import Ledger
from lossval.rows import ROW_ID
from cleaning.project import Project
from cleaning.retrain import HEADLINE

WORST_ROWS = 25
PLOTS = {"values_hist.png": "Value histogram", "values_sorted.png": "Sorted values", "training.png": "Training", "scores.png": "Before / after",
         "values_drift.png": "Value distribution across runs"}
QUANTILE_NAMES = ("value_min", "value_p05", "value_p25", "value_median", "value_p75", "value_p95", "value_max")
DRIFT_QUANTILES = ("value_p05", "value_p25", "value_median", "value_p75", "value_p95")  # drawn across runs


def value_distribution(values: np.ndarray) -> dict[str, float]:
    """The values' quantiles, mean and standard deviation: MLflow metrics of every run, and the drift plot's points."""
    q = np.quantile(values, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    return {**dict(zip(QUANTILE_NAMES, map(float, q))), "value_mean": float(values.mean()), "value_std": float(values.std())}


def health(project: Project, *, counts: Mapping[str, int], calibration: Mapping[str, float] | None, unreliable: bool,
           capped: bool, gate: Mapping[str, Any] | None, check: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The night's health lines (lossval.health.night_health) from a run's results
    (``calibration``: Calibration.as_metrics(), None without canaries)."""
    return night_health(
        counts=counts, calibration=calibration, reliable=not unreliable, capped=capped,
        max_fraction=project.params.quarantine.max_fraction, gate=gate,
        reference_ratio=check.get("reference_distance_ratio"), max_ratio=project.params.reference.max_distance_ratio,
    )  # fmt: skip


def build_report(project: Project, *, values: pd.DataFrame, rule: str, history: pd.DataFrame, counts: Mapping[str, int],
                 scores: Mapping[str, float], quarantine: pd.DataFrame, ledger: Ledger, run_id: str, run_name: str, trigger: str,
                 at: str, device: str, health_lines: list[tuple[str, str, str]], check: Mapping[str, Any], link: str,
                 drift: pd.DataFrame) -> dict[str, Path]:
    """Write the plots and report.html into the reports folder; return name -> path.

    ``drift``: one row per earlier run (``run`` and :data:`DRIFT_QUANTILES`), oldest first; this run is added.
    The report opens with the night's health (``health_lines``, :func:`health`), then counts by reason and class and the
    change against the previous run of the same dataset (work/run.json), the schema failures, and the
    lowest-valued rows sorted by value.
    """
    task_ = project.params.base.task
    metric = HEADLINE[task_]
    v = values["value"].to_numpy()
    flagged = values[ROW_ID].isin(set(quarantine.loc[quarantine["stage"] == "value", ROW_ID].astype(str))).to_numpy()
    cut = float(v[flagged].max()) if flagged.any() else float("nan")  # the value threshold as drawn
    images = {
        "values_hist.png": report_lib.value_histogram(v, flagged, cut),
        "values_sorted.png": report_lib.sorted_values(v, flagged, cut),
        "training.png": report_lib.training_curves(history),
        "scores.png": report_lib.score_bars(scores, metric),
        "values_drift.png": report_lib.value_drift(pd.concat(
            [drift, pd.DataFrame([{"run": "this run", **{k: value_distribution(v)[k] for k in DRIFT_QUANTILES}}])], ignore_index=True
        ).astype({k: "float64" for k in DRIFT_QUANTILES})),
    }
    value_rows = quarantine[quarantine["stage"] == "value"].astype({"value": "float64"})
    worst = value_rows.sort_values("value", kind="stable").head(WORST_ROWS).drop(columns=["stage"])
    schema_rows = quarantine[quarantine["stage"] == "schema"].drop(columns=["stage", "value", "rule"])
    status = ledger.status()
    previous = previous_run(project)
    current = set(quarantine[ROW_ID].astype(str))
    by_reason, by_class = breakdown(quarantine, target=project.params.base.target)
    data = report_lib.ReportData(
        title=f"lossval-clean: {run_name}",
        counts=counts,
        scores=scores,
        metric=metric,
        rule=rule,
        worst=worst,
        images={PLOTS[k]: png for k, png in images.items()},
        details={"dataset": project.params.ingest.path, "run": f"{run_name} ({run_id})", "date": at, "trigger": trigger,
                 "task": task_, "device": device, "runs in the ledger (in full)": str(len(ledger.runs())), "imputed cells": _imputed_text(check)},
        repeated=status[status["times_quarantined"] > 1].head(25) if not status.empty else None,
        previous_counts=previous.get("counts") if previous else None,
        health=health_lines,
        by_reason=by_reason,
        by_class=by_class,
        changes=changes(current=current, previous=_previous_ids(ledger, previous), restored=ledger.pinned()),
        schema_failures=schema_rows,
        links={"MLflow run": link},
    )
    paths = {name: write_bytes(png, project.reports_dir / name) for name, png in images.items()}
    paths["report.html"] = write_text(report_lib.render_html(data), project.reports_dir / "report.html")
    return paths


def previous_run(project: Project) -> dict | None:
    """work/run.json of the previous run, if it cleaned the same dataset (ingest.path)."""
    path = project.work_file("run.json")
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("dataset") == project.params.ingest.path else None


def _previous_ids(ledger: Ledger, previous: Mapping[str, Any] | None) -> set[str] | None:
    if not previous or not previous.get("fingerprint"):
        return None
    events = ledger.events
    rows = events[(events["fingerprint"] == previous["fingerprint"]) & (events["event"] == "quarantined")]
    return set(rows["row_id"].astype(str))


def run_record(project: Project, *, run_id: str, trigger: str, counts: Mapping[str, int], scores: Mapping[str, float],
               fingerprint: str = "") -> dict:
    """What work/run.json keeps of a run: the next run of the same dataset compares its counts and rows with these."""
    return {"run_id": run_id, "trigger": trigger, "dataset": project.params.ingest.path, "fingerprint": fingerprint,
            "counts": dict(counts), "scores": dict(scores)}


def summary_lines(lines: list[tuple[str, str, str]]) -> str:
    """The health lines as text: ``[ ok ] topic: sentence``."""
    return "\n".join(f"[{status:^4}] {topic}: {text}" for topic, status, text in lines)


def _imputed_text(check: Mapping[str, Any]) -> str:
    """The reference check's ``imputed_cells.<column>`` counts, one per column (issue 15)."""
    per_column = {k.split(".", 1)[1]: int(v) for k, v in check.items() if k.startswith("imputed_cells.")}
    return ", ".join(f"{c}: {n}" for c, n in per_column.items()) if per_column else "none"
