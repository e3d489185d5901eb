"""The loop the development-dataset experiments share (``bench.static_ot``, ``bench.seed_ensemble``,
``bench.ot_warmup``, ``bench.net_decay``): the quality benchmark's cells (paper setting) on the development datasets only,
several arms per cell, one resumable CSV row per (cell, arm) with the arm's 2-means F1, AUROC and
precision at the noise count."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import DEVELOPMENT, datasets_dir, load, results_csv
from bench.methods import Cell
from bench.quality import Spec, make_cell
from lossval import LossVal
from lossval.metrics import detection_auroc, detection_f1, precision_at_noise_count

COLUMNS = ["dataset", "task", "kind", "rate", "rep", "arm", "f1", "auroc", "precision_at_k", "seconds"]
#: ``fit(cell, arms)`` yields ``(arm, values, seconds)`` for each of the pending ``arms`` of ``cell``.
Fit = Callable[[Cell, list[str]], Iterable[tuple[str, np.ndarray, float]]]


def parser(doc: str | None, arms: Iterable[str]) -> argparse.ArgumentParser:
    arms = list(arms)
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reps", nargs="+", type=int, default=None, help="these repetitions only (default: 0 .. repeats-1)")
    parser.add_argument("--arms", nargs="+", default=arms, choices=arms)
    parser.add_argument("--out", type=Path, required=True, help="CSV, appended to (resumable)")
    return parser


def run(args: argparse.Namespace, fit: Fit) -> None:
    """Every cell of ``args`` on one torch thread; ``fit`` is asked only for the arms not yet in ``args.out``."""
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
            for arm, values, seconds in fit(cell, arms):
                write(dict(dataset=name, task=task, kind=kind, rate=rate, rep=rep, arm=arm,
                           f1=round(detection_f1(values, noisy), 6), auroc=round(detection_auroc(values, noisy), 6),
                           precision_at_k=round(precision_at_noise_count(values, noisy), 6), seconds=round(seconds, 2)))  # fmt: skip


def each_arm(fit_arm: Callable[[Cell, str], tuple[Any, ...]]) -> Fit:
    """A :data:`Fit` from ``fit_arm(cell, arm) -> (fitted LossVal, seconds, ...)``: one fit per arm."""

    def fit(cell: Cell, arms: list[str]) -> Iterable[tuple[str, np.ndarray, float]]:
        for arm in arms:
            model, seconds = fit_arm(cell, arm)[:2]
            yield arm, model.values_.to_numpy(), seconds

    return fit


def main(doc: str | None, arms: Iterable[str], fit: Fit, argv: list[str] | None = None) -> None:
    """An experiment's command line: :func:`parser`'s options, then :func:`run`."""
    run(parser(doc, arms).parse_args(argv), fit)


def timed_fit(cell: Cell, within: contextlib.AbstractContextManager | None = None, *, seed: int | None = None,
              **options: Any) -> tuple[LossVal, float]:  # fmt: skip
    """The default LossVal (with ``options``) fitted on ``cell`` inside ``within`` (a variant's patch), one
    CPU thread's worth, seeded by the cell unless ``seed``; returns the model and the fit's seconds."""
    seed = cell.seed if seed is None else seed
    model = LossVal(cell.task, random_state=seed % (2**31), progress=False, device="cpu", **options)
    started = time.perf_counter()
    with within or contextlib.nullcontext():
        model.fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val)
    return model, time.perf_counter() - started
