"""The default value: the learned weights with their ties broken by the two parts (lossval.scoring)."""

from __future__ import annotations

import numpy as np
import pytest

from lossval import LossVal
from lossval.calibrate import tie_free_ranks
from lossval.metrics import precision_at_noise_count
from lossval.scoring import part_push, tie_free_values


def _floor_problem(seed: int = 0):
    """60 rows at the floor 1e-3 (20 noisy rows with large losses among them), 140 above it."""
    rng = np.random.default_rng(seed)
    values = np.r_[np.full(60, 1e-3), rng.uniform(0.2, 2.0, 140)]
    noisy = np.zeros(200, dtype=bool)
    noisy[rng.choice(60, 20, replace=False)] = True
    loss = np.where(noisy, rng.uniform(3, 6, 200), rng.uniform(0, 2, 200))
    transport = rng.normal(0, 1, 200)
    return values, noisy, loss, transport


def test_values_are_tie_free_and_keep_the_order_of_distinct_values():
    values, _, loss, transport = _floor_problem()
    out = tie_free_values(values, loss_part=loss, transport_part=transport)
    assert len(np.unique(out)) == len(out)
    assert np.array_equal(out[60:], values[60:])  # unique values unchanged
    assert out[:60].max() <= 1e-3 and out.min() >= 5e-4  # the floor spreads into [c - c/2, c], below every other value
    assert (out > 0).all()


def test_the_floor_is_ordered_by_the_push_as_tie_free_ranks_orders_it():
    values, noisy, loss, transport = _floor_problem()
    out = tie_free_values(values, loss_part=loss, transport_part=transport)
    ranks = tie_free_ranks(values, loss_part=loss, transport_part=transport)
    assert np.array_equal(np.argsort(np.argsort(out)), ranks)
    push = part_push(loss_part=loss, transport_part=transport)
    floor = np.arange(60)
    assert np.array_equal(np.argsort(out[floor]), np.argsort(-push[floor], kind="stable"))


def test_breaking_the_floor_by_the_parts_finds_the_noisy_rows_among_the_tied_ones():
    values, noisy, loss, _ = _floor_problem()
    truth_k = noisy.sum()  # 20 noisy rows, all at the floor, with the largest losses
    assert precision_at_noise_count(values, noisy) < 0.6  # the tie alone: the first 20 rows by position
    out = tie_free_values(values, loss_part=loss)
    assert precision_at_noise_count(out, noisy) == 1.0
    assert truth_k == 20


def test_ties_above_the_floor_stay_above_the_next_lower_value():
    values = np.array([0.2, 0.5, 0.5, 0.5, 1.0, 1.0])
    out = tie_free_values(values, loss_part=np.array([0.0, 1.0, 3.0, 2.0, 0.0, 5.0]))
    assert out[0] == 0.2 and 0.35 <= out[1:4].min() and out[1:4].max() == 0.5
    assert out[2] < out[3] < out[1]  # larger loss -> lower value
    assert out[5] < out[4] == 1.0 and out[5] > 0.5


def test_no_parts_breaks_ties_by_position_and_bad_input_is_named():
    out = tie_free_values(np.array([1.0, 1.0, 1.0]))
    assert out[0] < out[1] < out[2] == 1.0
    with pytest.raises(ValueError, match="finite"):
        tie_free_values(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="shape"):
        tie_free_values(np.array([1.0, 2.0]), loss_part=np.array([1.0, 2.0, 3.0]))


def test_lossval_values_are_the_weights_with_their_ties_broken(tiny_classification):
    X, y, Xv, yv = tiny_classification
    lv = LossVal(epochs=3, random_state=0, progress=False, weight_lr=0.5).fit(X, y, Xv, yv)
    parts = {k: lv.parts_[k].to_numpy() for k in ("loss_part", "transport_part")}
    assert lv.values_.is_unique and lv.values_.index.equals(lv.weights_.index)
    assert np.array_equal(lv.values_.to_numpy(), tie_free_values(lv.weights_.to_numpy(), **parts))
    plain = LossVal(epochs=3, random_state=0, progress=False, weight_lr=0.5, tie_break=False).fit(X, y, Xv, yv)
    assert plain.values_.equals(plain.weights_.rename("value")) and plain.weights_.equals(lv.weights_)
    assert not LossVal.paper().tie_break
