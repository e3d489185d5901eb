"""LossVal's ``weight_updates="per_batch"`` schedule (the paper's code): one joint Adam, OT solved per batch."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lossval.epoch_transport import Accumulators
from lossval.model import epoch_batches
from lossval.ot import SinkhornToReference

if TYPE_CHECKING:
    from lossval.valuation import LossVal


def train_per_batch(
    model: LossVal, net: nn.Module, weights: Tensor, transport: SinkhornToReference, X: Tensor, Z: Tensor, y: Tensor,
    generator: torch.Generator, state: Accumulators,
) -> None:  # fmt: skip
    """Train ``net`` and ``weights`` (N,) together, one Adam step per batch of ``model.settings_["batch_size"]`` rows.

    X: (N, D) features, Z: (N, D') transported points, y: targets; ``state`` collects the per-row parts.
    """
    n, batch_size, weight_lr = len(X), model.settings_["batch_size"], model.settings_["weight_lr"]
    optimizer = torch.optim.Adam([*net.parameters(), weights], lr=model.lr)
    if weight_lr != model.lr:
        optimizer = torch.optim.Adam([{"params": list(net.parameters())}, {"params": [weights], "lr": weight_lr}], lr=model.lr)
    rows_p = torch.empty(n, device=model.device_)
    ot_grad = torch.zeros(n, device=model.device_)
    for epoch in model._epochs("LossVal"):
        started = time.perf_counter()
        perm, batches = epoch_batches(n, batch_size, generator, model.device_)
        X_p, y_p = X[perm], y[perm]
        Z_p = X_p if Z is X else Z[perm]
        if transport.n_parts > 1:
            transport.shuffle_parts(generator)
        parts = torch.arange(len(batches), device=model.device_) % transport.n_parts  # (n_batches,)
        sums = torch.zeros(3, device=model.device_)
        for b, sl in enumerate(batches):
            w_b = weights[perm[sl]]  # (B,), gradient flows into the full weight vector
            ot_b = None
            if model.combine != "loss_only":
                ot_b = transport(w_b, Z_p[sl], parts[b : b + 1])
                (ot_grad[sl],) = torch.autograd.grad(ot_b, w_b, retain_graph=True)
            terms = model.loss_fn.terms(w_b, net(X_p[sl]), y_p[sl], transport=ot_b)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            optimizer.step()
            model._clip(weights)
            rows_p[sl] = terms.rows
            sums += torch.stack([terms.total.detach(), terms.weighted_loss.detach(), terms.transport.detach()])
        state.add(perm, rows_p, ot_grad)
        model._end_epoch(epoch, model._metrics(sums / len(batches), weights), started)
