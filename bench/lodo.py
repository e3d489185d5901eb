"""Leave-one-dataset-out check of the default's options, chosen on the eight reported datasets (issue 14, item 4).

Issue 3 chose LossVal's default (normalised masses, the ``normalized`` weight step
at lr 0.04, each row's step clipped at 3x the typical one, ...) on the
development grid (docs/benchmarks.md, 2.7): every candidate ran the same cells
of the eight datasets that are also reported (rates 10 % and 20 %,
repetitions 0 and 1, three noise kinds), and the best mean F1 won. Issue 14
asks for leave-one-dataset-out wherever a choice was made on the reported
eight. This module replays that choice from the committed runs
(``bench/results/dev_grid.csv``) without one dataset at a time:

1. the candidates: ``--candidates step`` (default) are the step sizes issue 3
   chose among (2.7, row 7: ``weight_lr`` 0.01, 0.02, 0.04 = the default,
   0.08, each row's step clipped at 3x); ``all`` is every LossVal
   configuration that ran all the common cells (``lossval``, ``paper_fast``,
   every ``lv[...]`` arm, also those run at an earlier commit); baselines
   (``random``, ``cleanlab``) never;
2. without dataset d, each candidate's score is its balanced F1 (per task and
   noise kind: repetitions averaged within a (dataset, kind, rate) cell, then
   the cells averaged) averaged over the columns of the criterion, on the
   other seven datasets: ``--criterion labels`` (default) the two label-noise
   columns, the criterion issue 3 chose the step size by ("it maximises the
   two label columns"); ``all`` the six task x kind columns. The best score
   is the choice made without d;
3. that choice is scored on d, beside the default.

If the choice without d is the default for every d, no single dataset made
the choice. Where it is not, the held-out F1 of the choice made without d,
averaged per column, is the leave-one-dataset-out estimate of what the
selection would have delivered on unseen data, and the table says how far it
is from the default's figure on the same cells.

    python -m bench.lodo                                          # issue 3's step-size choice, both settings
    python -m bench.lodo --candidates all --criterion all         # every configuration, by the six-column mean
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bench.common import REPO
from bench.report import fmt, balanced

GRID = REPO / "bench" / "results" / "dev_grid.csv"
DEFAULT = "lossval"
#: the cells every candidate of issue 3 ran (rates and repetitions of the development grid)
RATES, REPS = (0.1, 0.2), (0, 1)
KINDS = ("labels", "features", "mixed")
#: issue 3's step sizes (2.7, row 7); the default is weight_lr 0.04
STEP = (DEFAULT, "lv[weight_lr=0.01]", "lv[weight_lr=0.02]", "lv[weight_lr=0.08]")
CRITERIA = {"labels": ("labels",), "all": KINDS}


def is_lossval(method: str) -> bool:
    """A LossVal configuration (the default, the authors' variant, an ``lv[...]`` arm at any commit)."""
    spec = method.split(":", 1)[-1]
    return spec in (DEFAULT, "paper_fast") or spec.startswith("lv[")


def common_cells(grid: pd.DataFrame, setting: str, candidates: str = "step") -> pd.DataFrame:
    """The runs of ``setting`` on the common cells, of the candidates (``step`` or ``all``) that ran all of them."""
    runs = grid[(grid["setting"] == setting) & grid["rate"].isin(RATES) & grid["rep"].isin(REPS)]
    runs = runs[runs["method"].isin(STEP) if candidates == "step" else runs["method"].map(is_lossval)]
    full = runs.groupby("method").size()
    return runs[runs["method"].isin(full[full == full.max()].index)]


def scores(runs: pd.DataFrame, metric: str, kinds: tuple[str, ...] = KINDS) -> pd.Series:
    """Each method's ``metric``, balanced per (task, kind) column, then averaged over the columns of ``kinds``."""
    columns = balanced(runs, ["task", "kind"])[metric]
    return columns[columns.index.get_level_values("kind").isin(kinds)].groupby(level="method").mean()


def leave_one_out(runs: pd.DataFrame, metric: str = "f1", criterion: str = "labels") -> pd.DataFrame:
    """One row per held-out dataset: the choice made without it, and its and the default's ``metric`` on it, per kind."""
    rows = []
    for held_out, task in runs[["dataset", "task"]].drop_duplicates().itertuples(index=False):
        others = scores(runs[runs["dataset"] != held_out], metric, CRITERIA[criterion])
        chosen = str(others.idxmax())
        on_it = balanced(runs[runs["dataset"] == held_out], ["kind"])[metric]
        row = {"dataset": held_out, "task": task, "chosen": chosen, "margin": float(others[chosen] - others[DEFAULT])}
        for kind in KINDS:
            row[f"chosen_{kind}"] = float(on_it.get((chosen, kind), float("nan")))
            row[f"default_{kind}"] = float(on_it.get((DEFAULT, kind), float("nan")))
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, setting: str, metric: str, candidates: int, criterion: str) -> list[str]:
    """The per-dataset table and the per-column estimate against the default, as markdown lines."""
    name = metric.upper() if metric == "f1" else metric
    lines = [
        f"Setting `{setting}`, {name}, {candidates} candidates, chosen by the mean of the "
        f"{' and '.join(CRITERIA[criterion])} columns; rates {', '.join(f'{r:.0%}' for r in RATES)}, "
        f"repetitions {', '.join(map(str, REPS))}:",
        "",
        f"| held out | chosen without it | its score over the other seven, minus the default's | {name} on the held-out dataset, chosen (labels / features / mixed) | the default's |",
        "|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        chosen = "the default" if row.chosen == DEFAULT else f"`{row.chosen}`"
        ours, theirs = (_slashed(getattr(row, f"{who}_{k}") for k in KINDS) for who in ("chosen", "default"))
        lines.append(f"| {row.dataset} | {chosen} | {fmt(row.margin)} | {ours} | {theirs} |")
    lines += ["", "| task | leave-one-dataset-out estimate (labels / features / mixed) | the default, same cells | difference |", "|---|---|---|---|"]
    for task, part in table.groupby("task"):
        estimate, default = ([part[f"{who}_{k}"].mean() for k in KINDS] for who in ("chosen", "default"))
        lines.append(f"| {task} | {_slashed(estimate)} | {_slashed(default)} | {_slashed(a - b for a, b in zip(estimate, default))} |")
    return lines


def _slashed(values) -> str:
    """Labels / features / mixed, formatted as the report formats them."""
    return " / ".join(map(fmt, values))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, default=GRID, help=f"the development grid's runs (default {GRID.relative_to(REPO)})")
    parser.add_argument("--settings", nargs="+", default=["trusted", "paper"])
    parser.add_argument("--metric", default="f1", choices=["f1", "auroc", "precision_at_k"])
    parser.add_argument("--candidates", default="step", choices=["step", "all"])
    parser.add_argument("--criterion", default="labels", choices=sorted(CRITERIA))
    args = parser.parse_args(argv)
    grid = pd.read_csv(args.grid)
    for setting in args.settings:
        runs = common_cells(grid, setting, args.candidates)
        if DEFAULT not in set(runs["method"]):
            raise SystemExit(f"the default ({DEFAULT}) did not run every common cell of setting {setting!r} in {args.grid}")
        table = leave_one_out(runs, args.metric, args.criterion)
        print("\n".join(markdown(table, setting, args.metric, runs["method"].nunique(), args.criterion)), end="\n\n")


if __name__ == "__main__":
    main()
