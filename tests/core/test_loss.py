"""The LossVal objective: exact identities and its closed-form weight gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossval.loss import LossValLoss, row_losses
from lossval.ot import SinkhornToReference


def test_weighted_cross_entropy_equals_plain_under_uniform_weights():
    logits, target = torch.randn(16, 3), torch.randint(0, 3, (16,))
    loss = LossValLoss("classification", combine="loss_only")
    assert float(loss(torch.ones(16), logits, target)) == pytest.approx(16 * float(F.cross_entropy(logits, target)), rel=1e-6)


def test_weighted_squared_error_equals_plain_under_uniform_weights():
    out, target = torch.randn(16, 1), torch.randn(16, 1)
    loss = LossValLoss("regression", combine="loss_only")
    assert float(loss(torch.ones(16), out, target)) == pytest.approx(16 * float(F.mse_loss(out, target)), rel=1e-6)


def test_product_is_weighted_loss_times_squared_ot():
    ref, x = torch.randn(30, 4), torch.randn(16, 4)
    ot = SinkhornToReference(ref)
    loss = LossValLoss("regression", transport=ot)
    w, out, target = torch.rand(16) + 0.5, torch.randn(16, 1), torch.randn(16, 1)
    terms = loss.terms(w, out, target, x)
    expected = (w * row_losses("regression", out, target)).sum() * ot(w, x).abs() ** 2
    assert float(terms.total) == pytest.approx(float(expected), rel=1e-5)
    not_squared = LossValLoss("regression", transport=ot, power=1.0)
    assert float(not_squared(w, out, target, x)) == pytest.approx(float(terms.weighted_loss * terms.transport), rel=1e-5)


@pytest.mark.parametrize("combine", ["product", "ot_only", "loss_only"])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_closed_form_weight_gradient_matches_autograd(combine, power):
    g = torch.Generator().manual_seed(3)
    ref, x = torch.randn(30, 4, generator=g), torch.randn(3, 8, 4, generator=g)
    ot = SinkhornToReference(ref)
    loss = LossValLoss("classification", transport=ot, combine=combine, power=power)
    w = (torch.rand(3, 8, generator=g) + 0.5).requires_grad_()
    logits, target = torch.randn(3, 8, 2, generator=g), torch.randint(0, 2, (3, 8), generator=g)
    total = sum(loss(w[b], logits[b], target[b], x[b]) for b in range(3))
    (expected,) = torch.autograd.grad(total, w)
    with torch.enable_grad():
        wb = w.detach().clone().requires_grad_()
        values = ot(wb, x)
        (ot_grad,) = torch.autograd.grad(values.sum(), wb)
    rows = row_losses("classification", logits.reshape(24, 2), target.reshape(24))
    batch = torch.arange(24) // 8
    got = loss.weight_gradient(rows, w.detach().reshape(24), batch, values.detach(), ot_grad.reshape(24))
    assert torch.allclose(got, expected.reshape(24), rtol=1e-4, atol=1e-6)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="combine"):
        LossValLoss("regression", combine="sum")
    with pytest.raises(ValueError, match="task"):
        LossValLoss("ranking")
    with pytest.raises(ValueError, match="ot_power"):
        LossValLoss("regression", power=-1)
