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

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import DEVELOPMENT, datasets_dir, load, results_csv
from bench.quality import Spec, make_cell
from lossval import LossVal
from lossval.metrics import detection_auroc, detection_f1, precision_at_noise_count

FITS = 3
ARMS = ("single", "mean_2", "mean_3")
COLUMNS = ["dataset", "task", "kind", "rate", "rep", "arm", "f1", "auroc", "precision_at_k", "seconds"]
#: Seed offset between the fits of one cell (a prime, so the fits' seeds never meet another cell's).
STRIDE = 7919


def fit_values(cell, fit: int) -> tuple[np.ndarray, float]:
    """The default's tie-free values of fit number ``fit`` of ``cell`` (fit 0 = the benchmark's own seed)."""
    seed = (cell.seed + fit * STRIDE) % (2**31)
    model = LossVal(cell.task, random_state=seed, progress=False, device="cpu")
    started = time.perf_counter()
    model.fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val)
    return model.values_.to_numpy(), time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="CSV, appended to (resumable)")
    args = parser.parse_args(argv)
    if not set(args.names) <= set(DEVELOPMENT):
        raise SystemExit(f"development datasets only: {list(DEVELOPMENT)}")
    torch.set_num_threads(1)
    folder, data = datasets_dir(args.datasets), {}
    key = lambda r: (r["dataset"], r["kind"], float(r["rate"]), int(r["rep"]), r["arm"])  # noqa: E731
    with results_csv(args.out, COLUMNS, key) as (done, write):
        for rep, rate, kind, name in itertools.product(range(args.repeats), args.rates, args.kinds, args.names):
            if all((name, kind, rate, rep, arm) in done for arm in ARMS):
                continue
            if name not in data:
                data[name] = load(name, folder)
            X, y, task = data[name]
            cell = make_cell(Spec("paper", name, kind, rate, rep), X, y, task)
            noisy = cell.noise != ""
            fits = [fit_values(cell, fit) for fit in range(FITS)]
            for arm, k in zip(ARMS, (1, 2, 3)):
                v = np.mean([values for values, _ in fits[:k]], axis=0)
                write(dict(dataset=name, task=task, kind=kind, rate=rate, rep=rep, arm=arm,
                           f1=round(detection_f1(v, noisy), 6), auroc=round(detection_auroc(v, noisy), 6),
                           precision_at_k=round(precision_at_noise_count(v, noisy), 6),
                           seconds=round(sum(s for _, s in fits[:k]), 2)))  # fmt: skip


if __name__ == "__main__":
    main()
