"""Threshold rules, detection metrics and noise injection (pure functions, exact references)."""

from __future__ import annotations

import numpy as np
import pytest

from lossval.metrics import detection_auroc, detection_f1, f1_of_flags, precision_at_noise_count
from lossval.noise import add_noise
from lossval.threshold import decide, two_means_mask, two_means_threshold


def _brute_force_two_means(values):
    v = np.sort(values)
    best = min(range(1, len(v)), key=lambda k: ((v[:k] - v[:k].mean()) ** 2).sum() + ((v[k:] - v[k:].mean()) ** 2).sum())
    return v[best - 1]


@pytest.mark.parametrize("seed", range(5))
def test_two_means_is_exact(seed):
    values = np.random.default_rng(seed).normal(size=57) ** 3
    assert two_means_threshold(values) == pytest.approx(_brute_force_two_means(values))


def test_two_means_separates_two_groups_and_handles_constants():
    values = np.array([0.1, 0.12, 0.11, 1.0, 1.02, 0.98, 1.01])
    assert two_means_mask(values).tolist() == [True, True, True, False, False, False, False]
    assert not two_means_mask(np.ones(5)).any()


def test_decide_strategies_and_cap():
    values = np.arange(100, dtype=float)
    assert decide(values, strategy="quantile", quantile=0.1, max_fraction=1).flagged.sum() == 10
    assert decide(values, strategy="value", value=4.5, max_fraction=1).flagged.sum() == 5
    capped = decide(values, strategy="value", value=1e9, max_fraction=0.2)
    assert capped.capped and capped.flagged.sum() == 20 and capped.flagged[:20].all()
    assert "cap=0.2" in capped.rule
    with pytest.raises(ValueError, match="strategy must be one of"):
        decide(values, strategy="median")


def test_metrics_on_known_cases():
    noisy = np.array([True, True, False, False, False])
    perfect = np.array([0.0, 0.1, 1.0, 1.1, 1.2])
    assert detection_f1(perfect, noisy) == 1.0
    assert detection_auroc(perfect, noisy) == 1.0
    assert detection_auroc(-perfect, noisy) == 0.0
    assert precision_at_noise_count(perfect, noisy) == 1.0
    assert f1_of_flags(np.array([True, False, False, False, True]), noisy) == pytest.approx(0.5)
    assert detection_auroc(np.ones(5), noisy) == 0.5


@pytest.mark.parametrize("kind", ["labels", "features", "mixed"])
def test_noise_touches_exactly_the_reported_rows(kind):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 3, 200)
    Xn, yn, rows, kinds = add_noise(X, y, kind=kind, rate=0.1, task="classification", rng=rng)
    changed = (Xn != X).any(axis=1) | (yn != y)
    assert len(rows) == 20 and set(np.flatnonzero(changed)) == set(rows)
    assert set(kinds) == ({"labels", "features"} if kind == "mixed" else {kind})
    assert (yn[rows][kinds == "labels"] != y[rows][kinds == "labels"]).all()
