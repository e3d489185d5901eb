"""Plots and the one-page HTML report of a cleaning run (matplotlib, no pipeline imports).

The report is a single self-contained HTML file (plots embedded as PNG data
URIs), so it renders the same from disk, from the MLflow artifact view, or
attached to an e-mail.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

_KEEP, _DROP, _LINE = "#4c78a8", "#e45756", "#222222"


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def value_histogram(values: np.ndarray, flagged: np.ndarray, threshold: float) -> bytes:
    """Histogram of the values, quarantined rows in red, the threshold as a line."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    bins = np.histogram_bin_edges(values, bins=50)
    ax.hist(values[~flagged], bins=bins, color=_KEEP, label=f"kept ({int((~flagged).sum())})")
    ax.hist(values[flagged], bins=bins, color=_DROP, label=f"quarantined ({int(flagged.sum())})")
    if np.isfinite(threshold):
        ax.axvline(threshold, color=_LINE, linestyle="--", linewidth=1, label=f"threshold {threshold:.4g}")
    ax.set(xlabel="value (higher = more valuable)", ylabel="rows", title="Row values")
    ax.legend(frameon=False)
    return _png(fig)


#: Most schema failures the report lists (a file with 10 % bad rows of 10^7 would otherwise make a 1 GB page).
SCHEMA_ROWS = 1000
#: Most points :func:`sorted_values` draws: a 700-pixel-wide plot shows no more (10^6 markers took 40 s to draw).
SORTED_POINTS = 5000


def sorted_values(values: np.ndarray, flagged: np.ndarray, threshold: float) -> bytes:
    """Values sorted from lowest to highest, with the threshold.

    Args:
        values: (N,) row values; flagged: (N,) bool, quarantined rows (drawn red).
        threshold: drawn as a line (NaN = none).

    Beyond :data:`SORTED_POINTS` rows, evenly spaced ranks are drawn (at their true rank, the lowest
    and highest rows and the first and last quarantined one among them), so the plot costs the same at
    any N.
    """
    order = np.argsort(values, kind="stable")
    n = len(values)
    rank = np.arange(n)
    if n > SORTED_POINTS:
        marked = np.flatnonzero(flagged[order])
        ends = [marked[0], marked[-1]] if len(marked) else []
        rank = np.unique(np.concatenate([np.linspace(0, n - 1, SORTED_POINTS).round().astype(np.int64), ends]).astype(np.int64))
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    shown = order[rank]
    ax.scatter(rank, values[shown], s=3, c=np.where(flagged[shown], _DROP, _KEEP))
    if np.isfinite(threshold):
        ax.axhline(threshold, color=_LINE, linestyle="--", linewidth=1)
    title = "Sorted values and threshold" + (f" ({len(rank):,} of {n:,} rows drawn)" if len(rank) < n else "")
    ax.set(xlabel="rows, sorted by value", ylabel="value", title=title)
    return _png(fig)


def training_curves(history: pd.DataFrame) -> bytes:
    """Per-epoch objective and the spread of the row weights."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.2))
    left.plot(history["epoch"], history["loss"], color=_KEEP)
    left.set(xlabel="epoch", ylabel="LossVal objective", title="Training", yscale="log" if (history["loss"] > 0).all() else "linear")
    right.fill_between(history["epoch"], history["weight_min"], history["weight_max"], color=_KEEP, alpha=0.15, label="min-max")
    right.fill_between(history["epoch"], history["weight_p05"], history["weight_p95"], color=_KEEP, alpha=0.35, label="5-95 %")
    right.plot(history["epoch"], history["weight_median"], color=_KEEP, label="median")
    right.set(xlabel="epoch", ylabel="row weight", title="Row weights")
    right.legend(frameon=False, fontsize=8)
    return _png(fig)


def score_bars(scores: Mapping[str, float], metric: str) -> bytes:
    """Test score of the model trained on all rows against the cleaned and the value-weighted ones (those present)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    names = {"all": "all rows", "clean": "cleaned rows", "weighted": "value-weighted"}
    present = [k for k in names if f"test_{metric}_{k}" in scores]
    labels, heights = [names[k] for k in present], [scores[f"test_{metric}_{k}"] for k in present]
    bars = ax.bar(labels, heights, color=[_DROP, _KEEP, _KEEP][: len(present)])
    ax.bar_label(bars, fmt="%.4f")
    ax.set(ylabel=f"test {metric}", title="Downstream model, held-out test split")
    return _png(fig)


def value_drift(runs: pd.DataFrame) -> bytes:
    """The value distribution run after run: median, 25-75 % and 5-95 % bands; the last row is this run.

    Args:
        runs: one row per run, oldest first: ``run`` (label), ``value_p05``, ``value_p25``,
            ``value_median``, ``value_p75``, ``value_p95``.
    """
    x = np.arange(len(runs))
    fig, ax = plt.subplots(figsize=(max(6.4, 0.45 * len(runs)), 3.4))
    ax.fill_between(x, runs["value_p05"], runs["value_p95"], color=_KEEP, alpha=0.15, label="5-95 %")
    ax.fill_between(x, runs["value_p25"], runs["value_p75"], color=_KEEP, alpha=0.35, label="25-75 %")
    ax.plot(x, runs["value_median"], color=_KEEP, marker="o", label="median")
    ax.plot(x[-1:], runs["value_median"].to_numpy()[-1:], color=_DROP, marker="o", linestyle="none", label="this run")
    ax.set_xticks(x, [str(r) for r in runs["run"]], rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="value", title="Value distribution across runs (drift)")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


@dataclass
class ReportData:
    """Everything the one-page report shows."""

    title: str
    counts: Mapping[str, int]
    scores: Mapping[str, float]
    metric: str  # "accuracy" or "rmse": the headline score
    rule: str
    worst: pd.DataFrame  # lowest-valued rows: row_id, value, reason, columns...
    images: Mapping[str, bytes]  # caption -> PNG
    details: Mapping[str, str] = field(default_factory=dict)  # extra key/value lines
    repeated: pd.DataFrame | None = None  # rows quarantined in several runs
    previous_counts: Mapping[str, int] | None = None  # the previous run of the same dataset, for the change column
    health: Sequence[tuple[str, str, str]] = ()  # lossval.health.night_health: (topic, ok|warn, sentence)
    by_reason: pd.DataFrame | None = None  # lossval.health.breakdown
    by_class: pd.DataFrame | None = None
    changes: Mapping[str, int] | None = None  # lossval.health.changes
    schema_failures: pd.DataFrame | None = None  # every schema-quarantined row: row_id, reason, columns... (first SCHEMA_ROWS shown)
    links: Mapping[str, str] = field(default_factory=dict)  # label -> URL (e.g. the MLflow run)


def _table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    def cell(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return float_format.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def render_html(data: ReportData) -> str:
    """The one-page report as a self-contained HTML string."""
    counts = pd.DataFrame({"count": pd.Series(data.counts, dtype="int64")})
    if data.previous_counts:
        previous = pd.Series(data.previous_counts).reindex(counts.index)
        counts["previous run"] = previous.astype("Int64")
        counts["change"] = (counts["count"] - previous).astype("Int64")
    counts = counts.reset_index(names="rows")
    scores = pd.DataFrame([{"metric": k, "value": v} for k, v in data.scores.items()])
    images = "".join(
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for caption, png in data.images.items()
    )
    details = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in data.details.items())
    worst = data.worst.sort_values("value", kind="stable") if "value" in data.worst.columns else data.worst
    repeated = ""
    if data.repeated is not None and not data.repeated.empty:
        repeated = f"<h2>Rows quarantined in more than one run</h2>{_table(data.repeated)}"
    health = "".join(
        f'<tr class="{html.escape(status)}"><td>{html.escape(topic)}</td><td>{html.escape(status.upper())}</td><td>{html.escape(text)}</td></tr>'
        for topic, status, text in data.health
    )
    health = f"<h2>Tonight's health</h2><table class=\"health\"><tbody>{health}</tbody></table>" if health else ""
    links = "".join(f'<li><b>{html.escape(k)}</b>: <a href="{html.escape(v)}">{html.escape(v)}</a></li>' for k, v in data.links.items())
    tables = ""
    for caption, frame in (("Quarantined rows by reason", data.by_reason), ("Quarantined rows by class", data.by_class)):
        if frame is not None and not frame.empty:
            tables += f"<div><h2>{caption}</h2>{_table(frame)}</div>"
    if data.changes is not None:
        tables += f"<div><h2>Against the previous run of this dataset</h2>{_table(pd.DataFrame([data.changes]))}</div>"
    else:
        tables += "<div><h2>Against the previous run of this dataset</h2><p>No previous run of this dataset.</p></div>"
    schema = ""
    if data.schema_failures is not None and not data.schema_failures.empty:
        failures = data.schema_failures
        shown = "" if len(failures) <= SCHEMA_ROWS else (
            f"<p>The first {SCHEMA_ROWS:,} of {len(failures):,} are shown; every one is in the snapshot's quarantine.parquet.</p>")
        schema = f"<h2>Rows that failed the schema ({len(failures)})</h2>{shown}{_table(failures.head(SCHEMA_ROWS))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(data.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .9rem; }}
th, td {{ border: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0 1rem 1rem 0; }} figcaption {{ font-size: .85rem; color: #555; }}
.grid {{ display: flex; gap: 2rem; flex-wrap: wrap; }}
table.health td {{ text-align: left; }} tr.warn td {{ background: #fdecea; }} tr.ok td:nth-child(2) {{ color: #1a7f37; }}
</style></head><body>
<h1>{html.escape(data.title)}</h1>
{health}
<ul>{details}{links}<li><b>threshold rule</b>: {html.escape(data.rule)}</li></ul>
<div class="grid"><div><h2>Rows</h2>{_table(counts)}</div><div><h2>Downstream model (test rows)</h2>{_table(scores)}</div></div>
<div class="grid">{tables}</div>
{schema}
<h2>Lowest-valued rows</h2><p>Sorted by value, lowest first. Value: higher = more valuable. Reason: which part of the LossVal objective pushed the row down.</p>
{_table(worst)}
{repeated}
<h2>Plots</h2>{images}
</body></html>
"""
