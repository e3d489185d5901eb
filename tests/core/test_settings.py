"""Size-aware "auto" settings of LossVal and MLP (lossval.settings), and the held OT term (ot_every)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import lossval.large_data as large_data
from lossval import MLP, LossVal, large_data_settings
from lossval.epoch_transport import HeldTransport
from lossval.metrics import detection_auroc
from lossval.settings import NORMALIZED_WEIGHT_LR, resolve_settings

AUTO_KEYS = ("epochs", "batch_size", "ot_batch_size", "reference_rows", "ot_every", "scaling", "sinkhorn_loop", "weight_lr")
PAPER = {
    "epochs": 30, "batch_size": 32, "ot_batch_size": None, "reference_rows": None, "ot_every": 1, "scaling": 0.5,
    "sinkhorn_loop": "geomloss", "weight_lr": 0.04,
}  # fmt: skip


@pytest.fixture()
def noisy_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(480, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    X_train, y_train = X[:400].copy(), y[:400].copy()
    noisy = np.zeros(400, dtype=bool)
    noisy[rng.choice(400, 40, replace=False)] = True
    y_train[noisy] = 1 - y_train[noisy]
    return X_train, y_train, X[400:], y[400:], noisy


def test_auto_on_a_small_table_is_the_papers_settings():
    assert LossVal()._resolve(1000) == PAPER
    assert resolve_settings(large_data.LARGE_FROM - 1, {"epochs": "auto", "batch_size": "auto"}) == {"epochs": 30, "batch_size": 32}


def test_auto_on_a_large_table_is_the_large_data_settings():
    n = 1_000_000
    table = large_data_settings(n)
    settings = LossVal()._resolve(n)
    assert set(settings) == set(AUTO_KEYS)
    assert {k: settings[k] for k in table} == table
    assert settings["epochs"] < 30 and settings["batch_size"] > 32 and settings["ot_batch_size"] == 32
    assert settings["ot_every"] == 1 and settings["scaling"] == large_data.LARGE_SCALING < 0.5
    assert settings["sinkhorn_loop"] == large_data.LARGE_LOOP == "trimmed"
    assert resolve_settings(n, {"epochs": "auto", "batch_size": "auto"}) == {k: table[k] for k in ("epochs", "batch_size")}


def test_explicit_values_win_and_the_weight_step_follows_the_epochs():
    n = 1_000_000
    lv = LossVal(epochs=7, batch_size=256, reference_rows=None, ot_every=1)
    settings = lv._resolve(n)
    assert (settings["epochs"], settings["batch_size"], settings["reference_rows"], settings["ot_every"]) == (7, 256, None, 1)
    assert settings["ot_batch_size"] == 32  # still "auto": the large-table OT groups
    assert settings["weight_lr"] == pytest.approx(NORMALIZED_WEIGHT_LR * 30 / 7)  # as far in 7 epochs as in 30
    assert LossVal(weight_lr=0.1)._resolve(n)["weight_lr"] == 0.1
    assert (lv.epochs, lv.batch_size) == (7, 256)  # the constructor's arguments are never rewritten


def test_the_paper_variant_keeps_its_settings_on_a_large_table():
    settings = LossVal.paper()._resolve(1_000_000)
    assert (settings["epochs"], settings["batch_size"], settings["ot_batch_size"], settings["reference_rows"]) == (30, 32, None, None)
    assert (settings["ot_every"], settings["scaling"], settings["sinkhorn_loop"]) == (1, 0.5, "geomloss")
    assert settings["weight_lr"] == 0.01  # Adam weights step with the network's rate
    # SamplesLoss runs geomloss's own loop: "auto" keeps it whatever the size; explicit values win
    assert LossVal(solver="geomloss")._resolve(1_000_000)["sinkhorn_loop"] == "geomloss"
    assert LossVal(sinkhorn_loop="geomloss")._resolve(1_000_000)["sinkhorn_loop"] == "geomloss"
    assert LossVal(sinkhorn_loop="trimmed")._resolve(1000)["sinkhorn_loop"] == "trimmed"
    # the per-batch schedule keeps one exact OT term per batch even with "auto" elsewhere
    assert LossVal(weight_updates="per_batch")._resolve(1_000_000)["ot_batch_size"] is None


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(epochs="fast"), "epochs must be an integer >= 1 or 'auto', got 'fast'"),
        (dict(batch_size=0), "batch_size must be an integer >= 1 or 'auto', got 0"),
        (dict(reference_rows="all"), "reference_rows must be an integer >= 1 or 'auto', None, got 'all'"),
        (dict(ot_every=0), "ot_every must be an integer >= 1 or 'auto', got 0"),
        (dict(scaling="fast"), "scaling must be a finite number"),
        (dict(weight_updates="per_batch", ot_every=2), "ot_every=2 needs weight_updates='per_epoch'"),
        (dict(sinkhorn_loop="short"), "sinkhorn_loop must be one of"),
        (dict(sinkhorn_loop="trimmed", solver="geomloss"), "sinkhorn_loop='trimmed' needs solver='fast'"),
    ],
)
def test_bad_settings_fail_naming_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        LossVal(**options)
    if set(options) <= {"epochs", "batch_size"}:
        with pytest.raises(ValueError, match=message):
            MLP(**options)


def test_settings_are_recorded_on_fit_small_and_large(noisy_table, monkeypatch):
    X, y, Xv, yv, _ = noisy_table
    small = LossVal(epochs=2, random_state=0, progress=False).fit(X, y, Xv, yv)
    assert small.settings_ == {**PAPER, "epochs": 2}
    assert MLP(epochs=2, random_state=0, progress=False).fit(X, y).settings_ == {"epochs": 2, "batch_size": 32}
    monkeypatch.setattr(large_data, "LARGE_FROM", 300)  # 400 rows count as a large table now
    big = LossVal(random_state=0, progress=False).fit(X, y, Xv, yv)
    expected = LossVal()._resolve(400)
    assert big.settings_ == expected and expected["epochs"] == large_data.LARGE_EPOCHS
    assert len(big.history_) == expected["epochs"]
    plain = MLP(random_state=0, progress=False).fit(X, y)
    assert plain.settings_ == {"epochs": expected["epochs"], "batch_size": expected["batch_size"]}
    assert len(plain.history_) == expected["epochs"]


def test_a_held_transport_gives_every_row_its_solved_group_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(10, generator=g)
    group_p = torch.arange(10) // 4  # groups of the solve epoch's permuted positions
    value, grad_p = torch.tensor([0.1, 0.2, 0.3]), torch.randn(10, generator=g)
    held = HeldTransport(perm, group_p, value, grad_p)
    later = torch.randperm(10, generator=g)  # a later epoch's order
    v, groups, grads = held.permuted(later)
    assert torch.equal(v, value)
    for pos, row in enumerate(later.tolist()):
        solved_at = perm.tolist().index(row)
        assert groups[pos] == group_p[solved_at] and grads[pos] == grad_p[solved_at]


def test_held_ot_is_exact_when_solved_every_epoch_and_agrees_with_the_exact_term(noisy_table):
    X, y, Xv, yv, noisy = noisy_table
    common = dict(epochs=4, batch_size=64, ot_batch_size=16, reference_rows=None, random_state=1, progress=False)
    exact = LossVal(**common, ot_every=1).fit(X, y, Xv, yv)
    one_epoch = [LossVal(**{**common, "epochs": 1}, ot_every=k).fit(X, y, Xv, yv).values_ for k in (1, 3)]
    assert np.array_equal(one_epoch[0].to_numpy(), one_epoch[1].to_numpy())  # held only after the first solve
    held = LossVal(**common, ot_every=2).fit(X, y, Xv, yv)  # solved in epochs 1 and 3, held in 2 and 4
    assert held.settings_["ot_every"] == 2
    assert not np.array_equal(held.values_.to_numpy(), exact.values_.to_numpy())
    rho = spearmanr(held.values_, exact.values_).statistic
    assert rho > 0.9, rho
    a_exact, a_held = detection_auroc(exact.values_.to_numpy(), noisy), detection_auroc(held.values_.to_numpy(), noisy)
    assert a_exact > 0.7 and abs(a_held - a_exact) < 0.05, (a_exact, a_held)


def test_fewer_sinkhorn_iterations_agree_with_the_default_solve():
    from lossval.large_data import LARGE_SCALING
    from lossval.ot import SinkhornToReference, diameter_bound

    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(8, 32, 6, generator=g), torch.randn(128, 6, generator=g) * 1.1 + 0.2
    w = torch.rand(8, 32, generator=g) + 0.5
    d = diameter_bound(x.reshape(-1, 6), ref)
    solved = {}
    for scaling in (0.5, LARGE_SCALING):
        transport = SinkhornToReference(ref, diameter=d, scaling=scaling)
        weights = w.clone().requires_grad_()
        value = transport(weights, x)
        (grad,) = torch.autograd.grad(value.sum(), weights)
        solved[scaling] = (value.detach(), grad, len(transport.eps_list))
    (v0, g0, steps0), (v1, g1, steps1) = solved[0.5], solved[LARGE_SCALING]
    assert steps1 < steps0  # fewer iterations: 6 against 10 here
    assert ((v1 - v0).abs() / v0.abs()).max() < 0.1  # measured 0.047
    assert torch.corrcoef(torch.stack([g1.flatten(), g0.flatten()]))[0, 1] > 0.98  # measured 0.995
