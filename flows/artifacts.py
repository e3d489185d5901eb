"""What a flow run shows in the Prefect UI (Artifacts tab): the night's summary, the worst quarantined rows
as a table, links to the MLflow run and its report; and a summary of the failure when a run fails."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from cleaning.failures import message
from cleaning.project import Project
from cleaning.quarantine import COUNT_KEYS
from cleaning.retrain import HEADLINE

WORST_ROWS = 50  # rows in the quarantine table artifact; the full table is in the snapshot and the MLflow run


def run_artifacts(project: Project, summary: dict[str, Any]) -> None:
    create_markdown_artifact(key="lossval-clean-summary", markdown=summary_markdown(project, summary), description="lossval-clean run summary")
    quarantine = summary["quarantine"]
    rows = quarantine.astype({"value": "float64"}).sort_values(["stage", "value"], ascending=[False, True], kind="stable")
    columns = ["row_id", "stage", "reason", "value", *[c for c in rows.columns if c not in ("row_id", "stage", "reason", "value", "rule")]]
    table = rows[columns].head(WORST_ROWS).astype(object).where(rows[columns].head(WORST_ROWS).notna(), None)
    create_table_artifact(
        key="quarantined-rows", table=table.to_dict("records"),
        description=f"The {min(len(rows), WORST_ROWS)} worst of {len(rows)} quarantined rows (lowest value first, schema failures after), with reasons",
    )
    create_link_artifact(key="mlflow-run", link=summary["mlflow_run"], link_text=f"MLflow run {summary['run_name']}",
                         description="The run in MLflow: params, metrics, value tables, plots, models")
    create_link_artifact(key="report", link=f"{summary['mlflow_run']}/artifacts/report.html", link_text="report.html",
                         description=f"The night's report (also {project.reports_dir / 'report.html'})")


def failure_summary(project: Project, tracker, error: BaseException) -> None:
    """A markdown artifact for a failed run: what failed, that nothing was published, where to look."""
    try:
        create_markdown_artifact(
            key="lossval-clean-summary",
            markdown="\n".join([
                f"# lossval-clean FAILED: {project.params.ingest.path}", "",
                f"**{type(error).__name__}**: {message(error)[:2000]}", "",
                "Nothing was published: the previous snapshot, ledger, metrics, dvc.lock and champion model stand.", "",
                f"MLflow run `{tracker.run_name}` (status FAILED, tag `failure`): {tracker.url}",
            ]),
            description="lossval-clean run summary (failed)",
        )
        create_link_artifact(key="mlflow-run", link=tracker.url, link_text=f"MLflow run {tracker.run_name} (failed)")
    except Exception:  # the artifact is a courtesy; the run's own error is what is raised
        pass


def summary_markdown(project: Project, summary: dict[str, Any]) -> str:
    metric = HEADLINE[project.params.base.task]
    variants = [k for k in ("all", "clean", "weighted") if f"test_{metric}_{k}" in summary]
    return "\n".join(
        [
            f"# lossval-clean: {project.params.ingest.path}",
            "",
            "| health | status | |",
            "|---|---|---|",
            *(f"| {topic} | {status} | {text} |" for topic, status, text in summary["health"]),
            "",
            "| rows | count |",
            "|---|---|",
            *(f"| {k} | {summary[k]} |" for k in COUNT_KEYS),
            "",
            f"Threshold rule: `{summary['rule']}`",
            "",
            f"| test {metric} | " + " | ".join(variants) + " |",
            "|---|" + "---|" * len(variants),
            f"| {metric} | " + " | ".join(f"{summary[f'test_{metric}_{k}']:.4f}" for k in variants) + " |",
            "",
            f"Champion: **{summary['promoted']}**. MLflow run `{summary['run_name']}` ({summary['mlflow_run']}), "
            f"DVC experiment `{summary['dvc_experiment']}` (snapshot `{summary['snapshot']}`).",
        ]
    )
