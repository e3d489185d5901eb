"""The OT term of a whole epoch for LossVal's per-epoch schedule, and the points it transports.

With ``weight_updates="per_epoch"`` a row's weight does not move until the
epoch ends, so the OT term of every group of the epoch is known when the
epoch starts: :func:`epoch_transport` solves all groups' Sinkhorn problems
in a few batched calls of :class:`~lossval.ot.SinkhornToReference`.

:class:`HeldTransport` is the ``ot_every`` lever: the groups, their reference
parts, OT values and per-row gradients of one solve are held for
``ot_every`` epochs, and in between each row keeps its group, whatever batch
it trains in (docs/benchmarks.md, "17: overhead levers", has what it costs).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lossval.ot import SinkhornToReference, chunk_entries


def epoch_transport(transport: SinkhornToReference, w_p: Tensor, Z_p: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """OT value of every group of ``size`` consecutive rows (n_groups,) and its gradient per row (N,).

    Args:
        transport: the OT term; w_p: (N,) weights, Z_p: (N, D) transported points, in group order.
        size: rows per group; a last, smaller group is solved on its own.

    Solved in batched calls of at most :func:`~lossval.ot.chunk_entries` cost-matrix entries;
    group g meets reference part ``g % n_parts``.
    """
    n, device = len(w_p), w_p.device
    n_full, n_groups = n // size, -(-n // size)
    parts = torch.arange(n_groups, device=device) % transport.n_parts  # (n_groups,)
    chunk = max(1, chunk_entries(device) // (size * (transport.part_rows + size)))
    pieces = [(lo, min(lo + chunk, n_full)) for lo in range(0, n_full, chunk)]
    if n_groups > n_full:
        pieces.append((n_full, n_groups))
    values, grads = [], []
    with torch.enable_grad():
        for lo, hi in pieces:
            rows = slice(lo * size, min(hi * size, n))
            w = w_p[rows].reshape(hi - lo, -1).detach().requires_grad_()  # (k, size)
            x = Z_p[rows].reshape(hi - lo, w.shape[1], -1)  # (k, size, D)
            value = transport(w, x, parts[lo:hi])  # (k,)
            (grad,) = torch.autograd.grad(value.sum(), w)
            values.append(value.detach())
            grads.append(grad.reshape(-1))
    return torch.cat(values), torch.cat(grads)


class HeldTransport:
    """One epoch's OT solve held for later epochs (``ot_every > 1``): groups and gradients in row order."""

    def __init__(self, perm: Tensor, group_p: Tensor, value: Tensor, grad_p: Tensor) -> None:
        self.value = value  # (n_groups,)
        self.group = torch.empty_like(group_p).index_copy_(0, perm, group_p)  # (N,) group of each row
        self.grad = torch.empty_like(grad_p).index_copy_(0, perm, grad_p)  # (N,) dOT_g / dw_n of each row

    def permuted(self, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(n_groups,) values, and the (N,) groups and gradients of the rows in ``perm`` order."""
        return self.value, self.group[perm], self.grad[perm]


def transport_points(X: Tensor, y: Tensor, *, task: str, n_outputs: int, label_scale: float) -> Tensor:
    """The points the OT term transports (N, D'): the features, plus the label scaled by ``label_scale``.

    Classification adds the one-hot label times ``label_scale / sqrt(2)`` (two classes lie
    ``label_scale`` apart), regression the standardised target times ``label_scale``.
    """
    if label_scale == 0:
        return X
    if task == "classification":
        label = torch.nn.functional.one_hot(y, n_outputs).to(X.dtype) * (label_scale / 2**0.5)
    else:
        label = y.reshape(len(y), -1) * label_scale
    return torch.cat([X, label], dim=1)  # (N, D + K)


class Accumulators:
    """Per-row running sums of the two parts of the objective, for ``parts_``."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.loss_sum = torch.zeros(n, device=device)
        self.transport_sum = torch.zeros(n, device=device)

    def add(self, perm: Tensor, rows_p: Tensor, ot_grad_p: Tensor) -> None:
        self.loss_sum.index_add_(0, perm, rows_p)
        self.transport_sum.index_add_(0, perm, ot_grad_p)
