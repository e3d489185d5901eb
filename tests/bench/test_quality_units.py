"""The benchmark's building blocks: seeds, splits and noise, the grid's parts, the report's markers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import quality
from bench.methods import parse_options, resolve
from bench.report import BEGIN, END, balanced, paired, write_report


def _data(n=1500, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] > 0).astype(np.int64)


def test_seeds_are_stable_across_runs_and_machines():
    assert quality.seed_of("2dplanes", 0, "split") == quality.seed_of("2dplanes", 0, "split")
    assert quality.seed_of("pol", 0.1, 3) == 3618125447  # crc32: fixed forever, not Python's hash()


def test_settings_share_the_training_rows_and_differ_only_in_validation_noise():
    X, y = _data()
    paper = quality.make_cell(quality.Spec("paper", "toy", "mixed", 0.2, 1), X, y, "classification")
    trusted = quality.make_cell(quality.Spec("trusted", "toy", "mixed", 0.2, 1), X, y, "classification")
    np.testing.assert_array_equal(paper.X_train, trusted.X_train)
    np.testing.assert_array_equal(paper.y_train, trusted.y_train)
    np.testing.assert_array_equal(paper.noise, trusted.noise)
    assert paper.seed == trusted.seed
    assert (len(paper.y_train), len(paper.y_val), len(paper.y_test)) == (1000, 100, 400)
    # trusted validation rows are clean copies; the paper setting corrupts 20 % of them
    changed = (paper.y_val != trusted.y_val) | (np.abs(paper.X_val - trusted.X_val).max(axis=1) > 0)
    assert changed.sum() == 20 and not np.shares_memory(paper.X_val, trusted.X_val)
    assert trusted.noisy.sum() == 200 and set(trusted.noise[trusted.noisy]) == {"labels", "features"}


def test_a_new_repetition_draws_a_new_split():
    X, y = _data()
    a = quality.make_cell(quality.Spec("trusted", "toy", "labels", 0.1, 0), X, y, "classification")
    b = quality.make_cell(quality.Spec("trusted", "toy", "labels", 0.1, 1), X, y, "classification")
    assert not np.array_equal(a.X_train, b.X_train)


def test_parts_split_the_grid_without_overlap_and_keep_both_settings_of_a_cell_together():
    groups = quality.grid(["a", "b"], ["labels", "mixed"], [0.1, 0.2], 2, ["paper", "trusted"])
    assert len(groups) == 16 and all([s.setting for s in g] == ["paper", "trusted"] for g in groups)
    assert all(len({(s.dataset, s.kind, s.rate, s.rep) for s in g}) == 1 for g in groups)
    parts = [groups[i::3] for i in range(3)]
    assert sorted(map(repr, sum(parts, []))) == sorted(map(repr, groups))
    assert [g[0].rep for g in groups[:8]] == [0] * 8  # repetitions outermost


def test_cleanlab_regression_runs_only_on_label_cells_by_default():
    spec = quality.Spec("trusted", "kin8nm", "features", 0.1, 0)
    assert not quality.applies("cleanlab", spec, "regression", ["labels"])
    assert quality.applies("cleanlab", spec, "classification", ["labels"])
    assert quality.applies("lossval", spec, "regression", ["labels"])


def test_which_methods_one_run_serves_for_both_settings():
    assert quality.shared_across_settings("cleanlab", "mixed") and quality.shared_across_settings("loss_only", "features")
    assert quality.shared_across_settings("lossval", "labels")  # LossVal never reads the validation labels
    assert not quality.shared_across_settings("lossval", "features") and not quality.shared_across_settings("paper", "mixed")
    assert not quality.shared_across_settings("lv[ot_label_scale=2.0]", "labels")
    assert quality.shared_across_settings("lv[combine='loss_only']", "mixed")


def test_method_specs_parse_and_unknown_names_fail():
    assert parse_options("weight_lr=0.05, normalize_masses=True,weight_optimizer='l1'") == {
        "weight_lr": 0.05, "normalize_masses": True, "weight_optimizer": "l1"
    }
    resolve("lv[weight_lr=0.05]")
    with pytest.raises(ValueError, match="unknown method"):
        resolve("lassval")
    with pytest.raises(ValueError, match="not key=value"):
        parse_options("weight_lr")


def test_report_replaces_only_the_block_between_the_markers(tmp_path):
    rows = []
    for method, f1 in (("lossval", 0.6), ("cleanlab", 0.5)):
        for kind in ("labels", "mixed"):
            rows.append(dict(zip(quality.COLUMNS, [
                "trusted", "toy", "classification", kind, 0.1, 0, method, 30,
                f1, f1 - 0.1, 0.9, 0.5, 0.75 if kind == "mixed" and method == "lossval" else np.nan, 0.8, 100, 1.0,
            ])))  # fmt: skip
    csv = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nbefore\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    write_report(csv, doc, command="python -m bench.quality", machine="test machine")
    text = doc.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\nafter\n")
    assert "\nold\n" not in text and text.count(BEGIN) == 1
    assert "| **lossval** (default) | .600 · .900 · .500 | – | .600 · .900 · .500 |" in text  # F1 · AUROC · P@k
    assert "| cleanlab, its own flags | .400 · .900 · .500 | – | .400 · .900 · .500 |" in text
    assert "| toy | lossval | .600 · .900 · .500 | – | .600 · .900 · .500 | 1 x 1 / – / 1 x 1 |" in text  # per dataset
    assert "| lossval | .750 | – |" in text  # reason accuracy


def test_report_means_are_balanced_and_comparisons_paired_on_the_cells_both_ran():
    rows = []
    for rate, f1 in ((0.1, 0.2), (0.2, 0.8)):
        for method in ("lossval", "cleanlab_hgb"):
            for rep in range(3 if method == "lossval" else 1):
                if method == "cleanlab_hgb" and rate == 0.2:
                    continue  # the slow baseline has not run the 20 % cell yet
                rows.append(dict(setting="paper", dataset="toy", task="regression", kind="labels", rate=rate, rep=rep,
                                 method=method, f1=f1 + 0.01 * rep, f1_flags=f1 + 0.05, auroc=0.7, precision_at_k=0.3))  # fmt: skip
    frame = pd.DataFrame(rows)
    table = balanced(frame, ["task", "kind"])
    # each (dataset, rate) cell counts once, whatever its repetitions: (0.21 + 0.81) / 2
    assert table.loc[("lossval", "regression", "labels"), "f1"] == pytest.approx(0.51)
    assert table.loc[("lossval", "regression", "labels"), ["cells", "reps_max"]].tolist() == [2, 3]
    # the comparison uses only the 10 % cell, which both ran; the baseline at its better F1 (its flags)
    assert paired(frame, "lossval", "cleanlab_hgb", "f1_best")[("regression", "labels")] == pytest.approx((0.21, 0.25, 1))
