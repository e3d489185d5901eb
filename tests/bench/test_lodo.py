"""bench.lodo: the default's choice replayed without one reported dataset at a time."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from bench import lodo

DATASETS = {"c1": "classification", "c2": "classification", "r1": "regression", "r2": "regression"}


def _grid(f1, setting="trusted"):
    """Runs of every common cell; ``f1(method, dataset, kind)`` gives the F1 (the same for each rate and rep)."""
    rows = []
    methods = ("lossval", "lv[weight_lr=0.08]", "lv[weight_lr=0.01]", "random", "lv[average_last=15]")
    for method, (dataset, task), kind, rate, rep in itertools.product(
        methods, DATASETS.items(), lodo.KINDS, lodo.RATES, lodo.REPS
    ):
        rows.append(dict(setting=setting, dataset=dataset, task=task, kind=kind, rate=rate, rep=rep, method=method,
                         f1=f1(method, dataset, kind), f1_flags=float("nan"), auroc=0.5, precision_at_k=0.5))  # fmt: skip
    rows.append(dict(rows[-1], rate=0.05))  # a cell outside the common ones: never read
    rows[-1]["f1"] = 99.0
    return pd.DataFrame(rows)


def _f1(method, dataset, kind):
    # the default leads on label noise only thanks to c1; 0.08 leads elsewhere by a little; 0.01 wins features
    base = {"lossval": 0.50, "lv[weight_lr=0.08]": 0.51, "lv[weight_lr=0.01]": 0.40, "random": 0.9, "lv[average_last=15]": 0.95}
    value = base[method]
    if kind == "labels" and dataset == "c1" and method == "lossval":
        value += 0.2
    if kind == "features" and method == "lv[weight_lr=0.01]":
        value += 0.5
    return value


def test_the_choice_without_each_dataset_by_issue_3s_label_criterion():
    runs = lodo.common_cells(_grid(_f1), "trusted")
    assert set(runs["method"]) == set(lodo.STEP) - {"lv[weight_lr=0.02]"}  # no baseline, no other arm
    assert set(runs["rate"]) == set(lodo.RATES)
    table = lodo.leave_one_out(runs).set_index("dataset")
    # with c1 in, the default wins the label columns ((.70 + .50) / 2 + ... over c1, c2); without it, 0.08 does
    assert table.loc["c1", "chosen"] == "lv[weight_lr=0.08]"
    assert {table.loc[d, "chosen"] for d in ("c2", "r1", "r2")} == {"lossval"}
    assert table.loc["c1", "margin"] == pytest.approx(0.01)
    assert table.loc["c1", "chosen_labels"] == pytest.approx(0.51) and table.loc["c1", "default_labels"] == pytest.approx(0.70)
    text = "\n".join(lodo.markdown(table.reset_index(), "trusted", "f1", 3, "labels"))
    assert "| c1 | `lv[weight_lr=0.08]` | .010 | .510 / .510 / .510 | .700 / .500 / .500 |" in text
    assert "| c2 | the default | .000 |" in text
    # the estimate per task: c1's held-out .51 and c2's .50, against the default's .70 and .50
    assert "| classification | .505 / .505 / .505 | .600 / .500 / .500 | -.095 / .005 / .005 |" in text


def test_the_six_column_criterion_and_every_configuration():
    runs = lodo.common_cells(_grid(_f1), "trusted", candidates="all")
    assert "lv[average_last=15]" in set(runs["method"]) and "random" not in set(runs["method"])
    table = lodo.leave_one_out(runs[runs["method"] != "lv[average_last=15]"], criterion="all")
    assert set(table["chosen"]) == {"lv[weight_lr=0.01]"}  # +.5 on both feature columns outweighs the rest


def test_cli_refuses_a_grid_without_the_default(tmp_path):
    path = tmp_path / "grid.csv"
    _grid(_f1, setting="paper").to_csv(path, index=False)
    with pytest.raises(SystemExit, match="did not run every common cell"):
        lodo.main(["--grid", str(path), "--settings", "trusted"])
