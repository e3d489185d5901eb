"""Experiment (issue 14): the value averaged over a few fits that differ only in their seed.

One LossVal fit is noisy: its network's initialisation and batch order move a row's final weight,
and 2-means then splits a noisy value distribution. A row that is truly harmful should be
down-weighted by every fit, a clean row that one fit happened to push down by few. Arm ``mean_K``:
the mean of the first K fits' values (tie-free values, as the default gives them), each fit with
its own seed and everything else (split, noise, validation rows) the same. Prediction, written
before the runs: K = 3 raises F1 and AUROC in every noise kind, by about .01-.03 F1, at K times the
cost; if only one kind gains, the trade is the one of docs/benchmarks.md 2.9 items 8 and 10 again.

Development datasets only, the quality benchmark's cells (paper setting). One CSV row per (cell,
arm): ``single`` is fit 0 alone (the default), ``mean_2`` and ``mean_3`` the averages.

    python -m bench.seed_ensemble --rates 0.05 0.1 0.2 --repeats 2 --out bench/results/seed_ensemble_dev.csv
"""

from __future__ import annotations

import numpy as np

from bench import dev_cells

FITS = 3
ARMS = ("single", *(f"mean_{k}" for k in range(2, FITS + 1)))  # arm i: the mean of the first i + 1 fits
#: Seed offset between the fits of one cell (a prime, so the fits' seeds never meet another cell's).
STRIDE = 7919


def fit_values(cell, fit: int) -> tuple[np.ndarray, float]:
    """The default's tie-free values of fit number ``fit`` of ``cell`` (fit 0 = the benchmark's own seed)."""
    model, seconds = dev_cells.timed_fit(cell, seed=cell.seed + fit * STRIDE)
    return model.values_.to_numpy(), seconds


def fit(cell, arms: list[str]):
    """Every arm of ``cell`` from the same three fits (any pending arm refits all three)."""
    fits = [fit_values(cell, k) for k in range(FITS)]
    for arm, k in zip(ARMS, range(1, FITS + 1)):
        if arm in arms:
            yield arm, np.mean([values for values, _ in fits[:k]], axis=0), sum(seconds for _, seconds in fits[:k])


def main(argv: list[str] | None = None) -> None:
    dev_cells.main(__doc__, ARMS, fit, argv)


if __name__ == "__main__":
    main()
