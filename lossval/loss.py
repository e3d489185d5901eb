"""The LossVal objective: a weighted loss times a power of a weighted OT term.

Paper (Wibiral et al., 2024, arXiv 2412.04158, Eq. 4), for one batch B::

    LossVal = L_w(y, y_hat) * OT_w(X_B, X_val) ** 2
    L_w     = sum_{n in B} w_n * loss_n     (cross-entropy or squared error)

Higher weights ``w_n`` make a row count more; rows whose loss is high or
whose features pull the batch away from the validation set get their weight
pushed down, so after training a low weight means a less valuable row.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossval._checks import check_choice, check_float, check_task
from lossval._types import Combine

COMBINES: tuple[str, ...] = ("product", "loss_only", "ot_only")


def row_losses(task: str, output: Tensor, target: Tensor) -> Tensor:
    """Per-row loss (B,): cross-entropy on logits (B, K) against codes (B,), or squared error summed over outputs."""
    if task == "classification":
        return F.cross_entropy(output, target, reduction="none")
    return (output - target).pow(2).sum(dim=-1)


class LossTerms(NamedTuple):
    total: Tensor  # () the objective
    weighted_loss: Tensor  # () sum_n w_n loss_n
    transport: Tensor  # () |OT|, or 0 when not used
    rows: Tensor  # (B,) per-row losses, detached


class LossValLoss(nn.Module):
    """The LossVal objective for one batch.

    Args:
        task: ``"classification"`` (weighted cross-entropy) or ``"regression"``
            (weighted squared error).
        transport: the OT term, a :class:`~lossval.ot.SinkhornToReference`;
            optional when a precomputed ``transport`` tensor is passed to ``forward``.
        combine: ``"product"`` (paper), or the ablations ``"loss_only"`` (L_w)
            and ``"ot_only"`` (|OT| ** power).
        power: exponent of the OT factor (2 in the paper, 1 = not squared).

    ``forward(weights (B,), output (B, K), target (B,) or (B, 1), x (B, D))``
    returns the scalar objective; :meth:`terms` also returns its parts.
    The absolute value of the OT term is used, as in the authors' code
    (the debiased divergence can dip a hair below 0 before convergence).
    """

    def __init__(
        self,
        task: str,
        *,
        transport: nn.Module | None = None,
        combine: Combine = "product",
        power: float = 2.0,
    ) -> None:
        super().__init__()
        self.task = check_task(task)
        self.combine = check_choice("combine", combine, COMBINES)
        self.power = check_float("ot_power", power)
        self.transport = transport

    def terms(
        self, weights: Tensor, output: Tensor, target: Tensor, x: Tensor | None = None, *, transport: Tensor | None = None
    ) -> LossTerms:
        rows = row_losses(self.task, output, target)  # (B,)
        weighted = (weights * rows).sum()  # ()
        if self.combine == "loss_only":
            return LossTerms(weighted, weighted, torch.zeros_like(weighted), rows.detach())
        if transport is None:
            if self.transport is None or x is None:
                raise ValueError("LossValLoss needs x and a transport module, or a precomputed transport tensor")
            transport = self.transport(weights, x)
        ot = transport.abs()
        factor = ot.pow(self.power)
        total = factor if self.combine == "ot_only" else weighted * factor
        return LossTerms(total, weighted, ot, rows.detach())

    def forward(
        self, weights: Tensor, output: Tensor, target: Tensor, x: Tensor | None = None, *, transport: Tensor | None = None
    ) -> Tensor:
        return self.terms(weights, output, target, x, transport=transport).total

    def factor(self, transport: Tensor) -> Tensor:
        """What multiplies the weighted loss, per batch: ``|OT| ** power`` (1 for ``"loss_only"``)."""
        if self.combine == "loss_only":
            return torch.ones_like(transport)
        return transport.abs().pow(self.power)

    def weight_gradient(
        self, rows: Tensor, weights: Tensor, batch: Tensor, transport: Tensor, transport_grad: Tensor
    ) -> Tensor:
        """Closed-form gradient of the summed batch objectives with respect to every row weight.

        Args:
            rows: (N,) per-row losses; weights: (N,) row weights.
            batch: (N,) index of each row's batch; transport: (n_batches,) OT value per batch.
            transport_grad: (N,) dOT_b / dw_n of each row in its batch.

        With ``T_b = L_b * F(OT_b)``, ``L_b = sum_{n in b} w_n l_n`` and ``F = |.| ** p``:
        ``dT_b/dw_n = l_n F(OT_b) + L_b F'(OT_b) dOT_b/dw_n``. Matches autograd through
        :meth:`terms` (tested), in a few vectorised operations for a whole epoch.
        """
        loss_part, ot_part = self.weight_gradient_parts(rows, weights, batch, transport, transport_grad)
        return loss_part + ot_part

    def weight_gradient_parts(
        self, rows: Tensor, weights: Tensor, batch: Tensor, transport: Tensor, transport_grad: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The two parts of :meth:`weight_gradient`, (N,) each: ``l_n F(OT_b)`` and ``L_b F'(OT_b) dOT_b/dw_n``.

        The first is high for rows the model fits badly (label-like), the second
        for rows whose features pull their batch away from the validation set
        (feature-like). ``"loss_only"`` has no OT part, ``"ot_only"`` no loss part.
        """
        if self.combine == "loss_only":
            return rows, torch.zeros_like(rows)
        ot = transport.abs()
        d_factor = self.power * ot.pow(self.power - 1) * torch.sign(transport)  # (n_batches,) F'(OT_b)
        ot_term = d_factor[batch] * transport_grad  # (N,)
        if self.combine == "ot_only":
            return torch.zeros_like(rows), ot_term
        weighted = torch.zeros_like(transport).index_add_(0, batch, weights * rows)  # (n_batches,) L_b
        return rows * self.factor(transport)[batch], weighted[batch] * ot_term
