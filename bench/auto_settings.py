"""Detection quality of LossVal's "auto" settings against the paper's, at sizes where the two differ.

For each development dataset and size, one resampled table (:func:`bench.scale.scaled_table`:
10 % of the training rows corrupted, mixed noise, a held-out validation set) is valued twice:
with the paper's settings (30 epochs, batch 32, every batch's OT term exact against the whole
validation set) and with ``LossVal()``'s "auto" settings (:mod:`lossval.settings`), same seed.
Each row of the CSV is one fit: its resolved ``settings_``, fit seconds, F1 and AUROC of the
values against the corrupted rows.

    python -m bench.auto_settings --names adult california_housing covertype_binary_subset --sizes 50000 --val 1000
    python -m bench.auto_settings --arms auto ...   # only one arm (the CSV is resumable: done fits are skipped)
    python -m bench.auto_settings --arms auto --lossval epochs=10 ...   # "auto" with explicit overrides (arm auto[epochs=10])
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.common import DEVELOPMENT, REPO, datasets_dir, machine, results_csv
from bench.scale import parse_options, scaled_table

DEFAULT_OUT = REPO / "bench" / "results" / "auto_settings.csv"
COLUMNS = ["dataset", "task", "n_train", "n_val", "arm", "rep", "settings", "seconds", "cpu_s", "f1", "auroc", "load1"]
#: The paper's settings, explicit (so they hold at any size).
PAPER = dict(epochs=30, batch_size=32, ot_batch_size=None, reference_rows=None, ot_every=1, scaling=0.5)


def fit_one(name: str, n: int, m: int, arm: str, rep: int, folder: Path, overrides: dict | None = None) -> dict:
    """Value one resampled table with one arm; the CSV row."""
    from lossval import LossVal
    from lossval.metrics import detection_auroc, detection_f1

    data = scaled_table(name, n, m, folder=folder, seed=rep)
    options = PAPER if arm == "paper" else dict(overrides or {})
    started, cpu = time.perf_counter(), time.process_time()
    model = LossVal(data["task"], random_state=rep, progress=False, **options)
    model.fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    values = model.values_.to_numpy()
    return dict(
        dataset=name, task=data["task"], n_train=n, n_val=m, arm=arm, rep=rep, settings=json.dumps(model.settings_, sort_keys=True),
        seconds=round(seconds, 2), cpu_s=round(cpu, 2), f1=round(detection_f1(values, data["noisy"]), 4),
        auroc=round(detection_auroc(values, data["noisy"]), 4), load1=round(os.getloadavg()[0], 2),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="folder of the shared datasets (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--sizes", type=int, nargs="+", default=[50000])
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--arms", nargs="+", default=["auto", "paper"], choices=["auto", "paper"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lossval", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the auto arm")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV, appended to (resumable)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    folder = datasets_dir(args.datasets)
    print(f"machine: {machine()}", flush=True)
    overrides = parse_options(args.lossval)
    label = f"auto[{','.join(args.lossval)}]" if overrides else "auto"
    key = lambda r: (r["dataset"], int(r["n_train"]), int(r["n_val"]), r["arm"], int(r["rep"]))  # noqa: E731
    with results_csv(args.out, COLUMNS, key) as (done, write):
        for n in args.sizes:
            for name in args.names:
                for rep in range(args.repeats):
                    for arm in args.arms:
                        tag = label if arm == "auto" else arm
                        if (name, n, args.val, tag, rep) not in done:
                            write({**fit_one(name, n, args.val, arm, rep, folder, overrides), "arm": tag})


if __name__ == "__main__":
    main()
