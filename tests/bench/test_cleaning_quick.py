"""The cleaning benchmark (issue 12) end to end in its --quick mode on the bundled data, and its scoring units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import cleaning
from bench import cleaning_methods as cm
from bench.cleaning_report import BEGIN, END, gap_shares
from bench.common import BUNDLED
from bench.methods import Cell

pytest.importorskip("cleanlab")


def test_quick_mode_writes_a_resumable_csv_and_the_tables(tmp_path, capsys):
    out = tmp_path / "cleaning.csv"
    argv = ["--quick", "--datasets", str(BUNDLED), "--out", str(out)]
    cleaning.main(argv)
    runs = pd.read_csv(out)
    assert list(runs.columns) == cleaning.COLUMNS
    methods = runs.groupby("rate")["method"].apply(set)
    # rate 0 (kind "none"): nothing to remove for the oracle, and cleanlab runs on label noise only
    assert methods[0.0] == {"all", "clean", "weighted", "champion"}
    assert methods[0.1] == set(cleaning.METHODS)
    assert (runs["n_train"] == 300).all() and (runs["n_test"] == 1000).all()  # canaries never counted as training rows
    assert (runs.loc[runs["rate"] == 0.1, "n_noisy"] == 30).all()
    assert (runs.loc[runs["method"] == "all", "delta"] == 0).all()
    assert (runs["delta_lo"] <= runs["delta"] + 1e-12).all() and (runs["delta"] <= runs["delta_hi"] + 1e-12).all()
    assert runs["score"].between(0, 1).all()
    oracle = runs[runs["method"] == "oracle"].iloc[0]
    assert oracle["flagged"] == oracle["true_flagged"] == 30
    flagged = runs.loc[runs["method"].isin(["clean", "cleanlab"]), "flagged"]
    assert flagged.between(0, 300).all()
    clean = runs[runs["method"] == "clean"]
    assert clean["rule"].str.startswith("calibrated").all()  # the pipeline's default decision
    assert (clean["est_lo"] <= clean["est_count"] + 1e-9).all() and (clean["est_count"] <= clean["est_hi"] + 1e-9).all()
    assert clean["canary_auroc"].between(0, 1).all()
    for picks in runs.loc[runs["method"] == "champion", "picked"]:
        assert set(picks.split("+")) <= set(cm.GATE_VARIANTS)
    doc = (tmp_path / "cleaning.md").read_text()
    assert doc.count(BEGIN) == 1 and doc.count(END) == 1
    assert "#### Targets" in doc and "champion closes >= 80 % of the gap" in doc
    assert "| electricity | cla |" in doc

    capsys.readouterr()
    cleaning.main(argv)  # a rerun finds every row done
    assert "done: 0 new rows" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == len(runs)


def _cell(y_test: np.ndarray) -> Cell:
    empty = np.zeros((0, 1))
    return Cell(setting="trusted", dataset="d", task="classification", kind="labels", rate=0.1, rep=0, seed=3,
                X_train=empty, y_train=np.zeros(0), X_val=empty, y_val=np.zeros(0), X_test=np.zeros((len(y_test), 1)),
                y_test=y_test, noise=np.zeros(0, dtype=object))  # fmt: skip


def test_cross_fitted_champion_never_takes_a_variant_worse_than_all_rows():
    y = np.random.default_rng(0).integers(0, 2, 2000)
    all_rows = np.where(np.arange(2000) % 5 == 0, 1 - y, y)  # 80 % right
    worse = np.where(np.arange(2000) % 3 == 0, 1 - y, y)  # 67 % right
    champion, picked = cm.cross_fitted_champion(_cell(y), {"all": all_rows, "clean": worse, "weighted": worse}, seed=1)
    assert picked == "all+all" and (champion == all_rows).all()
    champion, picked = cm.cross_fitted_champion(_cell(y), {"all": all_rows, "clean": worse, "weighted": y}, seed=1)
    assert picked == "weighted+weighted" and (champion == y).all()


def test_gap_share_is_summed_gain_over_summed_oracle_gain():
    rows = []
    for rep, (oracle, clean) in enumerate([(0.04, 0.02), (0.02, 0.02)]):
        for method, delta in (("oracle", oracle), ("clean", clean)):
            rows.append(dict(task="classification", dataset="d", kind="labels", rate=0.1, rep=rep, rows=500, method=method, delta=delta))
    shares = gap_shares(pd.DataFrame(rows), ["dataset"])
    assert shares.loc["d", "clean"] == pytest.approx(0.04 / 0.06)
    assert shares.loc["d", "gap"] == pytest.approx(0.03)
