"""How the row weights move once per epoch (``weight_updates="per_epoch"``), and what becomes their value.

Each epoch ends with one weight step against the closed-form gradient of
the epoch's summed batch objectives (:meth:`lossval.loss.LossValLoss.weight_gradient`).
Two optimizers:

``"normalized"`` (default)
    Projected, normalised gradient descent on the weights under the
    constraint "mean weight = 1": the gradient minus its mean over the rows
    (the projection), divided by its mean absolute value over the rows (one
    scale for all rows), clipped to ``[-clip, clip]``, times ``lr``; then the
    weights are rescaled to mean 1 and clipped to ``[min_weight, max_weight]``.
    So a step moves a typical row by about ``lr``, a row whose gradient is
    far above the others' by at most ``clip * lr``, and the relative sizes of
    the rows' gradients, which tell the noisy rows apart, are kept. Only the
    weights' relative sizes matter (the OT term sees normalised masses), and
    the loss part of the gradient, positive for every row, cannot drag all
    weights to the floor together. ``"normalized_rms"`` divides by the root
    mean square instead; a few extreme rows then set the scale and the rest
    barely move (docs/benchmarks.md, experiment log).
``"adam"`` (the paper's)
    Per-row Adam. Adam divides each row's gradient by that row's own running
    scale, so a row whose gradient is ten times larger moves about as fast as
    any other: the magnitude that tells noisy rows apart is mostly lost.

``average_last`` makes the value of a row the mean of its weight over the
last epochs (1 = the final weight, as in the paper).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lossval._checks import check_choice, check_float, check_int

OPTIMIZERS: tuple[str, ...] = ("normalized", "normalized_rms", "adam")


class WeightStepper:
    """One weight update per epoch; keeps the running value.

    Args:
        weights: (N,) the row weights, a leaf tensor updated in place.
        optimizer: ``"normalized"``, ``"normalized_rms"`` or ``"adam"`` (see the module doc).
        lr: step size of the weights.
        clip: largest normalised step of one row, in units of ``lr`` (``"normalized*"`` only; 0 = no clip).
        average_last: the value is the mean weight over this many final epochs.
        min_weight, max_weight: the weights are clipped to this range after every step.
        epochs: the number of epochs of the fit (for ``average_last``).
    """

    def __init__(
        self,
        weights: Tensor,
        *,
        optimizer: str = "normalized",
        lr: float = 0.04,
        clip: float = 3.0,
        average_last: int = 1,
        min_weight: float = 1e-3,
        max_weight: float = 1e3,
        epochs: int = 30,
    ) -> None:
        self.weights = weights
        self.optimizer = check_choice("weight_optimizer", optimizer, OPTIMIZERS)
        self.lr = check_float("weight_lr", lr)
        self.clip = check_float("weight_clip", clip, allow_zero=True)
        self.average_last = min(check_int("average_last", average_last), epochs)
        self.min_weight, self.max_weight, self.epochs = min_weight, max_weight, epochs
        self._adam = torch.optim.Adam([weights], lr=lr) if self.optimizer == "adam" else None
        self._sum = torch.zeros_like(weights)
        self._count = 0
        self._epoch = 0

    @torch.no_grad()
    def step(self, grad: Tensor) -> None:
        """Move the weights against ``grad`` (N,), the objective's gradient in row order."""
        if self._adam is not None:
            self.weights.grad = grad
            self._adam.step()
            self.weights.grad = None
        else:
            self.weights.sub_(self.lr * self.direction(grad))
            self.weights.div_(self.weights.mean().clamp_min(1e-30))
        self.weights.nan_to_num_(nan=self.min_weight).clamp_(self.min_weight, self.max_weight)
        self._epoch += 1
        if self._epoch > self.epochs - self.average_last:
            self._sum += self.weights
            self._count += 1

    def direction(self, grad: Tensor) -> Tensor:
        """The normalised step direction (N,) of the ``"normalized*"`` optimizers: projected, scaled, clipped."""
        projected = grad - grad.mean()
        if self.optimizer == "normalized_rms":
            scale = projected.pow(2).mean().sqrt()
        else:
            scale = projected.abs().mean()
        step = projected / scale.clamp_min(1e-30)
        return step.clamp(-self.clip, self.clip) if self.clip else step

    def values(self) -> Tensor:
        """(N,) the row values: the weights averaged over the last ``average_last`` epochs."""
        if self._count == 0:
            return self.weights.detach().clone()
        return self._sum / self._count


def epoch_metrics(means: Tensor, weights: Tensor) -> dict[str, float]:
    """One epoch's metrics: ``means`` (3,) = mean objective, weighted loss, |OT|; quantiles of ``weights`` (N,)."""
    loss, weighted, ot = means.tolist()
    quantiles = np.quantile(weights.detach().float().cpu().numpy(), [0.0, 0.05, 0.5, 0.95, 1.0])
    names = ("weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max")
    return {"loss": loss, "weighted_loss": weighted, "ot": ot, **dict(zip(names, map(float, quantiles)))}
