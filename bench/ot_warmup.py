"""Experiment (issues 14 and 17): the OT term in the first epochs only, then the loss alone.

Two leads from docs/benchmarks.md 2.9 (items 8 and 10): the transport gradient carries the feature
signal from the first epoch on (AUROC .91 on feature noise before any weight moved) while it is
neutral on label noise and, once a label-noisy row's weight has fallen, pushes it back up; and the
OT part of the weights' gradient is, by elimination, what keeps the default below ``loss_only`` on
label noise. Arm ``warmup_E``: the default for the first E epochs; from epoch E + 1 on no OT solve,
the network trains on ``w_n l_n`` and the weights step on the loss part alone (as ``loss_only``),
starting from where the OT epochs left them. Prediction, written before the runs: as E falls,
label-noise F1 moves towards ``loss_only``'s while feature-noise F1 keeps most of the default's; an E
that gains on labels and loses under .01 on features and mixed would also cut the OT cost by
(30 - E) / 30 (issue 17).

One fit per arm and cell on the development datasets only, the quality benchmark's cells (paper
setting), the same seeds as ``bench.static_ot`` (whose ``default`` and ``loss_only`` rows pair with
these). One CSV row per (cell, arm).

    python -m bench.ot_warmup --rates 0.05 0.1 0.2 --repeats 2 --out bench/results/ot_warmup_dev.csv
"""

from __future__ import annotations

import contextlib

import torch

import lossval.per_epoch as per_epoch
from bench import dev_cells
from bench.common import patched
from lossval.loss import LossValLoss

ARMS = {"warmup_5": 5, "warmup_10": 10, "warmup_15": 15}


@contextlib.contextmanager
def ot_warmup(epochs: int):
    """LossVal's per-epoch schedule with the OT term solved in the first ``epochs`` epochs only."""
    solve, factor, parts = per_epoch.epoch_transport, LossValLoss.factor, LossValLoss.weight_gradient_parts
    state = {"solves": 0}

    def transport(transport, w_p, Z_p, size):
        state["solves"] += 1
        if state["solves"] <= epochs:
            return solve(transport, w_p, Z_p, size)
        groups = -(-len(w_p) // size)
        return torch.zeros(groups, device=w_p.device), torch.zeros_like(w_p)

    def off() -> bool:
        return state["solves"] > epochs

    def warm_factor(self, ot_value):
        return torch.ones_like(ot_value) if off() else factor(self, ot_value)

    def warm_parts(self, rows, weights, batch, ot_value, ot_grad):
        return (rows, torch.zeros_like(rows)) if off() else parts(self, rows, weights, batch, ot_value, ot_grad)

    with patched(per_epoch, epoch_transport=transport), patched(LossValLoss, factor=warm_factor,
                                                                 weight_gradient_parts=warm_parts):  # fmt: skip
        yield


def fit_arm(cell, arm: str) -> tuple[object, float]:
    return dev_cells.timed_fit(cell, ot_warmup(ARMS[arm]))


def main(argv: list[str] | None = None) -> None:
    dev_cells.main(__doc__, ARMS, dev_cells.each_arm(fit_arm), argv)


if __name__ == "__main__":
    main()
