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
- ``weight_max_z``: ``-max(z(-weight), z(loss_part), z(transport_part))``;
- ``tie_free``: the weights with their ties broken by the parts (:func:`lossval.scoring.tie_free_values`,
  the default since issue 14's second round);
- ``q_<form>``: rank-normal scores ``u`` (probit of the rank) of the badness of the weight (``w``), the
  loss part (``l``) and the transport part (``t``) combined as ``<form>``, and mapped onto the sorted
  weights (the weight's distribution, so 2-means sees the weight's shape, with the combination's order):
  ``q_l`` (loss part alone), ``q_w+l``, ``q_w+l+t``, ``q_softmax(l,t)`` (``log(e^4l + e^4t) / 4``),
  ``q_w+softmax(l,t)``, ``q_w+reason`` (``w`` plus ``t`` where the row's reason is "feature", else ``l``).

``--rows DIR`` scores the fits dumped by ``bench.parts_rows`` (development datasets, one default fit and
one ``loss_only`` fit per cell) instead of fitting; ``loss_only`` is then scored too, as the bar on label noise.

Only the development datasets (adult, california_housing,
covertype_binary_subset), never the eight reported ones.

    python -m bench.parts_value [--rates 0.1 0.2] [--repeats 2] [--out bench/results/parts_dev.csv]
    python -m bench.parts_value --rows bench/results/dev_rows.tmp --out bench/results/parts_dev_rows.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.common import DEVELOPMENT, REPO, datasets_dir, load, results_csv
from bench.quality import Spec, make_cell
from lossval import LossVal
from lossval.metrics import detection_auroc, detection_f1, precision_at_noise_count
from lossval.reasons import FEATURE_Z, robust_z
from lossval.scoring import tie_free_values
from scipy.stats import norm, rankdata

COLUMNS = ["setting", "dataset", "task", "kind", "rate", "rep", "value", "f1", "auroc", "precision_at_k", "seconds"]


def part_values(weights: pd.Series, parts: pd.DataFrame) -> dict[str, np.ndarray]:
    """The candidate values (higher = more valuable) from one fit's weights and per-row parts."""
    z_loss, z_transport = robust_z(parts["loss_part"]).to_numpy(), robust_z(parts["transport_part"]).to_numpy()
    z_weight = robust_z(-weights).to_numpy()
    w, loss, transport = weights.to_numpy(), parts["loss_part"].to_numpy(), parts["transport_part"].to_numpy()
    uw, ul, ut = _nscore(-w), _nscore(loss), _nscore(transport)
    soft = np.logaddexp(4 * ul, 4 * ut) / 4
    forms = {"l": ul, "w+l": uw + ul, "w+l+t": uw + ul + ut, "softmax(l,t)": soft, "w+softmax(l,t)": uw + soft,
             "w+reason": uw + np.where(z_transport >= FEATURE_Z, ut, ul)}  # fmt: skip
    return {
        "tie_free": tie_free_values(w, loss_part=loss, transport_part=transport),
        **{f"q_{name}": _on_weights(-bad, w) for name, bad in forms.items()},
        "weight": weights.to_numpy(),
        "loss": -parts["loss_part"].to_numpy(),
        "transport": -parts["transport_part"].to_numpy(),
        "max_z": -np.maximum(z_loss, z_transport),
        "sum_z": -(z_loss + z_transport),
        "weight_max_z": -np.maximum.reduce([z_weight, z_loss, z_transport]),
    }


def _nscore(x: np.ndarray) -> np.ndarray:
    """Rank-normal score: the probit of the mid-rank, (N,); higher x -> higher score."""
    return norm.ppf((rankdata(x) - 0.5) / len(x))


def _on_weights(score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The sorted weights laid out in the order of ``score`` (higher = more valuable), tie-free."""
    rank = np.argsort(np.argsort(score, kind="stable"), kind="stable")
    return np.sort(weights)[rank] * (1 + 1e-6 * rank / len(rank))


def score_rows(folder: Path, write, done: set) -> None:
    """Score every dumped development fit in ``folder`` (``bench.parts_rows``) with every candidate value."""
    for path in sorted(folder.glob("*.npz")):
        setting, rest = path.stem.split("_", 1)
        name, kind, rate, rep = rest.rsplit("_", 3)
        if name not in DEVELOPMENT or (setting, name, kind, str(float(rate)), str(int(rep))) in done:
            continue
        dump = dict(np.load(path))
        noisy = dump["noise"] != ""
        parts = pd.DataFrame({"loss_part": dump["loss_part"], "transport_part": dump["transport_part"]})
        values = {**part_values(pd.Series(dump["weight"]), parts), "loss_only": dump["loss_only"]}
        for value, v in values.items():
            write(dict(setting=setting, dataset=name, task=str(dump["task"]), kind=kind, rate=float(rate), rep=int(rep), value=value,
                       f1=round(detection_f1(v, noisy), 6), auroc=round(detection_auroc(v, noisy), 6),
                       precision_at_k=round(precision_at_noise_count(v, noisy), 6), seconds=float(dump.get("seconds", np.nan))))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT), choices=DEVELOPMENT)
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--setting", default="paper", choices=["paper", "trusted"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "parts_dev.csv")
    parser.add_argument("--rows", type=Path, help="score the fits dumped here by bench.parts_rows instead of fitting")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = datasets_dir(args.datasets)
    key = lambda r: (r["setting"], r["dataset"], r["kind"], str(float(r["rate"])), str(int(r["rep"])))  # noqa: E731
    with results_csv(args.out, COLUMNS, key) as (done, write):
        if args.rows:
            score_rows(args.rows, write, done)
            return
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
