"""Sharded valuation: value K shards of a table separately against one reference set, as the flow does
with ``value.shards: K`` (rows split by :func:`cleaning.value.shard_of`, a hash of the row id).

What a cluster of Prefect workers would do with a table too large for one
machine (docs/scaling.md): split the rows into shards, give every worker one
shard and the *same* validation (reference) set, run ``LossVal.fit`` per
shard, concatenate the values. Each row's weight lives only with its shard,
and so does the network that learns alongside it.

Per cell (dataset, noise kind, repetition; a table from
:func:`bench.scale.scaled_table` with ``--rate`` of its rows corrupted):

- ``whole``: one fit on all rows; ``whole'``: the same with another seed
  (how much two runs on the same rows differ anyway);
- ``sharded``: the flow's split into ``--shards`` shards by a hash of the row id
  (each K of ``--shards`` in turn), one fit each, values concatenated; the 2-means threshold is
  taken once over all values (``f1_pooled``, what a merged report does) and
  per shard (``f1_per_shard``, what a worker deciding alone does).

Reported: F1 and AUROC of each, the Spearman correlation of the values
of ``sharded`` with ``whole`` and of ``whole'`` with ``whole``, and the wall time of
the whole fit and of all K shard fits one after the other on this machine.

    python -m bench.shards --rows 4000 --val 100 --repeats 2
    python -m bench.shards --names electricity --kinds mixed --rows 1000000 --val 1000 --shards 4 8 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
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
    "spearman_sharded", "spearman_seed", "seconds_whole", "seconds_sharded",
]  # fmt: skip


def value(data: dict, rows: np.ndarray, seed: int, options: dict) -> np.ndarray:
    lv = LossVal(data["task"], random_state=seed, progress=False, device="cpu", **options)
    return lv.fit(data["X_train"][rows], data["y_train"][rows], data["X_val"], data["y_val"]).values_.to_numpy()


def cells(data: dict, *, shards: list[int], seed: int, options: dict, seed_check: bool = True) -> dict[int, dict[str, float]]:
    """One whole fit (and one with another seed), then each K of ``shards``: K shard fits split as the flow splits."""
    from cleaning.value import shard_of

    n = len(data["X_train"])
    noisy = data["noisy"]
    everything = np.arange(n)
    started = time.perf_counter()
    whole = value(data, everything, seed, options)
    seconds_whole = time.perf_counter() - started
    whole2 = value(data, everything, seed + 1, options) if seed_check else np.full(n, np.nan)
    ids = [f"{seed}-{i}" for i in range(n)]  # stand-ins for row ids: the flow's hash of them decides the shard
    out = {}
    for k in shards:
        which = shard_of(ids, k)
        sharded = np.empty(n)
        per_shard_flags = np.zeros(n, dtype=bool)
        started = time.perf_counter()
        for i in range(k):
            rows = np.flatnonzero(which == i)
            sharded[rows] = value(data, rows, seed, options)  # the flow values every shard with the run's seed
            per_shard_flags[rows] = two_means_mask(sharded[rows])
        out[k] = {
            "f1_whole": detection_f1(whole, noisy), "f1_whole2": detection_f1(whole2, noisy) if seed_check else float("nan"),
            "f1_pooled": detection_f1(sharded, noisy), "f1_per_shard": f1_of_flags(per_shard_flags, noisy),
            "auroc_whole": detection_auroc(whole, noisy), "auroc_sharded": detection_auroc(sharded, noisy),
            "spearman_sharded": float(spearmanr(whole, sharded).statistic),
            "spearman_seed": float(spearmanr(whole, whole2).statistic) if seed_check else float("nan"),
            "seconds_whole": seconds_whole, "seconds_sharded": time.perf_counter() - started,
        }  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(parser, rows=4000, val=100, repeats=1)
    parser.add_argument("--shards", type=int, nargs="+", default=[4])
    parser.add_argument("--no-seed-check", action="store_true", help="skip the second whole fit (another seed): one fit less at scale")
    parser.add_argument("--lossval", nargs="*", default=[], metavar="KEY=VALUE", help="LossVal options")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "shards_hash.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = datasets_dir(args.datasets)
    options = parse_options(args.lossval)
    with results_csv(args.out, COLUMNS, key=lambda r: tuple(r[c] for c in COLUMNS[:7])) as (done, write):
        for rep in range(args.repeats):
            for name in args.names:
                for kind in args.kinds:
                    keys = {k: (name, kind, str(rep), str(args.rows), str(args.val), str(k), repr(sorted(options.items()))) for k in args.shards}
                    todo = [k for k, key in keys.items() if key not in done]
                    if not todo:
                        continue
                    data = scaled_table(name, args.rows, args.val, folder=folder, seed=2000 + rep, noise_rate=args.rate, kind=kind)
                    for k, result in cells(data, shards=todo, seed=rep, options=options, seed_check=not args.no_seed_check).items():
                        write(dict(zip(COLUMNS[:7], keys[k]), **{c: round(v, 4) for c, v in result.items()}))
    with args.out.open() as fh:
        everything = list(csv.DictReader(fh))
    for k in args.shards:
        rows = [r for r in everything if (r["rows"], r["val"], r["shards"]) == (str(args.rows), str(args.val), str(k))]
        print(f"means over {len(rows)} cells ({args.rows} rows, {args.val} validation rows, {k} shards):")
        for kind in args.kinds:
            sub = [r for r in rows if r["kind"] == kind and r.get("seconds_whole")]
            if sub:
                means = {c: statistics.mean(float(r[c]) for r in sub) for c in COLUMNS[7:]}
                print(f"  {kind}: " + ", ".join(f"{c} {v:.3f}" for c, v in means.items()))


if __name__ == "__main__":
    main()
