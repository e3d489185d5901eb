"""Per-row dump of the default fit (issue 14): weights, parts and test score per cell, so values
computed from one fit (:mod:`lossval.scoring`) can be scored offline without refitting.

Development datasets (adult, california_housing, covertype_binary_subset; default) also get the
``loss_only`` ablation's weights, the bar on label noise. ``--reported`` runs the eight reported
datasets instead (no ablation): their dump is only read after a value was chosen on the development
datasets. One ``.npz`` per cell in ``--out`` (git-ignored ``bench/results/*.tmp``).

    python -m bench.parts_rows [--rates 0.05 0.1 0.2] [--repeats 2] [--setting paper]
    python -m bench.parts_rows --reported --rates 0.05 0.1 0.15 0.2 --repeats 5 --out bench/results/reported_rows.tmp
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import CLASSIFICATION, DEVELOPMENT, REGRESSION, REPO, datasets_dir, load
from bench.methods import Cell, test_score
from bench.quality import Spec, make_cell
from lossval import LossVal


def dump_cell(cell: Cell, path: Path, *, epochs: int = 30, loss_only: bool = False) -> None:
    """Fit the default ``LossVal`` on one cell (the quality benchmark's seed) and save its weights, parts,
    truth, test score and fit seconds to ``path`` (``.npz``); ``loss_only``: also the ablation's weights."""
    seed = cell.seed % (2**31)
    started = time.perf_counter()
    lv = LossVal(cell.task, epochs=epochs, random_state=seed, progress=False, device="cpu")
    lv.fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val)
    seconds = time.perf_counter() - started
    extra = {}
    if loss_only:
        lo = LossVal(cell.task, epochs=epochs, combine="loss_only", random_state=seed, progress=False, device="cpu")
        extra["loss_only"] = lo.fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val).values_.to_numpy()
    np.savez(path, weight=getattr(lv, "weights_", lv.values_).to_numpy(), loss_part=lv.parts_["loss_part"].to_numpy(),
             transport_part=lv.parts_["transport_part"].to_numpy(), noise=cell.noise.astype(str), task=cell.task,
             test_score=test_score(lv, cell), seconds=seconds, **extra)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=None, help="default: the development datasets (--reported: the eight)")
    parser.add_argument("--reported", action="store_true", help="the eight reported datasets, default fit only")
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--setting", default="paper", choices=["paper", "trusted"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "dev_rows.tmp")
    args = parser.parse_args(argv)
    args.names = args.names or list((*CLASSIFICATION, *REGRESSION) if args.reported else DEVELOPMENT)
    torch.set_num_threads(1)
    folder, data = datasets_dir(args.datasets), {}
    args.out.mkdir(parents=True, exist_ok=True)
    for rep in range(args.repeats):
        for rate in args.rates:
            for kind in args.kinds:
                for name in args.names:
                    path = args.out / f"{args.setting}_{name}_{kind}_{rate:g}_{rep}.npz"
                    if path.exists():
                        continue
                    if name not in data:
                        data[name] = load(name, folder)
                    X, y, task = data[name]
                    started = time.perf_counter()
                    dump_cell(make_cell(Spec(args.setting, name, kind, rate, rep), X, y, task), path, loss_only=not args.reported)
                    print(f"{path.name} {time.perf_counter() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
