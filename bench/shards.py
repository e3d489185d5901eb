"""Sharded valuation, simulated: value 4 shards of a table separately against one reference set.

What a cluster of Prefect workers would do with a table too large for one
machine (docs/scaling.md): split the rows into shards, give every worker one
shard and the *same* validation (reference) set, run ``LossVal.fit`` per
shard, concatenate the values. Each row's weight lives only with its shard,
and so does the network that learns alongside it.

Per cell (dataset, noise kind, repetition; a table from
:func:`bench.scale.scaled_table` with ``--rate`` of its rows corrupted):

- ``whole``: one fit on all rows; ``whole'``: the same with another seed
  (how much two runs on the same rows differ anyway);
- ``sharded``: a random split into ``--shards`` equal shards, one fit each
  (seeds differ per shard), values concatenated; the 2-means threshold is
  taken once over all values (``f1_pooled``, what a merged report does) and
  per shard (``f1_per_shard``, what a worker deciding alone does).

Reported: F1 and AUROC of each, and the Spearman correlation of the values
of ``sharded`` with ``whole`` and of ``whole'`` with ``whole``.

    python -m bench.shards --rows 4000 --val 100 --repeats 2
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.common import REPO, add_table_arguments, datasets_dir, results_csv
from bench.scale import parse_options, scaled_table
from lossval import LossVal
from lossval.metrics import detection_auroc, detection_f1, f1_of_flags
from lossval.threshold import two_means_mask

COLUMNS = [
    "dataset", "kind", "rep", "rows", "val", "shards", "options",
    "f1_whole", "f1_whole2", "f1_pooled", "f1_per_shard", "auroc_whole", "auroc_sharded",
    "spearman_sharded", "spearman_seed",
]  # fmt: skip


def value(data: dict, rows: np.ndarray, seed: int, options: dict) -> np.ndarray:
    lv = LossVal(data["task"], random_state=seed, progress=False, device="cpu", **options)
    return lv.fit(data["X_train"][rows], data["y_train"][rows], data["X_val"], data["y_val"]).values_.to_numpy()


def cell(data: dict, *, shards: int, seed: int, options: dict) -> dict[str, float]:
    n = len(data["X_train"])
    noisy = data["noisy"]
    everything = np.arange(n)
    whole = value(data, everything, seed, options)
    whole2 = value(data, everything, seed + 1, options)
    split = np.array_split(np.random.default_rng(seed).permutation(n), shards)
    sharded = np.empty(n)
    per_shard_flags = np.zeros(n, dtype=bool)
    for i, rows in enumerate(split):
        sharded[rows] = value(data, rows, seed + 100 + i, options)
        per_shard_flags[rows] = two_means_mask(sharded[rows])
    return {
        "f1_whole": detection_f1(whole, noisy), "f1_whole2": detection_f1(whole2, noisy),
        "f1_pooled": detection_f1(sharded, noisy), "f1_per_shard": f1_of_flags(per_shard_flags, noisy),
        "auroc_whole": detection_auroc(whole, noisy), "auroc_sharded": detection_auroc(sharded, noisy),
        "spearman_sharded": float(spearmanr(whole, sharded).statistic),
        "spearman_seed": float(spearmanr(whole, whole2).statistic),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(parser, rows=4000, val=100, repeats=1)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--lossval", nargs="*", default=[], metavar="KEY=VALUE", help="LossVal options")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "shards.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = datasets_dir(args.datasets)
    options = parse_options(args.lossval)
    with results_csv(args.out, COLUMNS, key=lambda r: tuple(r[c] for c in COLUMNS[:7])) as (done, write):
        for rep in range(args.repeats):
            for name in args.names:
                for kind in args.kinds:
                    key = (name, kind, str(rep), str(args.rows), str(args.val), str(args.shards), repr(sorted(options.items())))
                    if key in done:
                        continue
                    data = scaled_table(name, args.rows, args.val, folder=folder, seed=2000 + rep, noise_rate=args.rate, kind=kind)
                    result = cell(data, shards=args.shards, seed=rep, options=options)
                    write(dict(zip(COLUMNS[:7], key), **{k: round(v, 4) for k, v in result.items()}))
    with args.out.open() as fh:
        rows = [r for r in csv.DictReader(fh) if (r["rows"], r["val"], r["shards"]) == (str(args.rows), str(args.val), str(args.shards))]
    print(f"means over {len(rows)} cells ({args.rows} rows, {args.val} validation rows, {args.shards} shards):")
    for kind in args.kinds:
        sub = [r for r in rows if r["kind"] == kind]
        if sub:
            means = {c: statistics.mean(float(r[c]) for r in sub) for c in COLUMNS[7:]}
            print(f"  {kind}: " + ", ".join(f"{c} {v:.3f}" for c, v in means.items()))


if __name__ == "__main__":
    main()
