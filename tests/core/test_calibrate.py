"""Canaries, the tie-free order, the calibrated decision and the champion gate (pure, seeded, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossval.calibrate import calibrated_decision, mixture_share, tie_free_ranks
from lossval.canary import canary_auroc, make_canaries
from lossval.gate import champion_gate
from lossval.threshold import decide


def _synthetic(n: int, bad_share: float, k: int, *, separation: float, seed: int = 0):
    """Scores where bad rows and corrupted canaries come from N(0, 1) and clean ones from N(separation, 1)."""
    rng = np.random.default_rng(seed)
    n_bad = int(bad_share * n)
    train = np.concatenate([rng.normal(0, 1, n_bad), rng.normal(separation, 1, n - n_bad)])
    truth = np.arange(n) < n_bad
    canaries = np.concatenate([rng.normal(separation, 1, k), rng.normal(0, 1, k)])  # clean controls first
    corrupted = np.arange(2 * k) >= k
    return train, truth, canaries, corrupted


def test_tie_free_ranks_order_the_floor_by_the_parts():
    values = np.array([0.001, 0.5, 0.001, 0.001, 2.0])
    loss = np.array([1.0, 0.2, 3.0, 2.0, 0.1])
    ranks = tie_free_ranks(values, loss_part=loss, transport_part=np.zeros(5))
    assert sorted(ranks.tolist()) == [0, 1, 2, 3, 4]
    assert ranks.tolist() == [2, 3, 0, 1, 4]  # at the floor: the larger loss ranks lower


def test_quantile_with_ranks_flags_exactly_the_share_despite_ties():
    values = np.r_[np.full(40, 0.001), np.linspace(0.5, 2, 60)]
    plain = decide(values, strategy="quantile", quantile=0.05, max_fraction=1.0)
    assert plain.flagged.sum() == 40  # the old behaviour: the tie at the floor flags all 40
    ranks = tie_free_ranks(values, loss_part=np.arange(100.0))
    fixed = decide(values, strategy="quantile", quantile=0.05, max_fraction=1.0, ranks=ranks)
    assert fixed.flagged.sum() == 5
    assert set(np.flatnonzero(fixed.flagged)) == {35, 36, 37, 38, 39}  # the largest losses among the tied rows


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3])
def test_mixture_share_recovers_the_bad_share(share):
    train, _, canaries, corrupted = _synthetic(4000, share, 400, separation=3.0, seed=1)
    assert mixture_share(train, canaries[corrupted], canaries[~corrupted]) == pytest.approx(share, abs=0.03)


def test_calibrated_decision_meets_its_precision_and_estimates_the_count():
    train, truth, canaries, corrupted = _synthetic(3000, 0.1, 150, separation=3.0, seed=2)
    ranks = tie_free_ranks(np.concatenate([train, canaries]))
    decision, cal = calibrated_decision(ranks, n_train=3000, corrupted=corrupted, min_precision=0.8, max_fraction=0.25, min_auroc=0.7)
    flagged = decision.flagged
    precision = truth[flagged].mean()
    assert precision >= 0.75 and abs(cal.precision - precision) < 0.1
    assert cal.estimated_bad_low <= 300 <= cal.estimated_bad_high
    assert abs(cal.estimated_bad - 300) < 60
    assert cal.reliable and cal.canary_auroc > 0.95
    assert decision.rule.startswith("calibrated:p>=0.8")


def test_calibrated_decision_flags_nothing_when_no_row_is_bad():
    train, _, canaries, corrupted = _synthetic(3000, 0.0, 150, separation=3.0, seed=3)
    ranks = tie_free_ranks(np.concatenate([train, canaries]))
    decision, cal = calibrated_decision(ranks, n_train=3000, corrupted=corrupted, min_precision=0.6, max_fraction=0.25, min_auroc=0.7)
    assert decision.flagged.sum() <= 15
    assert cal.estimated_bad_low <= decision.flagged.sum() <= cal.estimated_bad_high


def test_unreliable_canaries_flag_nothing():
    train, _, canaries, corrupted = _synthetic(2000, 0.2, 100, separation=0.0, seed=4)  # canaries indistinguishable
    ranks = tie_free_ranks(np.concatenate([train, canaries]))
    decision, cal = calibrated_decision(ranks, n_train=2000, corrupted=corrupted, min_precision=0.6, max_fraction=0.25, min_auroc=0.7)
    assert not cal.reliable and cal.canary_auroc < 0.7
    assert not decision.flagged.any() and decision.rule.endswith(",unreliable")


def test_calibrated_decision_respects_the_cap():
    train, _, canaries, corrupted = _synthetic(1000, 0.4, 100, separation=4.0, seed=5)
    ranks = tie_free_ranks(np.concatenate([train, canaries]))
    decision, _ = calibrated_decision(ranks, n_train=1000, corrupted=corrupted, min_precision=0.6, max_fraction=0.25, min_auroc=0.7)
    assert decision.flagged.sum() == 250 and decision.capped


def test_calibrated_decision_rejects_bad_arguments():
    with pytest.raises(ValueError, match="min_precision"):
        calibrated_decision(np.arange(4), n_train=2, corrupted=np.array([True, False]), min_precision=0, max_fraction=0.2, min_auroc=0.7)
    with pytest.raises(ValueError, match="expected n_train"):
        calibrated_decision(np.arange(5), n_train=2, corrupted=np.array([True, False]), min_precision=0.5, max_fraction=0.2, min_auroc=0.7)


def test_canaries_classification():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(100, 3)), columns=list("abc"))
    y = pd.Series(np.where(rng.random(100) < 0.5, "UP", "DOWN"))
    c = make_canaries(X, y, task="classification", share=0.2, seed=0)
    assert len(c.X) == len(c.y) == len(c.kind) == 20 and c.keep.sum() == 80
    clean, labels, feats = (c.kind == "clean"), (c.kind == "labels"), (c.kind == "features")
    assert clean.sum() == 10 and labels.sum() == 5 and feats.sum() == 5
    src = c.source
    assert len(set(src)) == 20 and not c.keep[src].any()  # one canary per source; sources leave the reference
    assert (c.y[labels].to_numpy() != y.iloc[src[labels]].to_numpy()).all()  # every label canary changed class
    assert (c.y[feats].to_numpy() == y.iloc[src[feats]].to_numpy()).all()
    assert np.allclose(c.X[clean].to_numpy(), X.iloc[src[clean]].to_numpy())
    assert not np.allclose(c.X[feats].to_numpy(), X.iloc[src[feats]].to_numpy())
    again = make_canaries(X, y, task="classification", share=0.2, seed=0)
    pd.testing.assert_frame_equal(c.X, again.X)


def test_canaries_regression_change_the_target():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    y = pd.Series(rng.normal(size=60))
    c = make_canaries(X, y, task="regression", share=0.5, seed=1)
    assert len(c.X) == 30 and make_canaries(X, y, task="regression", share=0.01, seed=1).X.empty  # too few for a pair: none
    labels = c.kind == "labels"
    assert (np.abs(c.y[labels].to_numpy() - y.iloc[c.source[labels]].to_numpy()) >= 0.5 * y.std(ddof=0)).all()
    with pytest.raises(ValueError, match="share"):
        make_canaries(X, y, task="regression", share=1.0, seed=1)
    grades = pd.Series(rng.integers(3, 10, size=60))  # an integer target
    assert make_canaries(X, grades, task="regression", share=0.5, seed=1).y.dtype == np.float64


def test_canary_auroc():
    assert canary_auroc(corrupted=np.array([0, 1, 2]), clean=np.array([3, 4])) == 1.0
    assert canary_auroc(corrupted=np.array([3, 4]), clean=np.array([0, 1])) == 0.0
    assert canary_auroc(corrupted=np.array([1, 1]), clean=np.array([1, 1])) == 0.5


def test_gate_never_promotes_a_worse_variant():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    all_rows = np.where(rng.random(5000) < 0.8, y, 1 - y)  # 80 % right
    worse = np.where(rng.random(5000) < 0.1, 1 - all_rows, all_rows)  # changes 10 % of the answers: ~ -6 points
    gate = champion_gate(task="classification", y_true=y, predictions={"all": all_rows, "clean": worse, "weighted": worse})
    assert gate.promoted == "all" and gate.improvement["clean"][0] < 0
    assert "stays champion" in gate.reason
    for _ in range(5):  # whatever the seed, a variant worse on the test rows is never champion
        seed = int(rng.integers(1000))
        assert champion_gate(task="classification", y_true=y, predictions={"all": all_rows, "clean": worse}, seed=seed).promoted == "all"


def test_gate_promotes_a_clearly_better_variant_and_reports_resolution():
    rng = np.random.default_rng(1)
    y = rng.normal(size=4000)
    all_rows = y + rng.normal(0, 1.0, 4000)
    better = y + rng.normal(0, 0.5, 4000)
    gate = champion_gate(task="regression", y_true=y, predictions={"all": all_rows, "weighted": better, "clean": all_rows + 0.01})
    assert gate.promoted == "weighted" and gate.metric == "rmse"
    point, low, high = gate.improvement["weighted"]
    assert 0 < low <= point <= high
    assert {"gain_weighted", "gain_weighted_low", "gain_clean_high"} <= set(gate.as_metrics())
    small = champion_gate(task="classification", y_true=y[:100] > 0, predictions={"all": all_rows[:100] > 0, "clean": better[:100] > 0})
    assert not small.resolves_one_point and "cannot resolve a one-point difference" in small.reason


def test_gate_keeps_all_rows_within_the_uncertainty():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    all_rows = np.where(rng.random(200) < 0.8, y, 1 - y)
    nudged = all_rows.copy()
    wrong = np.flatnonzero(nudged != y)[:1]
    nudged[wrong] = y[wrong]  # one more right answer: +0.5 point
    gate = champion_gate(task="classification", y_true=y, predictions={"all": all_rows, "clean": nudged})
    assert gate.promoted == "all" and "within the uncertainty" in gate.reason
