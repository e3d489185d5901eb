"""Scoring a dumped fit (bench.parts_rows -> bench.rows_score) gives the row bench.quality writes for the same cell."""

from __future__ import annotations

import numpy as np
import pytest

from bench import quality
from bench.parts_rows import dump_cell
from bench.rows_score import parse_name, score_dump


def _cell(kind: str):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1300, 4))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    return quality.make_cell(quality.Spec("paper", "toy", kind, 0.1, 0), X, y, "classification")


@pytest.mark.parametrize("kind", ["labels", "mixed"])
def test_a_scored_dump_equals_the_benchmarks_own_run(tmp_path, kind):
    cell = _cell(kind)
    path = tmp_path / f"paper_toy_{kind}_0.1_0.npz"
    dump_cell(cell, path, epochs=2)
    assert parse_name(path) == ("paper", "toy", kind, 0.1, 0)
    rows = score_dump(path, "lossval", epochs=2)
    assert [r["setting"] for r in rows] == (["paper", "trusted"] if kind == "labels" else ["paper"])
    expected = quality.evaluate("lossval", cell, 2)
    for key in ("f1", "auroc", "precision_at_k", "test_score", "n_noisy"):
        assert rows[0][key] == pytest.approx(expected[key], abs=1e-12), key
    if kind == "mixed":
        assert rows[0]["reason_accuracy"] == pytest.approx(expected["reason_accuracy"])
    plain = score_dump(path, "lv[tie_break=False]", epochs=2)[0]
    assert plain["f1"] == pytest.approx(quality.evaluate("lv[tie_break=False]", cell, 2)["f1"])
