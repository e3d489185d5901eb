"""bench.auto_settings runs end to end, tiny, on the bundled data: both arms, resumable, overrides labelled."""

from __future__ import annotations

import csv
import json

import lossval.large_data as large_data
from bench import auto_settings
from bench.common import BUNDLED


def test_both_arms_record_their_settings_and_a_rerun_skips_done_fits(tmp_path, monkeypatch):
    monkeypatch.setattr(large_data, "LARGE_FROM", 300)  # 400 rows count as large: "auto" differs from the paper's
    monkeypatch.setattr(auto_settings, "PAPER", {**auto_settings.PAPER, "epochs": 1})  # keep the paper's arm quick
    out = tmp_path / "auto.csv"
    argv = ["--datasets", str(BUNDLED), "--names", "white_wine", "--sizes", "400", "--val", "50", "--out", str(out)]
    auto_settings.main([*argv, "--lossval", "epochs=1"])
    auto_settings.main([*argv, "--lossval", "epochs=1"])  # resumable: nothing new
    rows = list(csv.DictReader(out.open()))
    assert [r["arm"] for r in rows] == ["auto[epochs=1]", "paper"]
    auto, paper = (json.loads(r["settings"]) for r in rows)
    assert auto["batch_size"] == 32 and auto["ot_batch_size"] == 32 and auto["scaling"] == large_data.LARGE_SCALING
    assert paper["reference_rows"] is None and paper["scaling"] == 0.5 and paper["ot_batch_size"] is None
    assert all(0 <= float(r["auroc"]) <= 1 for r in rows)
