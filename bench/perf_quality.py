"""Detection quality of the large-data options against the exact default, on tables of any size.

Each run: a table from :func:`bench.scale.scaled_table` (real rows, resampled
with small noise beyond the dataset's size; a fraction ``--rate`` corrupted
by ``--kinds``), valued by LossVal with each option set of ``--variants``
(``name:key=value,key=value``; ``name:`` alone = the defaults) on the same
table and seed; F1 (2-means) and AUROC against the corrupted rows. One CSV
row per run; a rerun skips what the CSV holds.

    python -m bench.perf_quality --rows 1000 --val 1000 --variants "whole:reference_rows=None" "parts128:"
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from bench import methods
from bench.common import REPO, add_table_arguments, datasets_dir, results_csv
from bench.scale import parse_options, scaled_table

COLUMNS = ["variant", "dataset", "kind", "rep", "n_train", "n_val", "options", "f1", "auroc", "seconds"]


def run(options: dict, data: dict, seed: int) -> tuple[float, float, float]:
    from lossval import LossVal
    from lossval.metrics import detection_auroc, detection_f1

    started = time.process_time()
    lv = LossVal(data["task"], random_state=seed, progress=False, device="cpu", **options)
    values = lv.fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"]).values_.to_numpy()
    return detection_f1(values, data["noisy"]), detection_auroc(values, data["noisy"]), time.process_time() - started


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(parser, rows=1000, val=1000, repeats=2)
    parser.add_argument("--settings", nargs="*", default=[], metavar="KEY=VALUE", help="LossVal options shared by all variants")
    parser.add_argument("--variants", nargs="+", required=True, metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "perf_quality.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = datasets_dir(args.datasets)
    settings = parse_options(args.settings)
    variants = {}
    for spec in args.variants:
        name, _, rest = spec.partition(":")
        variants[name] = {**settings, **methods.parse_options(rest)}
    with results_csv(args.out, COLUMNS, key=lambda r: tuple(r[c] for c in COLUMNS[:6])) as (done, write):
        for rep in range(args.repeats):
            for name in args.names:
                for kind in args.kinds:
                    data = None
                    for variant, options in variants.items():
                        if (variant, name, kind, str(rep), str(args.rows), str(args.val)) in done:
                            continue
                        if data is None:
                            data = scaled_table(name, args.rows, args.val, folder=folder, seed=1000 + rep, noise_rate=args.rate, kind=kind)
                        f1, auroc, seconds = run(options, data, rep)
                        write(dict(variant=variant, dataset=name, kind=kind, rep=rep, n_train=args.rows, n_val=args.val,
                                   options=repr(sorted(options.items())), f1=round(f1, 4), auroc=round(auroc, 4), seconds=round(seconds, 2)))  # fmt: skip
    with args.out.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["n_train"] == str(args.rows) and r["n_val"] == str(args.val)]
    print(f"mean over runs, {args.rows} rows, {args.val} validation rows:")
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        for kind in args.kinds:
            sub = [r for r in mine if r["kind"] == kind]
            if sub:
                f1 = statistics.mean(float(r["f1"]) for r in sub)
                auroc = statistics.mean(float(r["auroc"]) for r in sub)
                print(f"  {variant:>12} {kind:>8}: F1 {f1:.3f}  AUROC {auroc:.3f}  (n={len(sub)})")


if __name__ == "__main__":
    main()
