"""The quality benchmark end to end, in its --quick mode, on the bundled data (as on a fresh clone)."""

from __future__ import annotations

import pandas as pd
import pytest

from bench import quality
from bench.common import BUNDLED
from bench.methods import DEFAULT_METHODS
from bench.report import BEGIN, END

pytest.importorskip("cleanlab")


def test_quick_mode_writes_a_resumable_csv_and_the_tables(tmp_path, capsys):
    out = tmp_path / "quality.csv"
    argv = ["--quick", "--datasets", str(BUNDLED), "--out", str(out), "--epochs", "2"]
    quality.main(argv)
    runs = pd.read_csv(out)
    assert list(runs.columns) == quality.COLUMNS
    # one dataset, one rate, one repetition: 2 settings x 3 noise kinds, every method
    assert len(runs) == 2 * 3 * len(DEFAULT_METHODS)
    assert set(runs["method"]) == set(DEFAULT_METHODS)
    assert set(runs["setting"]) == {"paper", "trusted"} and set(runs["kind"]) == {"labels", "features", "mixed"}
    assert (runs["dataset"] == "electricity").all() and (runs["rate"] == 0.1).all()
    assert (runs["n_noisy"] == 100).all()
    for metric in ("f1", "f1_flags", "auroc", "precision_at_k"):
        assert runs[metric].between(0, 1).all(), metric
    lossval_mixed = runs[(runs["method"] == "lossval") & (runs["kind"] == "mixed")]
    assert lossval_mixed["reason_accuracy"].between(0, 1).all()
    assert runs.loc[runs["kind"] != "mixed", "reason_accuracy"].isna().all()
    assert runs.loc[runs["method"] == "lossval", "test_score"].between(0, 1).all()
    # a method that cannot tell the settings apart ran once per cell and serves both settings
    by_setting = runs.set_index(["method", "kind", "setting"])["auroc"].unstack("setting")
    shared = [quality.shared_across_settings(m, k) for m, k in by_setting.index]
    assert (by_setting["paper"] == by_setting["trusted"])[shared].all()
    assert sum(shared) == 4 * 3 + 4  # cleanlab (both models), random, loss_only: every kind; the other 4: labels

    doc = (tmp_path / "quality.md").read_text()
    assert doc.count(BEGIN) == 1 and doc.count(END) == 1
    assert '### Setting "paper"' in doc and '### Setting "trusted"' in doc
    assert "| *LossVal (paper, 30 epochs), published, 6 datasets* (F1 only) | .544 |" in doc
    assert "| cleanlab, its own flags |" in doc and "| cleanlab_hgb, its own flags |" in doc
    assert "| electricity | lossval | " in doc  # the per-dataset table

    # a rerun finds every run done and adds nothing
    capsys.readouterr()
    quality.main(argv)
    assert "done: 0 new runs" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == len(runs)
