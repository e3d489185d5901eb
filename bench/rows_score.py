"""Score dumped default fits (``bench.parts_rows``) as rows of the quality benchmark's CSV, without refitting.

A dump holds one default fit per cell: the learned weights, the per-row parts,
the truth and the test score. The value is a function of the fit
(:func:`lossval.scoring.tie_free_values`), so the rows written here are the
ones ``python -m bench.quality --methods lossval`` writes for the same cells
(same split, seed and fit; checked on a sample of cells, docs/benchmarks.md
section 2.9). Methods:

``lossval``
    the default value: the weights with their ties broken by the parts;
``lv[tie_break=False]``
    the weights themselves, from the same fit (the default value before issue 14's second round).

Label-noise cells are written under both settings (LossVal never reads the validation labels).

    python -m bench.rows_score --rows bench/results/reported_rows.tmp [--out bench/results/quality.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from bench.quality import DEFAULT_OUT, SETTINGS, append_row, done_keys, reason_accuracy
from lossval.metrics import detection_auroc, detection_f1, precision_at_noise_count
from lossval.scoring import tie_free_values

METHODS = ("lossval", "lv[tie_break=False]")


def dump_values(dump: dict, method: str) -> np.ndarray:
    """The values of one dumped fit under ``method`` (higher = more valuable), (N,)."""
    if method == "lossval":
        return tie_free_values(dump["weight"], loss_part=dump["loss_part"], transport_part=dump["transport_part"])
    if method == "lv[tie_break=False]":
        return np.asarray(dump["weight"], dtype=np.float64)
    raise ValueError(f"unknown method {method!r}; known: {METHODS}")


def parse_name(path: Path) -> tuple[str, str, str, float, int]:
    """``paper_kin8nm_labels_0.05_3.npz`` -> (setting, dataset, kind, rate, rep)."""
    setting, rest = path.stem.split("_", 1)
    dataset, kind, rate, rep = rest.rsplit("_", 3)
    return setting, dataset, kind, float(rate), int(rep)


def score_dump(path: Path, method: str, epochs: int = 30) -> list[dict]:
    """The CSV rows of one dumped cell (one per setting it stands for)."""
    setting, dataset, kind, rate, rep = parse_name(path)
    dump = dict(np.load(path))
    noise = dump["noise"].astype(object)
    noisy = noise != ""
    values = dump_values(dump, method)
    parts = pd.DataFrame({"loss_part": dump["loss_part"], "transport_part": dump["transport_part"]})
    cell = SimpleNamespace(kind=kind, noisy=noisy, noise=noise)
    f1 = detection_f1(values, noisy)
    row = dict(
        dataset=dataset, task=str(dump["task"]), kind=kind, rate=rate, rep=rep, method=method, epochs=epochs,
        f1=f1, f1_flags=f1, auroc=detection_auroc(values, noisy), precision_at_k=precision_at_noise_count(values, noisy),
        reason_accuracy=reason_accuracy(parts, cell), test_score=float(dump["test_score"]), n_noisy=int(noisy.sum()),
        seconds=round(float(dump["seconds"]), 3),
    )  # fmt: skip
    settings = SETTINGS if kind == "labels" else (setting,)
    return [{"setting": s, **row} for s in settings]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=Path, required=True, help="folder of .npz dumps (bench.parts_rows --reported)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args(argv)
    done, added = done_keys(args.out), 0
    for path in sorted(args.rows.glob("*.npz")):
        for method in args.methods:
            for row in score_dump(path, method):
                key = (row["setting"], row["dataset"], row["kind"], round(row["rate"], 4), row["rep"], row["method"], row["epochs"])
                if key not in done:
                    append_row(args.out, row)
                    done.add(key)
                    added += 1
    print(f"{added} rows added to {args.out}")


if __name__ == "__main__":
    main()
