"""Experiment (issue 14): decoupled weight decay on LossVal's network, so it memorises noisy rows less.

A row's loss part is its loss under the network trained alongside the weights; the more the network
fits a mislabelled row, the smaller that row's loss and the weaker its signal. The default trains the
network with Adam and no regularisation. Arm ``decay_L``: the network's optimizer is AdamW with
``weight_decay=L`` (decoupled: each step shrinks the parameters by ``lr * L``), the weights and the OT
term as in the default. Prediction, written before the runs: label noise gains (the noisy rows' loss
stays high), feature noise is unchanged or gains (the OT part does not depend on the fit); too much
decay underfits and loses both.

One fit per arm and cell on the development datasets only (paper setting), the seeds of
``bench.static_ot``, whose ``default`` and ``loss_only`` rows pair with these.

    python -m bench.net_decay --repeats 2 --out bench/results/net_decay_dev.csv
"""

from __future__ import annotations

import torch

import lossval.per_epoch as per_epoch
from bench import dev_cells
from bench.common import patched

ARMS = {"decay_0.3": 0.3, "decay_1": 1.0, "decay_3": 3.0}


class _Optim:
    """``per_epoch``'s view of ``torch.optim`` with its network optimizer swapped for AdamW."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def Adam(self, params, lr):  # noqa: N802 - the name per_epoch calls
        return torch.optim.AdamW(params, lr=lr, weight_decay=self.decay)


class _Torch:
    """``torch`` as ``per_epoch`` sees it, but for ``optim``."""

    def __init__(self, decay: float) -> None:
        self.optim = _Optim(decay)

    def __getattr__(self, name):
        return getattr(torch, name)


def fit_arm(cell, arm: str) -> tuple[object, float]:
    return dev_cells.timed_fit(cell, patched(per_epoch, torch=_Torch(ARMS[arm])))

def main(argv: list[str] | None = None) -> None:
    dev_cells.main(__doc__, ARMS, dev_cells.each_arm(fit_arm), argv)


if __name__ == "__main__":
    main()
