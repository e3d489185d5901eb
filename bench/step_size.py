"""Experiment (issue 14, item 4): the default's weight step size, chosen again on the development datasets.

Issue 3 chose ``weight_lr=0.04`` on cells of the eight reported datasets, by the two label-noise
columns (docs/benchmarks.md 2.7, row 7); ``bench.lodo`` replays that choice without one reported
dataset at a time. This asks the question on data that was never reported: the same four step sizes
(0.01, 0.02, 0.04 = the default, 0.08; each row's step clipped at 3x the typical one) on the
development datasets, paper setting. Prediction, written before the runs: as on the reported grid,
smaller steps trade label-noise F1 (-.02 to -.04 at 0.01) for feature-noise F1 (+.05 or more), and
by issue 3's criterion (label noise) 0.04 or 0.08 is chosen.

One fit per arm and cell, the seeds of ``bench.static_ot`` (its ``default`` rows pair with ``lr_0.04``).

    python -m bench.step_size --repeats 2 --out bench/results/step_size_dev.csv
"""

from __future__ import annotations

from bench import dev_cells

ARMS = {"lr_0.01": 0.01, "lr_0.02": 0.02, "lr_0.04": 0.04, "lr_0.08": 0.08}


def fit_arm(cell, arm: str, **options) -> tuple[object, float]:
    return dev_cells.timed_fit(cell, weight_lr=ARMS[arm], **options)


def main(argv: list[str] | None = None) -> None:
    dev_cells.main(__doc__, ARMS, dev_cells.each_arm(fit_arm), argv)


if __name__ == "__main__":
    main()
