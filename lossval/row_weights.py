"""How the row weights move once per epoch (``weight_updates="per_epoch"``), and what becomes their value.

The gradient of LossVal's objective with respect to a row weight has two
parts (:meth:`lossval.loss.LossValLoss.weight_gradient_parts`): the row's
loss times the batch's OT factor (high for rows whose label the model cannot
fit), and the batch's weighted loss times the derivative of the OT factor
(high for rows whose features pull the batch away from the validation set).
This module turns them into a weight step:

``optimizer``
    ``"adam"`` (the paper's): per-row Adam. Adam divides each row's gradient
    by that row's own running scale, so a row with a 10x larger gradient
    moves about as fast as any other: the magnitude that tells noisy rows
    apart is mostly lost. ``"sgd"``: plain gradient descent. ``"rms"``: the
    epoch's gradient vector divided by its root mean square over the rows
    (one scale for all rows), so a step moves the weights by ``lr`` on
    average while keeping their relative sizes.
``balance``
    Divide each of the two parts by its own root mean square over the rows
    before adding them, so neither the loss part nor the OT part drowns the
    other (their raw scales differ by orders of magnitude and in opposite
    directions under raw and normalised masses).
``renormalize``
    After each step, rescale the weights to mean 1: the weights stay a
    reweighting of the rows (only their relative sizes carry information),
    and the loss part, which is positive for every row, cannot drag all
    weights to the floor together.
``average_last``
    The value of a row is the mean of its weight over the last
    ``average_last`` epochs (1 = the final weight, as in the paper).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lossval._checks import check_choice, check_float, check_int

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rms", "l1")


def rms(x: Tensor) -> Tensor:
    """Root mean square of a vector, floored so that an all-zero vector stays all-zero after division."""
    return x.pow(2).mean().sqrt().clamp_min(1e-30)


class WeightStepper:
    """One weight update per epoch from the two parts of the gradient; keeps the running value.

    Args:
        weights: (N,) the row weights, a leaf tensor updated in place.
        optimizer, lr, balance, renormalize, average_last: see the module doc.
        min_weight, max_weight: the weights are clipped to this range after every step.
        epochs: the number of epochs of the fit (for ``average_last``).
    """

    def __init__(
        self,
        weights: Tensor,
        *,
        optimizer: str = "adam",
        lr: float = 0.01,
        balance: bool = False,
        renormalize: bool = False,
        average_last: int = 1,
        split: bool = False,
        clip: float = 0.0,
        min_weight: float = 1e-3,
        max_weight: float = 1e3,
        epochs: int = 30,
    ) -> None:
        self.weights = weights
        self.split = bool(split)
        self.clip = float(clip)
        self.factors = (weights.detach().clone(), torch.ones_like(weights)) if self.split else ()
        self.optimizer = check_choice("weight_optimizer", optimizer, OPTIMIZERS)
        self.lr = check_float("weight_lr", lr)
        self.balance, self.renormalize = bool(balance), bool(renormalize)
        self.average_last = min(check_int("average_last", average_last), epochs)
        self.min_weight, self.max_weight, self.epochs = min_weight, max_weight, epochs
        if self.split and self.optimizer == "adam":
            raise ValueError("split weights need weight_optimizer 'sgd' or 'rms', got 'adam'")
        self._adam = torch.optim.Adam([weights], lr=lr) if self.optimizer == "adam" else None
        self._sum = torch.zeros_like(weights)
        self._count = 0
        self._epoch = 0

    def direction(self, loss_part: Tensor, ot_part: Tensor) -> Tensor:
        """The gradient to descend (N,): the sum of the parts, each scaled to unit RMS when balancing."""
        if self.balance:
            return loss_part / rms(loss_part) + ot_part / rms(ot_part)
        return loss_part + ot_part

    @torch.no_grad()
    def step(self, loss_part: Tensor, ot_part: Tensor) -> None:
        """Move the weights against ``direction(loss_part, ot_part)``, both (N,) in row order."""
        if self.split:
            loss_factor, ot_factor = self.factors
            self._descend(loss_factor, loss_part)
            self._descend(ot_factor, ot_part)
            self.weights.copy_(loss_factor * ot_factor)
            self._clip(self.weights)
        elif self._adam is not None:
            self.weights.grad = self.direction(loss_part, ot_part)
            self._adam.step()
            self.weights.grad = None
            self._clip(self.weights)
        else:
            self._descend(self.weights, self.direction(loss_part, ot_part))
        self._epoch += 1
        if self._epoch > self.epochs - self.average_last:
            self._sum += self.weights
            self._count += 1

    def _descend(self, weights: Tensor, grad: Tensor) -> None:
        if self.optimizer == "sgd":
            weights.sub_(self.lr * grad)
        else:  # "rms" / "l1": the projected (centred) gradient, scaled to unit RMS / mean |.|, clipped
            grad = grad - grad.mean()
            scale = rms(grad) if self.optimizer == "rms" else grad.abs().mean().clamp_min(1e-30)
            grad = grad / scale
            if self.clip:
                grad = grad.clamp(-self.clip, self.clip)
            weights.sub_(self.lr * grad)
        if self.renormalize:
            weights.div_(weights.mean().clamp_min(1e-30))
        self._clip(weights)

    def _clip(self, weights: Tensor) -> None:
        weights.nan_to_num_(nan=self.min_weight).clamp_(self.min_weight, self.max_weight)

    def values(self) -> Tensor:
        """(N,) the row values: the weights averaged over the last ``average_last`` epochs."""
        if self._count == 0:
            return self.weights.detach().clone()
        return self._sum / self._count
