"""Regression label noise: the paper's (OpenDataVal's ``mix_labels``) by default, the permutation as a variant."""

from __future__ import annotations

import numpy as np
import pytest

from lossval.noise import add_noise, mix_targets, permute_targets


def test_mixed_targets_always_change_and_take_another_distinct_value():
    rng = np.random.default_rng(0)
    y = rng.integers(3, 10, size=1000).astype(float)  # 7 distinct values, like white_wine's quality scores
    rows = np.sort(rng.choice(1000, 200, replace=False))
    out = mix_targets(y, rows, np.random.default_rng(1))
    assert np.all(out[rows] != y[rows])  # the paper's noise: no chosen row keeps its target
    assert set(out[rows]) <= set(y)
    untouched = np.setdiff1d(np.arange(1000), rows)
    np.testing.assert_array_equal(out[untouched], y[untouched])
    # uniform over the *other distinct values*: each of the 6 others is drawn about equally often
    shifts = (np.searchsorted(np.unique(y), out[rows]) - np.searchsorted(np.unique(y), y[rows])) % 7
    counts = np.bincount(shifts, minlength=7)
    assert counts[0] == 0 and counts[1:].min() > 15


def test_permuted_targets_may_keep_their_value_the_mixed_ones_never():
    y = np.repeat([0.0, 1.0], 500)
    rows = np.arange(0, 1000, 5)
    permuted = permute_targets(y, rows, np.random.default_rng(0))
    assert np.sum(permuted[rows] == y[rows]) > 50  # half the swaps land on the same value
    assert np.all(mix_targets(y, rows, np.random.default_rng(0))[rows] != y[rows])
    with pytest.raises(ValueError, match="2 distinct"):
        mix_targets(np.ones(10), np.arange(3), np.random.default_rng(0))


def test_add_noise_uses_the_papers_regression_noise_unless_told_otherwise():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(500, 3)), np.round(rng.normal(size=500), 1)
    _, y_mix, rows, _ = add_noise(X, y, kind="labels", rate=0.2, task="regression", rng=np.random.default_rng(4))
    assert np.all(y_mix[rows] != y[rows])
    _, y_perm, rows_p, _ = add_noise(X, y, kind="labels", rate=0.2, task="regression", rng=np.random.default_rng(4),
                                     regression_labels="permute")  # fmt: skip
    np.testing.assert_array_equal(rows, rows_p)
    np.testing.assert_array_equal(np.sort(y_perm[rows]), np.sort(y[rows]))  # a permutation of the chosen targets
    with pytest.raises(ValueError, match="regression_labels must be one of"):
        add_noise(X, y, kind="labels", rate=0.2, task="regression", rng=rng, regression_labels="swap")
