"""The weight steps of lossval.row_weights against hand-computed references."""

from __future__ import annotations

import pytest
import torch

from lossval.row_weights import WeightStepper


def _stepper(n=5, **options):
    weights = torch.ones(n)
    return weights, WeightStepper(weights, **options)


def test_normalized_direction_is_the_projected_gradient_over_its_mean_absolute_value():
    _, stepper = _stepper(4, clip=0)
    grad = torch.tensor([1.0, 2.0, 3.0, 6.0])  # mean 3 -> projected [-2, -1, 0, 3], mean |.| = 1.5
    torch.testing.assert_close(stepper.direction(grad), torch.tensor([-4 / 3, -2 / 3, 0.0, 2.0]))


def test_normalized_rms_direction_has_unit_root_mean_square():
    _, stepper = _stepper(4, optimizer="normalized_rms", clip=0)
    direction = stepper.direction(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert float(direction.pow(2).mean().sqrt()) == pytest.approx(1.0)
    assert float(direction.sum()) == pytest.approx(0.0, abs=1e-6)


def test_clip_bounds_the_step_of_an_extreme_row():
    _, stepper = _stepper(5, clip=1.5)
    direction = stepper.direction(torch.tensor([0.0, 0.0, 0.0, 0.0, 100.0]))
    assert float(direction.max()) == 1.5 and float(direction.min()) == pytest.approx(-0.625)


def test_a_normalized_step_moves_rows_against_their_gradient_and_keeps_mean_one():
    weights, stepper = _stepper(4, lr=0.1, clip=0)
    stepper.step(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    expected = torch.ones(4) - 0.1 * torch.tensor([-4 / 3, -2 / 3, 0.0, 2.0])
    torch.testing.assert_close(weights, expected / expected.mean())
    assert float(weights.mean()) == pytest.approx(1.0)
    assert torch.equal(torch.argsort(weights), torch.tensor([3, 2, 1, 0]))  # highest gradient -> lowest weight


def test_the_scale_of_the_gradient_does_not_matter():
    a, first = _stepper(4, lr=0.1)
    b, second = _stepper(4, lr=0.1)
    grad = torch.tensor([0.3, 0.1, 2.0, 0.5])
    first.step(grad)
    second.step(1000 * grad)
    torch.testing.assert_close(a, b)


def test_weights_stay_in_their_range():
    weights, stepper = _stepper(3, lr=5.0, clip=0, min_weight=0.01, max_weight=1.5)
    stepper.step(torch.tensor([0.0, 0.0, 10.0]))
    assert float(weights.min()) == pytest.approx(0.01) and float(weights.max()) == pytest.approx(1.5)


def test_adam_is_torch_adam_on_the_weights():
    weights, stepper = _stepper(3, optimizer="adam", lr=0.01)
    reference = torch.nn.Parameter(torch.ones(3))
    adam = torch.optim.Adam([reference], lr=0.01)
    for grad in (torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.2, 0.1, -0.3])):
        stepper.step(grad)
        reference.grad = grad.clone()
        adam.step()
    torch.testing.assert_close(weights, reference.detach())


def test_values_average_the_last_epochs():
    weights, stepper = _stepper(3, lr=0.1, average_last=2, epochs=3)
    seen = []
    for grad in (torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])):
        stepper.step(grad)
        seen.append(weights.clone())
    torch.testing.assert_close(stepper.values(), (seen[1] + seen[2]) / 2)
    _, final_only = _stepper(3)
    assert torch.equal(final_only.values(), torch.ones(3))  # before any step: the initial weights


@pytest.mark.parametrize(
    "options, message",
    [(dict(optimizer="sgd"), "weight_optimizer"), (dict(lr=0.0), "weight_lr"), (dict(clip=-1.0), "weight_clip"), (dict(average_last=0), "average_last")],
)
def test_bad_settings_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        _stepper(3, **options)
