"""Experiment (issue 14): the OT gradient taken at uniform weights, so a falling weight is not pushed back up.

In the default fit a label-noisy row's weight falls, and then its own OT gradient turns negative
(removing mass where the validation rows are raises the transport cost), which pushes the weight
back up: on label noise the rows' mean transport part ranks *below* the clean rows' (AUROC .40,
docs/benchmarks.md 2.9 item 8), while the first epoch's transport gradient, before any weight moved,
is neutral there (.50) and as good as ever on feature noise (.91). Variant ``static``: every epoch's
OT *value* (the factor of each group's loss) is the weighted one, as in the default, but the per-row
OT *gradient* is that of the same groups at uniform weights, so it carries where a row lies, not how
much weight it has lost. Prediction: label noise moves towards ``loss_only`` (no OT term) while
feature noise keeps the default's level.

One fit per arm and cell (default, ``static``, ``loss_only``) on the development datasets only, the
quality benchmark's cells (paper setting); 2-means F1, AUROC and precision at the noise count of the
tie-free values. One CSV row per (cell, arm).

    python -m bench.static_ot --rates 0.05 0.1 0.2 --repeats 2 --out bench/results/static_ot_dev.csv
"""

from __future__ import annotations

import contextlib

import torch

import lossval.per_epoch as per_epoch
from bench import dev_cells
from bench.common import patched
from lossval.loss import LossValLoss

ARMS = ("default", "static", "global_factor", "loss_network", "loss_only")


def static_gradient() -> contextlib.AbstractContextManager:
    """LossVal's per-epoch OT solve returns the weighted values and the uniform-weight gradients."""
    original = per_epoch.epoch_transport

    def solve(transport, w_p, Z_p, size):
        value, _ = original(transport, w_p, Z_p, size)
        _, grad = original(transport, torch.ones_like(w_p), Z_p, size)
        return value, grad

    return patched(per_epoch, epoch_transport=solve)


ORIGINAL_PARTS = LossValLoss.weight_gradient_parts


def _mean_factor_parts(self, rows, weights, batch, transport, transport_grad):
    """``weight_gradient_parts`` with the loss part ``l_n`` times the epoch's *mean* OT factor ``F(OT)``."""
    if self.combine != "product":
        return ORIGINAL_PARTS(self, rows, weights, batch, transport, transport_grad)
    ot = transport.abs()
    d_factor = self.power * ot.pow(self.power - 1) * torch.sign(transport)  # (n_groups,) F'(OT_g)
    weighted = torch.zeros_like(transport).index_add_(0, batch, weights * rows)  # (n_groups,) L_g
    return rows * ot.pow(self.power).mean(), weighted[batch] * (d_factor[batch] * transport_grad)  # as the library


def global_factor() -> contextlib.AbstractContextManager:
    """The weights' loss part is ``l_n`` times the epoch's mean OT factor instead of its own group's:
    a row is not pushed down for the group it happened to be drawn into."""
    return patched(LossValLoss, weight_gradient_parts=_mean_factor_parts)


def loss_network() -> contextlib.AbstractContextManager:
    """The network trains as ``loss_only`` does (on ``w_n l_n``, no OT factor) while the weights step as
    in :func:`global_factor`."""
    return patched(LossValLoss, factor=lambda self, transport: torch.ones_like(transport), weight_gradient_parts=_mean_factor_parts)


PATCHES = {"static": static_gradient, "global_factor": global_factor, "loss_network": loss_network}


def fit_arm(cell, arm: str) -> tuple[object, float]:
    options = {"combine": "loss_only"} if arm == "loss_only" else {}
    return dev_cells.timed_fit(cell, PATCHES[arm]() if arm in PATCHES else None, **options)

def main(argv: list[str] | None = None) -> None:
    dev_cells.main(__doc__, ARMS, dev_cells.each_arm(fit_arm), argv)


if __name__ == "__main__":
    main()
