"""Experiment (issue 14): a value from both per-row parts of the default's objective, on development data only.

One fit of the default ``LossVal(task)`` per cell (the quality benchmark's
protocol, ``bench.quality.make_cell``), then several values scored from that
same fit (higher = more valuable):

- ``weight``: the learned weights (the default's value);
- ``loss``: ``-loss_part`` (the row's mean loss);
- ``transport``: ``-transport_part`` (the row's mean OT gradient);
- ``max_z``: ``-max(z(loss_part), z(transport_part))``, robust z-scores
  (:func:`lossval.reasons.robust_z`): a row is as bad as its worse part;
- ``sum_z``: ``-(z(loss_part) + z(transport_part))``;
- ``weight_max_z``: ``-max(z(-weight), z(loss_part), z(transport_part))``.

Only the development datasets (adult, california_housing,
covertype_binary_subset), never the eight reported ones.

    python -m bench.parts_value [--rates 0.1 0.2] [--repeats 2] [--out bench/results/parts_dev.csv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.common import REPO, datasets_dir, load, results_csv
from bench.quality import Spec, make_cell
from lossval import LossVal
from lossval.metrics import detection_auroc, detection_f1, precision_at_noise_count
from lossval.reasons import robust_z

DEVELOPMENT = ("adult", "california_housing", "covertype_binary_subset")
COLUMNS = ["setting", "dataset", "task", "kind", "rate", "rep", "value", "f1", "auroc", "precision_at_k", "seconds"]


def part_values(weights: pd.Series, parts: pd.DataFrame) -> dict[str, np.ndarray]:
    """The candidate values (higher = more valuable) from one fit's weights and per-row parts."""
    z_loss, z_transport = robust_z(parts["loss_part"]).to_numpy(), robust_z(parts["transport_part"]).to_numpy()
    z_weight = robust_z(-weights).to_numpy()
    return {
        "weight": weights.to_numpy(),
        "loss": -parts["loss_part"].to_numpy(),
        "transport": -parts["transport_part"].to_numpy(),
        "max_z": -np.maximum(z_loss, z_transport),
        "sum_z": -(z_loss + z_transport),
        "weight_max_z": -np.maximum.reduce([z_weight, z_loss, z_transport]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT), choices=DEVELOPMENT)
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--setting", default="paper", choices=["paper", "trusted"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "parts_dev.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = datasets_dir(args.datasets)
    key = lambda r: (r["setting"], r["dataset"], r["kind"], str(float(r["rate"])), str(int(r["rep"])))  # noqa: E731
    with results_csv(args.out, COLUMNS, key) as (done, write):
        data = {}
        for rep in range(args.repeats):
            for rate in args.rates:
                for kind in args.kinds:
                    for name in args.names:
                        spec = Spec(args.setting, name, kind, rate, rep)
                        if (spec.setting, name, kind, str(float(rate)), str(rep)) in done:
                            continue
                        if name not in data:
                            data[name] = load(name, folder)
                        X, y, task = data[name]
                        cell = make_cell(spec, X, y, task)
                        started = time.perf_counter()
                        lv = LossVal(task, random_state=cell.seed % (2**31), progress=False, device="cpu")
                        lv.fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val)
                        seconds = round(time.perf_counter() - started, 2)
                        for value, v in part_values(lv.values_, lv.parts_).items():
                            write(dict(setting=spec.setting, dataset=name, task=task, kind=kind, rate=rate, rep=rep, value=value,
                                       f1=round(detection_f1(v, cell.noisy), 6), auroc=round(detection_auroc(v, cell.noisy), 6),
                                       precision_at_k=round(precision_at_noise_count(v, cell.noisy), 6), seconds=seconds))  # fmt: skip


if __name__ == "__main__":
    main()
