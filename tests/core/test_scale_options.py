"""The options for large data: reference parts, OT groups, chunking; each exact in its limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import lossval.ot as ot_module
from lossval import LossVal
from lossval.epoch_transport import epoch_transport
from lossval.ot import SinkhornToReference, diameter_bound

FAST = dict(epochs=3, random_state=0, progress=False, device="cpu")


@pytest.fixture()
def clouds() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(48, 4, generator=g), torch.randn(50, 4, generator=g)


@pytest.fixture()
def table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(460, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    return X[:300], y[:300], X[300:], y[300:]


def _value_and_grad(ot: SinkhornToReference, w: torch.Tensor, x: torch.Tensor, parts=None):
    w = w.clone().requires_grad_()
    value = ot(w, x, parts)
    (grad,) = torch.autograd.grad(value.sum(), w)
    return value.detach(), grad


def test_reference_rows_at_least_m_is_the_whole_reference_exactly(clouds):
    x, ref = clouds
    w = torch.rand(4, 12, generator=torch.Generator().manual_seed(1)) + 0.5
    d = diameter_bound(x, ref)
    whole = _value_and_grad(SinkhornToReference(ref, diameter=d), w, x.view(4, 12, 4))
    capped = SinkhornToReference(ref, diameter=d, reference_rows=50)
    assert capped.n_parts == 1
    same = _value_and_grad(capped, w, x.view(4, 12, 4))
    assert torch.equal(whole[0], same[0]) and torch.equal(whole[1], same[1])


def test_each_batch_meets_exactly_its_part(clouds):
    x, ref = clouds
    d = diameter_bound(x, ref)
    ot = SinkhornToReference(ref, diameter=d, reference_rows=20)
    assert (ot.n_parts, ot.part_rows) == (3, 17)  # 50 rows in 3 parts of 17, the last wraps around by one
    ot.shuffle_parts(torch.Generator().manual_seed(5))
    assert set(ot.part_index.flatten().tolist()) == set(range(50))
    w = torch.rand(4, 12, generator=torch.Generator().manual_seed(2)) + 0.5
    parts = torch.tensor([2, 0, 1, 2])
    value, grad = _value_and_grad(ot, w, x.view(4, 12, 4), parts)
    for b in range(4):  # the same as a transport built on that part's rows alone
        alone = SinkhornToReference(ref[ot.part_index[parts[b]]], diameter=d)
        v, g = _value_and_grad(alone, w[b], x.view(4, 12, 4)[b])
        assert torch.allclose(value[b], v, atol=1e-6) and torch.allclose(grad[b], g, atol=1e-6)


def test_parts_are_padded_to_whole_cache_lines_with_zero_mass_copies(clouds):
    ref = torch.randn(1000, 3)
    ot = SinkhornToReference(ref, reference_rows=128)
    assert (ot.n_parts, ot.part_size, ot.part_rows) == (8, 125, 128)  # 8 parts of 125, padded to 128
    ot.shuffle_parts(torch.Generator().manual_seed(3))
    assert set(ot.part_index[:, :125].flatten().tolist()) == set(range(1000))  # each row once in the massed columns
    assert torch.equal(ot.part_index[:, 125:], ot.part_index[:, :3])  # the padding: copies of each part's first rows
    assert torch.equal(ot.reference_mass, torch.cat([torch.full((125,), 1 / 125), torch.zeros(3)]))
    assert SinkhornToReference(ref[:130], reference_rows=128).part_rows == 65  # 2 parts of 65: 80 would add 23 %
    assert SinkhornToReference(ref[:100], reference_rows=128).part_rows == 100  # one part: the whole reference, exactly
    # the padding changes nothing but rounding: the same problem as parts of 125 without it
    x, small = clouds
    d = diameter_bound(x, small)
    w = torch.rand(4, 12, generator=torch.Generator().manual_seed(2)) + 0.5
    assert SinkhornToReference(small, diameter=d, reference_rows=30).part_rows == 25  # 2 parts of 25: 32 would add 28 %
    big = torch.randn(250, 4, generator=torch.Generator().manual_seed(4))
    d = diameter_bound(x, big)
    padded = SinkhornToReference(big, diameter=d, reference_rows=126)  # 2 parts of 125, padded to 128
    assert (padded.part_size, padded.part_rows) == (125, 128)
    parts = torch.tensor([1, 0, 1, 0])
    value, grad = _value_and_grad(padded, w, x.view(4, 12, 4), parts)
    for b in range(4):  # the same as a transport built on that part's 125 massed rows alone
        alone = SinkhornToReference(big[padded.part_index[parts[b], :125]], diameter=d)
        v, g = _value_and_grad(alone, w[b], x.view(4, 12, 4)[b])
        assert torch.allclose(value[b], v, atol=1e-5) and torch.allclose(grad[b], g, atol=1e-6)


def test_part_split_is_seeded():
    ref = torch.randn(30, 2)
    a, b = SinkhornToReference(ref, reference_rows=7), SinkhornToReference(ref, reference_rows=7)
    a.shuffle_parts(torch.Generator().manual_seed(9))
    b.shuffle_parts(torch.Generator().manual_seed(9))
    assert torch.equal(a.part_index, b.part_index) and torch.equal(a.part_self_terms, b.part_self_terms)


def test_reference_rows_at_least_m_is_the_default_exactly(table):
    X, y, Xv, yv = table  # 160 validation rows
    default = LossVal(**FAST).fit(X, y, Xv, yv).values_
    capped = LossVal(**FAST, reference_rows=160).fit(X, y, Xv, yv).values_
    pd.testing.assert_series_equal(default, capped)


def test_reference_parts_are_deterministic_and_close_to_the_whole(table):
    X, y, Xv, yv = table
    a = LossVal(**FAST, reference_rows=40).fit(X, y, Xv, yv).values_
    b = LossVal(**FAST, reference_rows=40).fit(X, y, Xv, yv).values_
    pd.testing.assert_series_equal(a, b)
    whole = LossVal(**FAST, reference_rows=None).fit(X, y, Xv, yv).values_
    assert np.corrcoef(a, whole)[0, 1] > 0.5  # a different estimate of the same term, not the same numbers


def test_ot_batch_size_equal_to_batch_size_is_the_default_exactly(table):
    X, y, Xv, yv = table
    a = LossVal(**FAST, batch_size=32).fit(X, y, Xv, yv).values_
    b = LossVal(**FAST, batch_size=32, ot_batch_size=32).fit(X, y, Xv, yv).values_
    pd.testing.assert_series_equal(a, b)


def test_groups_are_solved_exactly_as_separate_problems(table):
    X, y, Xv, yv = table
    lv = LossVal(**FAST, batch_size=64, ot_batch_size=16)
    lv.fit(X, y, Xv, yv)  # fits the scalers; then solve one epoch's groups directly
    Z = torch.as_tensor(lv.feature_scaler_.transform(X), dtype=torch.float32)[:70]
    ref = torch.as_tensor(lv.feature_scaler_.transform(Xv), dtype=torch.float32)
    transport = SinkhornToReference(ref, diameter=diameter_bound(torch.cat([Z, ref]), ref))
    w = torch.rand(70, generator=torch.Generator().manual_seed(4)) + 0.5
    values, grads = epoch_transport(transport, w, Z, 16)  # groups of 16, 16, 16, 16 and 6 rows
    assert values.shape == (5,) and grads.shape == (70,)
    for g, lo in enumerate(range(0, 70, 16)):
        v, d = _value_and_grad(transport, w[lo : lo + 16], Z[lo : lo + 16])
        assert torch.allclose(values[g], v, atol=1e-6) and torch.allclose(grads[lo : lo + 16], d, atol=1e-6)


def test_large_batches_with_small_ot_groups_train(table):
    X, y, Xv, yv = table
    lv = LossVal(**FAST, batch_size=128, ot_batch_size=32, reference_rows=40).fit(X, y, Xv, yv)
    assert np.isfinite(lv.values_).all() and lv.values_.std() > 0


def test_no_cost_matrix_grows_with_rows_or_validation_size(table, monkeypatch):
    X, y, Xv, yv = table
    sizes: list[int] = []
    original = ot_module.half_squared_distances

    def spy(x, y_):
        out = original(x, y_)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(ot_module, "half_squared_distances", spy)
    monkeypatch.setattr(ot_module, "MAX_CHUNK_ENTRIES", 4096)
    LossVal(**{**FAST, "epochs": 1}, batch_size=16, reference_rows=20).fit(np.tile(X, (4, 1)), np.tile(y, 4), Xv, yv)
    # one group's problem (16 x 20 plus 16 x 16) or one chunk, never N x M (1200 x 160) nor M x M
    assert max(sizes) <= 4096


def test_option_checks():
    with pytest.raises(ValueError, match="reference_rows"):
        LossVal(reference_rows=0)
    with pytest.raises(ValueError, match="ot_batch_size"):
        LossVal(ot_batch_size=0)
    with pytest.raises(ValueError, match="ot_batch_size=16 needs weight_updates='per_epoch'"):
        LossVal(weight_updates="per_batch", ot_batch_size=16)
    with pytest.raises(ValueError, match="reference_rows"):
        SinkhornToReference(torch.randn(5, 2), reference_rows=0)


def test_large_data_settings_keep_the_paper_below_the_threshold_and_scale_above():
    from lossval import MLP, large_data_settings
    from lossval.large_data import LARGE_FROM, MAX_BATCH

    small = large_data_settings(1000)
    default = LossVal()._resolve(1000)  # "auto" on a small table: the paper's settings
    assert small == {"batch_size": default["batch_size"], "epochs": default["epochs"]} == {"batch_size": 32, "epochs": 30}
    big = large_data_settings(1_000_000)
    assert big["batch_size"] == MAX_BATCH and big["ot_batch_size"] == 32 and big["reference_rows"] == 128
    assert big["weight_lr"] * big["epochs"] == pytest.approx(default["weight_lr"] * default["epochs"])
    assert 32 <= large_data_settings(LARGE_FROM)["batch_size"] <= MAX_BATCH
    LossVal(**big)
    MLP(batch_size=big["batch_size"], epochs=big["epochs"])
    with pytest.raises(ValueError, match="n_rows"):
        large_data_settings(0)


def test_a_large_reference_self_term_is_solved_in_row_blocks(monkeypatch):
    ref = torch.randn(90, 3, generator=torch.Generator().manual_seed(6))
    whole = SinkhornToReference(ref).part_self_terms
    monkeypatch.setattr(ot_module, "MAX_CHUNK_ENTRIES", 1000)  # 90 x 90 costs > 1000: blocks of 11 rows
    blocks = SinkhornToReference(ref).part_self_terms
    assert torch.allclose(whole, blocks, rtol=1e-5, atol=1e-6)
