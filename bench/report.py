"""Markdown tables of the quality benchmark's CSV, written between marker comments of a document.

Everything between ``<!-- quality-tables:begin -->`` and
``<!-- quality-tables:end -->`` is regenerated; the rest of the document (the
experiment log, the discussion) is left alone. A document without the markers
gets them appended.

Every table cell gives three numbers, ``F1 · AUROC · P@k``: the 2-means F1
(the paper's metric), the AUROC and the precision at the true noise count
(both independent of a threshold). Means are balanced: first over the
repetitions of a (dataset, rate) cell, then over the cells the method ran;
the yes/no rows compare two methods on the cells *both* ran (paired), so a
method with fewer finished runs is still compared like with like.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from bench import published as published_figures
from bench.methods import CLEANLAB, DEFAULT_METHODS

BEGIN, END = "<!-- quality-tables:begin -->", "<!-- quality-tables:end -->"
KINDS = ("labels", "features", "mixed")
COLUMNS = [(task, kind) for task in ("classification", "regression") for kind in KINDS]
HEADER = "| method | cls labels | cls features | cls mixed | reg labels | reg features | reg mixed |"
METRICS = ["f1", "f1_flags", "auroc", "precision_at_k"]
CELL = ["task", "dataset", "kind", "rate"]
#: Mean F1 in the "paper" setting over 6 datasets x 4 rates x 25 runs, from the authors' result files (issue 3).
#: Two of the six datasets per task are not available offline; the same figures on the datasets of each table
#: come from ``bench.published`` (bench/results/published.csv), the authors' per-run files reduced per dataset.
ANCHORS = {
    "LossVal (paper, 30 epochs), published, 6 datasets": (0.544, 0.204, 0.371, 0.464, 0.256, 0.354),
    "best other method in the paper, published, 6 datasets": (0.355, 0.329, 0.298, 0.247, 0.415, 0.255),
}
ANCHOR_NOTES = {1: " (LAVA)", 4: " (LAVA)"}
TARGET = tuple(max(values) for values in zip(*ANCHORS.values()))
DEFAULT = "lossval"
#: The methods of the per-dataset tables: the default, its raw weights (the default before issue 14's
#: second round), the authors' variant (exact, and clipped as run before issue 14), the loss-only
#: ablation, and both cleanlab baselines.
FOCUS = (DEFAULT, "lv[tie_break=False]", "paper", "paper[clip_weights=True]", "loss_only", *CLEANLAB)


def fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.3f}"
    return text[1:] if text.startswith("0.") else text.replace("-0.", "-.")


def _triple(row: pd.Series | None, f1: str = "f1") -> str:
    if row is None or not np.isfinite(row[f1]):
        return "–"
    return f"{fmt(row[f1])} · {fmt(row['auroc'])} · {fmt(row['precision_at_k'])}"


def method_order(methods: list[str]) -> list[str]:
    known = [m for m in (DEFAULT, "lv[tie_break=False]", *DEFAULT_METHODS) if m in methods]
    known = list(dict.fromkeys(known))
    return known + sorted(m for m in methods if m not in known)


def cell_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Every metric averaged over the repetitions of each (method, task, dataset, kind, rate) cell, with ``reps``."""
    grouped = frame.groupby(["method", *CELL])
    return grouped[METRICS].mean().join(grouped.size().rename("reps")).reset_index()


def balanced(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean of every metric per method and ``by`` (a subset of task, dataset, kind), balanced.

    Repetitions are averaged within each (dataset, kind, rate) cell first, then
    the cells a method ran are averaged with equal weight. Adds ``cells`` (how
    many) and ``reps_min`` / ``reps_max`` (repetitions per cell).
    """
    per = cell_means(frame)
    keys = ["method", *by]
    out = per.groupby(keys)[METRICS].mean()
    reps = per.groupby(keys)["reps"]
    return out.join(reps.size().rename("cells")).join(reps.min().rename("reps_min")).join(reps.max().rename("reps_max"))


def paired(frame: pd.DataFrame, a: str, b: str, metric: str, by: tuple[str, ...] = ("task", "kind")) -> dict[tuple, tuple[float, float, int]]:
    """Per ``by`` (default (task, kind)): (mean of ``a``, mean of ``b``, cells) over the cells *both* methods ran.

    ``metric="f1_best"``: ``a``'s F1 against the better of ``b``'s F1 and its flags' F1, per cell.
    """
    per = cell_means(frame[frame["method"].isin([a, b])])
    per["f1_best"] = per[["f1", "f1_flags"]].max(axis=1)
    mine = per[per["method"] == a].set_index(CELL)["f1" if metric == "f1_best" else metric].rename("a")
    theirs = per[per["method"] == b].set_index(CELL)[metric].rename("b")
    both = pd.concat([mine, theirs], axis=1, join="inner").dropna()
    return {key: (float(part["a"].mean()), float(part["b"].mean()), len(part)) for key, part in both.groupby(level=list(by))}


def _lookup(table: pd.DataFrame, *key: str) -> pd.Series | None:
    return table.loc[key] if key in table.index else None


def same_dataset_anchors(frame: pd.DataFrame, published: pd.DataFrame | None) -> pd.DataFrame | None:
    """The published figures averaged over the datasets ``frame`` has per task (``bench.published``)."""
    if published is None:
        return None
    datasets = {task: list(dict.fromkeys(part["dataset"])) for task, part in frame.groupby("task")}
    return published_figures.column_anchors(published, datasets)


def average_table(frame: pd.DataFrame, published: pd.DataFrame | None = None) -> list[str]:
    table = balanced(frame, ["task", "kind"])
    methods = method_order(list(dict.fromkeys(table.index.get_level_values("method"))))
    lines = [HEADER, "|---|---|---|---|---|---|---|"]
    for name, values in ANCHORS.items():
        cells = [fmt(v) + (ANCHOR_NOTES.get(i, "") if "best other" in name else "") for i, v in enumerate(values)]
        lines.append(f"| *{name}* (F1 only) | " + " | ".join(cells) + " |")
    same = same_dataset_anchors(frame, published)
    if same is not None:
        lossval = [fmt(same["lossval"].get(c, np.nan)) for c in COLUMNS]
        lines.append("| *LossVal (paper, 30 epochs), published, these datasets* (F1 only) | " + " | ".join(lossval) + " |")
        best = [fmt(same["best_other"].get(c, np.nan)) + (f" ({same['best_other_method'][c]})" if c in same.index and same["best_other_method"][c] else "")
                for c in COLUMNS]
        lines.append("| *best other method in the paper, published, these datasets* (F1 only) | " + " | ".join(best) + " |")
    for method in methods:
        label = f"**{method}** (default)" if method == DEFAULT else method
        lines.append(f"| {label} | " + " | ".join(_triple(_lookup(table, method, *c)) for c in COLUMNS) + " |")
        if method in CLEANLAB:
            flags = [_triple(_lookup(table, method, *c), "f1_flags") for c in COLUMNS]
            lines.append(f"| {method}, its own flags | " + " | ".join(flags) + " |")
    if any(_lookup(table, DEFAULT, *c) is not None for c in COLUMNS):
        ours = [_value(table, DEFAULT, c, "f1") for c in COLUMNS]
        rates = frame["rate"].nunique()
        full = {c: frame.loc[frame["task"] == c[0], "dataset"].nunique() * rates for c in COLUMNS}
        verdicts = [
            v if not np.isfinite(ours[i]) or _value(table, DEFAULT, c, "cells") >= full[c]
            else f"– ({int(_value(table, DEFAULT, c, 'cells'))} of {full[c]} cells)"
            for i, (v, c) in enumerate(zip(_verdict(ours, TARGET), COLUMNS))
        ]  # the anchors average every rate: no verdict on a column the default has not run in full
        lines.append("| default >= both published anchors (F1, only on a column run in full)? | " + " | ".join(verdicts) + " |")
        if same is not None:
            bar = [same["best"].get(c, np.nan) for c in COLUMNS]
            partial = " (against the best other only: LossVal's published runs incomplete here)"
            mark = [v if v.startswith("–") else w + ("" if np.isfinite(same["lossval"].get(c, np.nan)) else partial)
                    for v, w, c in zip(verdicts, _verdict(ours, bar), COLUMNS)]
            lines.append("| default >= the best published method on these datasets (F1)? | " + " | ".join(mark) + " |")
        for other, metric, what in _COMPARISONS:
            if other not in methods:
                continue
            pairs = paired(frame, DEFAULT, other, metric)
            cells = [_pair_verdict(pairs.get(c)) for c in COLUMNS]
            lines.append(f"| default > {other} ({what}, paired)? | " + " | ".join(cells) + " |")
    lines += ["", "(dataset, rate) cells behind each figure, and repetitions per cell (min-max):", "", HEADER, "|---|---|---|---|---|---|---|"]
    for method in methods:
        cells = [_reps(_lookup(table, method, *c)) for c in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


_COMPARISONS = [
    ("paper", "f1", "F1"),
    ("paper[clip_weights=True]", "f1", "F1"),
    *[(model, "f1_best", "F1, best of its values and flags") for model in CLEANLAB],
    *[(model, "auroc", "AUROC") for model in CLEANLAB],
]


def _pair_verdict(pair: tuple[float, float, int] | None) -> str:
    if pair is None:
        return "–"
    ours, theirs, cells = pair
    return ("yes" if ours > theirs else "**no**") + f" ({fmt(ours - theirs)}, {cells} cells)"


def _value(table: pd.DataFrame, method: str, column: tuple[str, str], metric: str) -> float:
    row = _lookup(table, method, *column)
    return float("nan") if row is None else float(row[metric])


def _reps(row: pd.Series | None) -> str:
    if row is None:
        return "–"
    low, high = int(row["reps_min"]), int(row["reps_max"])
    return f"{int(row['cells'])} x " + (str(low) if low == high else f"{low}-{high}")


def _verdict(ours: list[float], bar, *, strict: bool = False) -> list[str]:
    out = []
    for value, target in zip(ours, bar):
        if not (np.isfinite(value) and np.isfinite(target)):
            out.append("–")
        else:
            win = value > target if strict else value >= target
            out.append(("yes" if win else "**no**") + f" ({fmt(value - target)})")
    return out


def dataset_table(frame: pd.DataFrame, task: str, per_dataset: pd.DataFrame | None = None) -> list[str]:
    """Per dataset of ``task``: the FOCUS methods' F1 · AUROC · P@k per noise kind (cleanlab: values and flags),
    and how many rates x repetitions each figure averages (labels / features / mixed); with ``per_dataset``
    (:func:`bench.published.anchors`), the paper's LossVal and the best other method of the paper on that
    dataset (F1 only)."""
    part = frame[(frame["task"] == task) & frame["method"].isin(FOCUS)]
    if part.empty:
        return [f"(no {task} runs yet)"]
    table = balanced(part, ["dataset", "kind"])
    present = [m for m in FOCUS if m in set(part["method"])]
    lines = ["| dataset | method | labels | features | mixed | rates x repetitions (labels / features / mixed) |", "|---|---|---|---|---|---|"]
    for dataset in dict.fromkeys(part["dataset"]):
        for method in present:
            rows = [_lookup(table, method, dataset, k) for k in KINDS]
            if all(r is None for r in rows):
                continue
            reps = " / ".join(_reps(r) for r in rows)
            lines.append(f"| {dataset} | {method} | " + " | ".join(_triple(r) for r in rows) + f" | {reps} |")
            if method in CLEANLAB:
                lines.append(f"| {dataset} | {method}, flags | " + " | ".join(_triple(r, "f1_flags") for r in rows) + " | |")
        for model in CLEANLAB:
            pairs = paired(part, DEFAULT, model, "f1_best", by=("dataset", "kind"))
            cells = [_pair_verdict(pairs.get((dataset, k))) for k in KINDS]
            if any(c != "–" for c in cells):
                lines.append(f"| {dataset} | default > {model} (F1 vs its best of values and flags, paired)? | " + " | ".join(cells) + " | |")
        lines += _published_rows(per_dataset, task, dataset)
    return lines


def _published_rows(per_dataset: pd.DataFrame | None, task: str, dataset: str) -> list[str]:
    if per_dataset is None:
        return []
    rows = [per_dataset.loc[(task, dataset, k)] if (task, dataset, k) in per_dataset.index else None for k in KINDS]
    if all(r is None for r in rows):
        return []
    lossval = [fmt(r["lossval"]) if r is not None else "–" for r in rows]
    best = [f"{fmt(r['best_other'])} ({r['best_other_method']})" if r is not None and isinstance(r["best_other_method"], str) else "–"
            for r in rows]
    reps = " / ".join(_reps(r.rename({"rates": "cells", "runs_min": "reps_min", "runs_max": "reps_max"}))
                      if r is not None and np.isfinite(r["lossval"]) else "–" for r in rows)
    return [f"| {dataset} | *LossVal (paper, 30 epochs), published* (F1) | " + " | ".join(lossval) + f" | {reps} |",
            f"| {dataset} | *best other method of the paper, published* (F1) | " + " | ".join(best) + " | |"]


def reason_table(frame: pd.DataFrame) -> list[str]:
    mixed = frame[(frame["kind"] == "mixed") & frame["reason_accuracy"].notna()]
    if mixed.empty:
        return ["(no mixed-noise LossVal runs yet)"]
    table = mixed.groupby(["method", "task"])["reason_accuracy"].mean().unstack("task")
    lines = ["| method | classification | regression |", "|---|---|---|"]
    for method in method_order(list(table.index)):
        row = table.loc[method]
        lines.append(f"| {method} | {fmt(row.get('classification', np.nan))} | {fmt(row.get('regression', np.nan))} |")
    return lines


def render(frame: pd.DataFrame, *, command: str | None, machine: str, published: pd.DataFrame | None = None) -> str:
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
    lines += ["", "Every cell: **F1 · AUROC · P@k** (2-means F1, AUROC, precision at the true noise count); means "
              "balanced over the (dataset, rate) cells each method ran; yes/no rows paired on the cells both ran."]  # fmt: skip
    per_dataset = published_figures.anchors(published) if published is not None else None
    for setting, title in (("paper", "noise on training and validation rows"), ("trusted", "noise on training rows only")):
        part = frame[frame["setting"] == setting]
        if part.empty:
            continue
        paper = setting == "paper"  # the published figures are of the paper's setting only
        lines += [
            "",
            f"### Setting \"{setting}\": {title}",
            "",
            f"Datasets: {', '.join(dict.fromkeys(part['dataset']))}. Mean per task and noise kind; the published "
            "rows are F1 means over the paper's six datasets per task (two of them not available here) and, "
            "\"these datasets\", the same published runs averaged over the datasets of this table "
            "(`bench/results/published.csv`, `python -m bench.published`):",
            "",
            *average_table(part, published if paper else None),
            "",
            "Per dataset, classification:",
            "",
            *dataset_table(part, "classification", per_dataset if paper else None),
            "",
            "Per dataset, regression:",
            "",
            *dataset_table(part, "regression", per_dataset if paper else None),
            "",
            "Reason accuracy on mixed noise (share of the truly noisy rows whose reason names the injected type):",
            "",
            *reason_table(part),
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_report(csv: Path, doc: Path, *, command: str | None, machine: str) -> None:
    frame = pd.read_csv(csv)
    frame.attrs["path"] = csv.name if csv.parent.name != "results" else f"bench/results/{csv.name}"
    block = render(frame, command=command, machine=machine, published=published_figures.load())
    text = doc.read_text() if doc.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
