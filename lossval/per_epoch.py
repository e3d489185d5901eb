"""LossVal's ``weight_updates="per_epoch"`` schedule (the default).

The network steps after every batch; the weights take one step per epoch
with the gradient each row got in its batch. Since a row's weight then does
not move until the epoch ends, the OT term of *every* batch (or OT group of
``ot_batch_size`` rows) of the epoch depends only on weights known when the
epoch starts, so all groups' Sinkhorn problems are solved together in
batched calls (:func:`lossval.epoch_transport.epoch_transport`), and each
batch step uses that value with its exact gradient (dOT/dw is linear at the
fixed point). No per-batch OT solve, no per-batch host synchronisation.

With ``ot_every = k > 1`` the OT term is solved in epochs 1, k + 1, 2k + 1, ...
and held in between (:class:`lossval.epoch_transport.HeldTransport`): each row
keeps its group, the group's OT value and its own OT gradient from the last
solve, while the losses, ``L_g`` and the weight step are fresh every epoch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lossval.epoch_transport import Accumulators, HeldTransport, epoch_transport
from lossval.loss import row_losses
from lossval.model import epoch_batches
from lossval.ot import SinkhornToReference
from lossval.row_weights import WeightStepper

if TYPE_CHECKING:
    from lossval.valuation import LossVal


def train_per_epoch(
    model: LossVal, net: nn.Module, stepper: WeightStepper, transport: SinkhornToReference, X: Tensor, Z: Tensor,
    y: Tensor, generator: torch.Generator, state: Accumulators,
) -> None:  # fmt: skip
    """Train ``net`` per batch and ``stepper.weights`` (N,) once per epoch, by ``model.settings_``.

    X: (N, D) features, Z: (N, D') transported points, y: targets; ``state`` collects the per-row parts.
    """
    settings, device, loss_fn = model.settings_, model.device_, model.loss_fn
    n, batch_size, ot_every = len(X), settings["batch_size"], settings["ot_every"]
    weights = stepper.weights
    net_opt = torch.optim.Adam(net.parameters(), lr=model.lr)
    group = settings["ot_batch_size"] or batch_size
    group_of = torch.arange(n, device=device) // group  # (N,) OT group of each permuted position
    rows_p = torch.empty(n, device=device)  # (N,) per-row loss, per permuted position
    held: HeldTransport | None = None
    for epoch in model._epochs("LossVal"):
        started = time.perf_counter()
        perm, batches = epoch_batches(n, batch_size, generator, device)
        X_p, y_p, w_p = X[perm], y[perm], weights.detach()[perm]  # (N, D), (N, ...), (N,)
        fresh = held is None or (epoch - 1) % ot_every == 0
        if fresh:  # solve: groups of consecutive permuted rows
            Z_p = X_p if Z is X else Z[perm]  # (N, D') the transported points
            if transport.n_parts > 1:
                transport.shuffle_parts(generator)
            # Weights only move at the end of the epoch, so every group's OT term is known now.
            if model.combine == "loss_only":  # no OT term: factor 1, no OT gradient
                ot_value, ot_grad = torch.zeros(-(-n // group), device=device), torch.zeros_like(w_p)
            else:
                ot_value, ot_grad = epoch_transport(transport, w_p, Z_p, group)  # (n_groups,), (N,)
            group_p = group_of
            held = HeldTransport(perm, group_of, ot_value, ot_grad) if ot_every > 1 else None
        else:  # held: every row keeps the group, value and gradient of the last solve
            ot_value, group_p, ot_grad = held.permuted(perm)
        factor = loss_fn.factor(ot_value)  # (n_groups,)
        if model.combine == "ot_only":  # the ablation trains the weights alone
            with torch.no_grad():
                rows_p = row_losses(model.task, net(X_p), y_p)
        elif fresh and group == batch_size:  # one group per batch: L_b * F(OT_b), the paper's objective
            for b, sl in enumerate(batches):
                rows = row_losses(model.task, net(X_p[sl]), y_p[sl])  # (B,)
                net_opt.zero_grad(set_to_none=True)
                ((w_p[sl] * rows).sum() * factor[b]).backward()
                net_opt.step()
                rows_p[sl] = rows.detach()
        else:  # a batch sums L_g * F(OT_g) over its groups: each row's loss scaled by w_n F(OT_g(n))
            scale = w_p * factor[group_p]  # (N,)
            for sl in batches:
                rows = row_losses(model.task, net(X_p[sl]), y_p[sl])  # (B,)
                net_opt.zero_grad(set_to_none=True)
                (scale[sl] * rows).sum().backward()
                net_opt.step()
                rows_p[sl] = rows.detach()
        grad_p = loss_fn.weight_gradient(rows_p, w_p, group_p, ot_value, ot_grad)  # (N,)
        stepper.step(torch.empty_like(grad_p).index_copy_(0, perm, grad_p))
        state.add(perm, rows_p, ot_grad)
        weighted = torch.zeros_like(ot_value).index_add_(0, group_p, w_p * rows_p)  # (n_groups,)
        total = factor if model.combine == "ot_only" else weighted * factor
        means = torch.stack([total.mean(), weighted.mean(), ot_value.abs().mean()])
        model._end_epoch(epoch, model._metrics(means, weights), started)
