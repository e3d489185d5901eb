"""LossVal.fit against plain training of the same MLP, at the paper's size.

Same data, epochs, batch size, optimizer and network; prints both wall times
and their ratio. Plain and LossVal fits are interleaved (plain, LossVal,
plain, LossVal, ...) after one warm-up each, so a slow spell of a shared
machine hits both; times and ratio are medians over --repeats rounds.

    python -m bench.speed [--datasets DIR] [--repeats 5] [--batch-size 32 128] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.common import datasets_dir, load, machine
from lossval import MLP, LossVal


def _seconds(make, fit_args) -> float:
    started = time.perf_counter()
    make().fit(*fit_args)
    return time.perf_counter() - started


def interleaved(plain, plain_args, lossval, lossval_args, repeats: int) -> tuple[float, float, float]:
    """Median plain time, median LossVal time and median per-round ratio."""
    _seconds(plain, plain_args), _seconds(lossval, lossval_args)  # warm-up
    rounds = [(_seconds(plain, plain_args), _seconds(lossval, lossval_args)) for _ in range(repeats)]
    return (
        statistics.median(p for p, _ in rounds),
        statistics.median(v for _, v in rounds),
        statistics.median(v / p for p, v in rounds),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="folder of the shared datasets (default ../shared/datasets)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--variants", nargs="+", default=["default", "paper"], choices=["default", "paper"])
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    print("| dataset | task | batch | variant | plain fit (s) | LossVal fit (s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in ("2dplanes", "kin8nm"):
        X, y, task = load(name, folder)
        idx = np.random.default_rng(0).permutation(len(X))[:1100]
        fit_train, fit_all = (X[idx[:1000]], y[idx[:1000]]), (X[idx[:1000]], y[idx[:1000]], X[idx[1000:]], y[idx[1000:]])
        for batch in args.batch_size:
            common = dict(epochs=args.epochs, batch_size=batch, random_state=0, progress=False, device="cpu")
            for variant in args.variants:
                make = (lambda: LossVal(task, **common)) if variant == "default" else (lambda: LossVal.paper(task, **common))
                plain, lossval, ratio = interleaved(lambda: MLP(task, **common), fit_train, make, fit_all, args.repeats)
                print(f"| {name} | {task} | {batch} | {variant} | {plain:.2f} | {lossval:.2f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
