"""Markdown tables of the quality benchmark's CSV, written between marker comments of a document.

Everything between ``<!-- quality-tables:begin -->`` and
``<!-- quality-tables:end -->`` is regenerated; the rest of the document (the
experiment log, the discussion) is left alone. A document without the markers
gets them appended.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from bench.methods import DEFAULT_METHODS

BEGIN, END = "<!-- quality-tables:begin -->", "<!-- quality-tables:end -->"
COLUMNS = [(task, kind) for task in ("classification", "regression") for kind in ("labels", "features", "mixed")]
HEADER = "| method | cls labels | cls features | cls mixed | reg labels | reg features | reg mixed |"
#: Mean F1 in the "paper" setting over 6 datasets x 4 rates x 25 runs, from the authors' result files (issue 3).
ANCHORS = {
    "LossVal (paper, 30 epochs), published": (0.544, 0.204, 0.371, 0.464, 0.256, 0.354),
    "best other method in the paper, published": (0.355, 0.329, 0.298, 0.247, 0.415, 0.255),
}
ANCHOR_NOTES = {1: " (LAVA)", 4: " (LAVA)"}
TARGET = tuple(max(values) for values in zip(*ANCHORS.values()))
DEFAULT = "lossval"


def _fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.3f}"
    return text[1:] if text.startswith("0.") else text


def method_order(methods: list[str]) -> list[str]:
    known = [m for m in DEFAULT_METHODS if m in methods]
    return known + sorted(m for m in methods if m not in known)


def means(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean of ``metric`` per method (rows) and (task, kind) (columns)."""
    table = frame.groupby(["method", "task", "kind"])[metric].mean().unstack(["task", "kind"])
    return table.reindex(columns=pd.MultiIndex.from_tuples(COLUMNS))


def metric_table(frame: pd.DataFrame, metric: str, *, anchors: bool, flags_row: bool = False) -> list[str]:
    table = means(frame, metric)
    lines = [HEADER, "|---|---|---|---|---|---|---|"]
    if anchors:
        for name, values in ANCHORS.items():
            cells = [_fmt(v) + ANCHOR_NOTES.get(i, "") if "best other" in name else _fmt(v) for i, v in enumerate(values)]
            lines.append(f"| *{name}* | " + " | ".join(cells) + " |")
    for method in method_order(list(table.index)):
        label = f"**{method}** (default)" if method == DEFAULT else method
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in table.loc[method]) + " |")
        if flags_row and method == "cleanlab":
            flags = means(frame, "f1_flags").loc[method]
            lines.append("| cleanlab, its own flags | " + " | ".join(_fmt(v) for v in flags) + " |")
    if anchors and DEFAULT in table.index:
        lines.append("| default >= both published anchors? | " + " | ".join(_verdict(table.loc[DEFAULT], TARGET)) + " |")
    if anchors and flags_row and {DEFAULT, "cleanlab"} <= set(table.index):
        cleanlab = np.fmax(table.loc["cleanlab"].to_numpy(), means(frame, "f1_flags").loc["cleanlab"].to_numpy())
        lines.append("| default > cleanlab (best of its scores and flags)? | " + " | ".join(_verdict(table.loc[DEFAULT], cleanlab, strict=True)) + " |")
    return lines


def _verdict(ours: pd.Series, bar, *, strict: bool = False) -> list[str]:
    out = []
    for value, target in zip(ours.to_numpy(), bar):
        if not (np.isfinite(value) and np.isfinite(target)):
            out.append("–")
        else:
            win = value > target if strict else value >= target
            out.append(("yes" if win else "**no**") + f" ({_fmt(value - target)})")
    return out


def dataset_table(frame: pd.DataFrame, methods: list[str]) -> list[str]:
    """Mean F1 per dataset and noise kind for a few methods (cleanlab: its own flags)."""
    present = [m for m in methods if m in set(frame["method"])]
    kinds = ("labels", "features", "mixed")
    header = "| dataset | " + " | ".join(f"{k}: {m}" for k in kinds for m in present) + " |"
    lines = [header, "|---" * (1 + len(kinds) * len(present)) + "|"]
    metric = frame.assign(score=np.where(frame["method"] == "cleanlab", frame["f1_flags"], frame["f1"]))
    table = metric.groupby(["dataset", "kind", "method"])["score"].mean()
    for dataset in dict.fromkeys(frame["dataset"]):
        cells = [_fmt(table.get((dataset, k, m), np.nan)) for k in kinds for m in present]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return lines


def reason_table(frame: pd.DataFrame) -> list[str]:
    mixed = frame[(frame["kind"] == "mixed") & frame["reason_accuracy"].notna()]
    if mixed.empty:
        return ["(no mixed-noise LossVal runs yet)"]
    table = mixed.groupby(["method", "task"])["reason_accuracy"].mean().unstack("task")
    lines = ["| method | classification | regression |", "|---|---|---|"]
    for method in method_order(list(table.index)):
        row = table.loc[method]
        lines.append(f"| {method} | {_fmt(row.get('classification', np.nan))} | {_fmt(row.get('regression', np.nan))} |")
    return lines


def render(frame: pd.DataFrame, *, command: str | None, machine: str) -> str:
    runs = frame.groupby(["setting", "method"]).size()
    reps = frame.groupby(["setting", "dataset", "kind", "rate", "method"]).size()
    lines = [
        BEGIN,
        "<!-- generated by `python -m bench.quality --report`; edit the code, not these lines -->",
        f"Generated {dt.date.today().isoformat()} from `{frame.attrs.get('path', 'the CSV')}` ({len(frame)} runs; "
        f"{int(reps.min())}-{int(reps.max())} repetitions per cell and method).",
        f"Machine: {machine}.",
    ]
    if command:
        lines.append(f"Command: `{command}`")
    datasets = ", ".join(dict.fromkeys(frame["dataset"]))
    for setting, title in (("paper", "noise on training and validation rows"), ("trusted", "noise on training rows only")):
        part = frame[frame["setting"] == setting]
        if part.empty:
            continue
        n = ", ".join(f"{m} {int(runs.get((setting, m), 0))}" for m in method_order(list(set(part["method"]))))
        lines += [
            "",
            f"### Setting \"{setting}\": {title}",
            "",
            f"Datasets: {datasets}. Runs per method: {n}.",
            "",
            "Mean F1 of the low 2-means cluster (the paper's metric); published rows are the issue's anchors "
            "(paper setting, 6 datasets per task):",
            "",
            *metric_table(part, "f1", anchors=True, flags_row=True),
            "",
            "Mean AUROC (noisy rows ranked below clean ones; threshold-free):",
            "",
            *metric_table(part, "auroc", anchors=False),
            "",
            "Mean precision at the true noise count (threshold-free):",
            "",
            *metric_table(part, "precision_at_k", anchors=False),
            "",
            "Mean F1 per dataset (cleanlab: its own flags):",
            "",
            *dataset_table(part, [DEFAULT, "paper", "cleanlab"]),
            "",
            "Reason accuracy on mixed noise (share of the truly noisy rows whose reason names the injected type):",
            "",
            *reason_table(part),
            "",
            "Mean test score of the model each LossVal variant trained (accuracy / R^2 on the 3000 test rows):",
            "",
            *metric_table(part[part["test_score"].notna()], "test_score", anchors=False),
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_report(csv: Path, doc: Path, *, command: str | None, machine: str) -> None:
    frame = pd.read_csv(csv)
    frame.attrs["path"] = csv.name if csv.parent.name != "results" else f"bench/results/{csv.name}"
    block = render(frame, command=command, machine=machine)
    text = doc.read_text() if doc.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
