"""The small check behind the calibrated quarantine's defaults (params.yaml: quarantine.canary_share,
min_precision, min_canary_auroc), on the development datasets only.

For each dataset x noise rate: a training set with injected mixed noise, a trusted reference, canaries
made from the reference (lossval.canary), one LossVal fit over training rows + canaries, then the
calibrated decision at several ``min_precision``. Prints one CSV line per (cell, min_precision):
canary AUROC, true / estimated bad count (with interval), flagged count, true / estimated precision.

    nice -n 10 python -m bench.canary_defaults --rows 2000 --reference 400 --rates 0,0.1,0.2
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from bench.common import DEVELOPMENT, datasets_dir, load
from lossval import LossVal
from lossval.calibrate import calibrated_decision, tie_free_ranks
from lossval.canary import make_canaries
from lossval.noise import add_noise


def cell(name: str, X: np.ndarray, y: np.ndarray, task: str, *, rate: float, rows: int, reference: int, share: float, seed: int, epochs: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))[: rows + reference]
    tr, ref = order[:rows], order[rows:]
    Xn, yn, bad_rows, _ = add_noise(X[tr], y[tr], kind="mixed", rate=rate, task=task, rng=rng)
    truth = np.zeros(rows, dtype=bool)
    truth[bad_rows] = True
    cols = [f"x{i}" for i in range(X.shape[1])]
    X_ref, y_ref = pd.DataFrame(X[ref], columns=cols), pd.Series(y[ref])
    can = make_canaries(X_ref, y_ref, task=task, share=share, seed=seed)
    X_all = pd.concat([pd.DataFrame(Xn, columns=cols), can.X], ignore_index=True)
    y_all = pd.concat([pd.Series(yn), can.y], ignore_index=True)
    lv = LossVal(task, epochs=epochs, random_state=seed, progress=False).fit(X_all, y_all, X_ref[can.keep], y_ref[can.keep])
    ranks = tie_free_ranks(lv.values_.to_numpy(), loss_part=lv.parts_["loss_part"].to_numpy(), transport_part=lv.parts_["transport_part"].to_numpy())
    return ranks, truth, can.corrupted


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=None, help="folder of the datasets (default ../shared/datasets)")
    p.add_argument("--names", default=",".join(DEVELOPMENT))
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--reference", type=int, default=400)
    p.add_argument("--rates", default="0,0.1,0.2")
    p.add_argument("--share", type=float, default=0.25)
    p.add_argument("--precisions", default="0.5,0.6,0.7,0.8")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    folder = datasets_dir(a.datasets)
    print("dataset,rate,share,min_precision,canary_auroc,true_bad,est_bad,est_low,est_high,flagged,precision,est_precision,recall,est_recall")
    for name in a.names.split(","):
        X, y, task = load(name, folder)
        for rate in map(float, a.rates.split(",")):
            ranks, truth, corrupted = cell(name, X, y, task, rate=rate, rows=a.rows, reference=a.reference, share=a.share, seed=a.seed, epochs=a.epochs)
            for mp in map(float, a.precisions.split(",")):
                d, c = calibrated_decision(ranks, n_train=a.rows, corrupted=corrupted, min_precision=mp, max_fraction=0.25, min_auroc=0.0)
                tp = int((d.flagged & truth).sum())
                prec = tp / d.flagged.sum() if d.flagged.any() else float("nan")
                rec = tp / truth.sum() if truth.any() else float("nan")
                print(
                    f"{name},{rate},{a.share},{mp},{c.canary_auroc:.3f},{truth.sum()},{c.estimated_bad:.0f},{c.estimated_bad_low:.0f},"
                    f"{c.estimated_bad_high:.0f},{d.flagged.sum()},{prec:.3f},{c.precision:.3f},{rec:.3f},{c.recall:.3f}",
                    flush=True,
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
