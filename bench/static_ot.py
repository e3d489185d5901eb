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

import argparse
import contextlib
import itertools
import time
from pathlib import Path

import torch

import lossval.per_epoch as per_epoch
from bench.common import DEVELOPMENT, datasets_dir, load, patched, results_csv
from bench.quality import Spec, make_cell
from lossval import LossVal
from lossval.loss import LossValLoss
from lossval.metrics import detection_auroc, detection_f1, precision_at_noise_count

ARMS = ("default", "static", "global_factor", "loss_network", "loss_only")
COLUMNS = ["dataset", "task", "kind", "rate", "rep", "arm", "f1", "auroc", "precision_at_k", "seconds"]


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
    seed = cell.seed % (2**31)
    options = {"combine": "loss_only"} if arm == "loss_only" else {}
    model = LossVal(cell.task, random_state=seed, progress=False, device="cpu", **options)
    started = time.perf_counter()
    with PATCHES.get(arm, contextlib.nullcontext)():
        model.fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val)
    return model, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reps", nargs="+", type=int, default=None, help="these repetitions only (default: 0 .. repeats-1)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--out", type=Path, required=True, help="CSV, appended to (resumable)")
    args = parser.parse_args(argv)
    if not set(args.names) <= set(DEVELOPMENT):
        raise SystemExit(f"development datasets only: {list(DEVELOPMENT)}")
    torch.set_num_threads(1)
    folder, data = datasets_dir(args.datasets), {}
    reps = args.reps if args.reps is not None else range(args.repeats)
    key = lambda r: (r["dataset"], r["kind"], float(r["rate"]), int(r["rep"]), r["arm"])  # noqa: E731
    with results_csv(args.out, COLUMNS, key) as (done, write):
        for rep, rate, kind, name in itertools.product(reps, args.rates, args.kinds, args.names):
            arms = [arm for arm in args.arms if (name, kind, rate, rep, arm) not in done]
            if not arms:
                continue
            if name not in data:
                data[name] = load(name, folder)
            X, y, task = data[name]
            cell = make_cell(Spec("paper", name, kind, rate, rep), X, y, task)
            noisy = cell.noise != ""
            for arm in arms:
                model, seconds = fit_arm(cell, arm)
                v = model.values_.to_numpy()
                write(dict(dataset=name, task=task, kind=kind, rate=rate, rep=rep, arm=arm,
                           f1=round(detection_f1(v, noisy), 6), auroc=round(detection_auroc(v, noisy), 6),
                           precision_at_k=round(precision_at_noise_count(v, noisy), 6), seconds=round(seconds, 2)))  # fmt: skip

if __name__ == "__main__":
    main()
