"""Markdown tables of the cleaning benchmark's CSV (:mod:`bench.cleaning`), with the issue 12 targets.

Everything between ``<!-- cleaning-tables:begin -->`` and ``<!-- cleaning-tables:end -->`` is
regenerated; the rest of the document is left alone (a document without the markers gets them
appended). Definitions:

- gain of a method in a cell: error of the all-rows model minus its error on the test rows (accuracy
  points, or RMSE of the standardised target), > 0 = better, with the gate's paired bootstrap interval;
- share of the all -> oracle gap a method closes, per dataset: its summed gain over the noisy cells
  (5-20 %) divided by the oracle's summed gain over the same cells; "mean" = mean over datasets;
- "worse beyond its interval": the upper end of the interval of its gain is below 0;
- quarantine precision = truly corrupted / flagged (cells that flag something), recall = truly
  corrupted flagged / corrupted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

BEGIN, END = "<!-- cleaning-tables:begin -->", "<!-- cleaning-tables:end -->"
VARIANTS = ("clean", "weighted", "champion", "cleanlab")
CELL = ["dataset", "kind", "rate", "rep", "rows"]
#: Below this pooled oracle gain (accuracy points or RMSE) a share of it is not shown: there is no gap to close.
NO_GAP = 0.005


def _f(value: float, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _pct(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.0f} %"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def gains(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, one column per method: its gain over all rows."""
    return frame.pivot_table(index=["task", *CELL], columns="method", values="delta", aggfunc="first")


def gap_shares(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Share of the oracle's gain each method reaches, summed over the cells of each ``by`` group
    where both ran (cleanlab: its cells only)."""
    g = gains(frame[frame["rate"] > 0]).reset_index()
    out = {}
    for method in [m for m in VARIANTS if m in g]:
        both = g.dropna(subset=[method, "oracle"])
        sums = both.groupby(by)[[method, "oracle"]].sum()
        out[method] = sums[method] / sums["oracle"]
    gap = g.groupby(by)["oracle"].mean() if "oracle" in g else pd.Series(dtype=float)
    return pd.DataFrame({"gap": gap, **out})


def gap_table(frame: pd.DataFrame) -> list[str]:
    shares = gap_shares(frame, ["task", "dataset"])
    rows = [[d, t[:3], _f(s["gap"]), *(_pct(s.get(m, np.nan)) for m in VARIANTS)] for (t, d), s in shares.iterrows()]
    mean, median = shares.mean(numeric_only=True), shares.median(numeric_only=True)
    rows.append(["**mean over datasets**", "", "", *(f"**{_pct(mean.get(m, np.nan))}**" for m in VARIANTS)])
    rows.append(["median over datasets", "", "", *(_pct(median.get(m, np.nan)) for m in VARIANTS)])
    return _table(["dataset", "task", "all -> oracle gain", "clean (default drop)", "weighted", "champion", "cleanlab (labels)"], rows)


def kind_rate_table(frame: pd.DataFrame) -> list[str]:
    """Shares pooled over the datasets of a task (summed gains / summed oracle gains): a per-dataset
    ratio is unstable where the oracle gains almost nothing."""
    shares = gap_shares(frame, ["task", "kind", "rate"])
    rows = [[t[:3], k, f"{r:g}", _f(s["gap"]), *(_pct(s.get(m, np.nan)) if s["gap"] > NO_GAP else "no gap" for m in VARIANTS)]
            for (t, k, r), s in shares.iterrows()]  # fmt: skip
    return _table(["task", "noise", "rate", "all -> oracle gain", "clean", "weighted", "champion", "cleanlab"], rows)


def harm_table(frame: pd.DataFrame) -> list[str]:
    rows = []
    for method in ("clean", "weighted", "champion", "cleanlab"):
        cells = [method]
        for noisy in (False, True):
            sub = frame[(frame["method"] == method) & ((frame["rate"] > 0) == noisy)]
            worse, better = int((sub["delta_hi"] < 0).sum()), int((sub["delta_lo"] > 0).sum())
            cells += [f"{worse} / {len(sub)}", f"{better} / {len(sub)}"]
        rows.append(cells)
    return _table(["method", "0 %: worse", "0 %: better", "5-20 %: worse", "5-20 %: better"], rows)


def quarantine_frame(frame: pd.DataFrame) -> pd.DataFrame:
    q = frame[frame["method"] == "clean"].copy()
    q["precision"] = np.where(q["flagged"] > 0, q["true_flagged"] / q["flagged"].where(q["flagged"] > 0), np.nan)
    q["recall"] = q["true_flagged"] / q["n_noisy"].where(q["n_noisy"] > 0)
    q["ratio"] = q["flagged"] / q["n_noisy"].where(q["n_noisy"] > 0)
    q["within_50"] = (q["ratio"] - 1).abs() <= 0.5
    q["est_error"] = (q["est_precision"] - q["precision"]).abs()
    q["true_in_interval"] = (q["n_noisy"] >= q["est_lo"]) & (q["n_noisy"] <= q["est_hi"])
    q["flagged_in_interval"] = (q["flagged"] >= q["est_lo"]) & (q["flagged"] <= q["est_hi"])
    q["unreliable"] = q["rule"].astype(str).str.contains("unreliable")
    return q


def quarantine_table(frame: pd.DataFrame) -> list[str]:
    q = quarantine_frame(frame)
    rows = []
    for rate, s in q.groupby("rate"):
        err = s["est_error"].dropna()
        rows.append([
            f"{rate:g}", str(len(s)), _f(s["n_noisy"].mean(), 1), _f(s["flagged"].mean(), 1), _f(s["est_count"].mean(), 1),
            _pct(s["true_in_interval"].mean()), _f(s["precision"].mean()), _f(s["recall"].mean()),
            _pct(s.loc[s["n_noisy"] > 0, "within_50"].mean()) if rate > 0 else "–",
            _f(err.mean()) + (f" ({_pct((err <= 0.15).mean())})" if len(err) else ""), _f(s["canary_auroc"].mean()),
            _pct(s["unreliable"].mean()),
        ])  # fmt: skip
    return _table(["rate", "cells", "true bad", "flagged", "estimated bad", "true count in est. interval", "precision",
                   "recall", "flagged within ±50 % of true", "abs. error of est. precision (share <= .15)", "canary AUROC",
                   "unreliable"], rows)  # fmt: skip


def dataset_quarantine_table(frame: pd.DataFrame, rate: float) -> list[str]:
    q = quarantine_frame(frame)
    q = q[np.isclose(q["rate"], rate)]
    rows = []
    for (task, dataset), s in q.groupby(["task", "dataset"]):
        rows.append([dataset, _f(s["n_noisy"].mean(), 0), _f(s["flagged"].mean(), 1), _f(s["est_count"].mean(), 1),
                     _f(s["precision"].mean()), _f(s["est_precision"].mean()), _f(s["recall"].mean()), _f(s["canary_auroc"].mean())])  # fmt: skip
    return _table(["dataset", "true bad", "flagged", "estimated bad", "precision", "estimated precision", "recall", "canary AUROC"], rows)


def cleanlab_table(frame: pd.DataFrame) -> list[str]:
    lab = frame[(frame["kind"] == "labels") & (frame["task"] == "classification")]
    table = lab.pivot_table(index="dataset", columns="method", values="score", aggfunc="mean")
    have = lab[lab["method"] == "cleanlab"].set_index(CELL).index
    rows = []
    for dataset, s in table.iterrows():
        cells = lab[(lab["dataset"] == dataset) & lab.set_index(CELL).index.isin(have)]
        per = cells.pivot_table(index=CELL, columns="method", values="score", aggfunc="first")
        wins = int((per.get("champion") > per.get("cleanlab")).sum()) if {"champion", "cleanlab"} <= set(per) else 0
        rows.append([dataset, *(_f(s.get(m, np.nan)) for m in ("all", "oracle", "cleanlab", "clean", "weighted", "champion")),
                     f"{wins} / {len(per)}"])  # fmt: skip
    return _table(["dataset", "all", "oracle", "cleanlab removal", "clean", "weighted", "champion", "champion > cleanlab (cells)"], rows)


def size_table(frame: pd.DataFrame) -> list[str]:
    """The same cells (10 % noise, repetition 0, the (dataset, kind) pairs run at every size) at each table
    size; shares pooled over the datasets of a task."""
    frame = frame[np.isclose(frame["rate"], 0.1) & (frame["rep"] == 0)]
    weighted = frame[frame["method"] == "weighted"]
    pairs = weighted.groupby(["dataset", "kind"])["rows"].nunique()
    common = pairs[pairs == weighted["rows"].nunique()].index
    frame = frame[frame.set_index(["dataset", "kind"]).index.isin(common)]
    shares = gap_shares(frame, ["rows", "task"])
    rows = []
    for n in sorted(shares.index.get_level_values("rows").unique()):
        cells = [str(n)]
        for task in ("classification", "regression"):
            s = shares.loc[(n, task)] if (n, task) in shares.index else pd.Series(dtype=float)
            cells += [_f(s.get("gap", np.nan)), _pct(s.get("weighted", np.nan)), _pct(s.get("clean", np.nan))]
        rows.append(cells)
    kinds = ", ".join(sorted(set(k for _, k in common))) or "none"
    return [f"Cells: {len(common)} (dataset, noise kind) pairs run at every size (kinds: {kinds}).", "",
            *_table(["training rows", "cls: all -> oracle gain", "cls: weighted closes", "cls: clean closes",
                     "reg: all -> oracle gain", "reg: weighted closes", "reg: clean closes"], rows)]  # fmt: skip


def targets(frame: pd.DataFrame) -> list[str]:
    """The issue's targets, each marked met or not met, with the measured figure."""
    noisy, zero = frame[frame["rate"] > 0], frame[frame["rate"] == 0]
    shares = gap_shares(frame, ["task", "dataset"])
    q = quarantine_frame(frame)
    q10 = q[np.isclose(q["rate"], 0.1)].groupby("dataset")[["precision", "ratio", "est_error"]].mean()
    qn = q[q["rate"] > 0].groupby("dataset")["est_error"].mean()
    q0 = q[q["rate"] == 0]
    champ = noisy[noisy["method"] == "champion"]
    champ0 = zero[zero["method"] == "champion"]
    lab = frame[(frame["kind"] == "labels") & frame["method"].isin(["champion", "cleanlab"])]
    per = lab.pivot_table(index=CELL, columns="method", values="score", aggfunc="first").dropna()
    diff = (per["champion"] - per["cleanlab"]) if len(per) else pd.Series(dtype=float)

    def mark(ok: bool | None) -> str:
        return "no data" if ok is None else "**met**" if ok else "**not met**"

    def at_most(value: float, bound: float) -> bool | None:
        return None if not np.isfinite(value) else bool(value <= bound)

    share = shares["champion"].mean() if "champion" in shares else np.nan
    rows = [
        ["champion closes >= 80 % of the gap at 5-20 % (mean over datasets)",
         f"{_pct(share)} (median {_pct(shares['champion'].median())})" if "champion" in shares else "–", mark(at_most(0.8, share) if np.isfinite(share) else None)],
        ["champion never worse than all rows beyond its interval (5-20 %)", f"{int((champ['delta_hi'] < 0).sum())} of {len(champ)} cells worse",
         mark(bool((champ["delta_hi"] >= 0).all()) if len(champ) else None)],
        ["quarantine precision >= 0.6 at 10 % (mean over datasets)", _f(q10["precision"].mean()), mark(at_most(0.6, q10["precision"].mean()) if np.isfinite(q10["precision"].mean()) else None)],
        ["flagged count within ±50 % of the true count at 10 % (mean flagged / true, over datasets)",
         f"{_f(q10['ratio'].mean())}; {int(((q10['ratio'] - 1).abs() <= 0.5).sum())} of {len(q10)} datasets and "
         f"{_pct(q.loc[np.isclose(q['rate'], 0.1), 'within_50'].mean())} of cells within ±50 %",
         mark(at_most(abs(q10["ratio"].mean() - 1), 0.5)) + (" on the mean only" if at_most(abs(q10["ratio"].mean() - 1), 0.5) and not ((q10["ratio"] - 1).abs() <= 0.5).all() else "")],
        ["per-run precision estimate within 0.15 of the truth (mean abs. error over datasets, 5-20 %)",
         f"{_f(qn.mean())}; {_pct((q.loc[q['rate'] > 0, 'est_error'].dropna() <= 0.15).mean())} of runs within 0.15", mark(at_most(qn.mean(), 0.15))],
        ["0 %: champion never worse than all rows beyond its interval", f"{int((champ0['delta_hi'] < 0).sum())} of {len(champ0)} cells worse",
         mark(bool((champ0["delta_hi"] >= 0).all()) if len(champ0) else None)],
        ["0 %: flagged count within the estimate's own interval", f"{int(q0['flagged_in_interval'].sum())} of {len(q0)} cells",
         mark(bool(q0["flagged_in_interval"].all()) if len(q0) else None)],
        ["beat cleanlab's removal on the downstream metric, label-noise cells (classification; regression not run)",
         f"mean {_f(diff.mean(), 4)} accuracy, champion ahead in {int((diff > 0).sum())}, behind in {int((diff < 0).sum())} of {len(diff)}",
         mark(bool(diff.mean() > 0) if len(diff) else None)],
    ]  # fmt: skip
    return _table(["target", "measured", "verdict"], rows)


def render(frame: pd.DataFrame, *, command: str | None, machine: str, main_rows: int, source: str) -> str:
    main = frame[frame["rows"] == main_rows]
    n_cells = main.groupby(CELL).ngroups
    parts = [
        BEGIN,
        f"*Generated by `python -m bench.cleaning --report` on {dt.date.today().isoformat()} from "
        f"`{source}`: {n_cells} cells at {main_rows} training rows, {len(frame)} rows in all.*",
        f"Command: `{command}`." if command else "",
        f"Machine: {machine}.",
        "", "#### Targets", "", *targets(main),
        "", "#### Share of the all -> oracle gap closed, 5-20 % noise, per dataset", "", *gap_table(main),
        "", "#### Share of the gap closed by task, noise kind and rate (pooled over the datasets of a task)", "", *kind_rate_table(main),
        "", "#### Cells where a method is worse / better than all rows beyond its interval", "", *harm_table(main),
        "", "#### Quarantine (the default decision) by noise rate", "", *quarantine_table(main),
        "", "#### Quarantine at 10 % noise, per dataset", "", *dataset_quarantine_table(main, 0.1),
        "", "#### Label noise: test accuracy against cleanlab's removal (classification)", "", *cleanlab_table(main),
        "", "#### Value-weighted retraining by table size (Byrd & Lipton): 10 % noise, repetition 0", "", *size_table(frame),
        END,
    ]  # fmt: skip
    return "\n".join(parts)


def write_report(csv: Path, doc: Path, *, command: str | None, machine: str, main_rows: int = 500) -> None:
    frame = pd.read_csv(csv)
    frame["rate"] = frame["rate"].astype(float)
    block = render(frame, command=command, machine=machine, main_rows=main_rows, source=csv.name)
    text = doc.read_text() if doc.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
