"""Does cleaning pay off? The downstream model trained on all rows, on oracle-cleaned rows, with the
pipeline's default quarantine, value-weighted, the champion the gate picks, and with cleanlab's removal.

Protocol (docs/benchmarks.md, section 6): per dataset and repetition one random, disjoint split of a
large clean test set (3000 rows), a trusted reference (300) and the training rows (500, fewer when
the table is too small); noise (``lossval.noise``) on a share ``rate`` of the training rows only
(kinds labels, features, mixed; rate 0 once per dataset and repetition, kind ``none``). The pipeline's
valuation and decision (:mod:`bench.cleaning_methods`) value the training rows against the reference;
every variant trains the pipeline's downstream MLP (``retrain`` section of params.yaml) with the same
seed and is scored on the same test rows, paired with the all-rows model (bootstrap over test rows).
The champion is picked by the gate on one half of the test rows and scored on the other half, and vice
versa (cross-fitting), so its score carries no selection bias.

    python -m bench.cleaning --quick                   # smoke test (CI): bundled data, seconds
    python -m bench.cleaning [--part 1/2] [--names ...] [--rates ...] [--repeats 3] [--rows 2000]
    python -m bench.cleaning --report                  # tables into docs/benchmarks.md

Every (cell, method) row is appended to the CSV (``--out``); a rerun skips what is there.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import cleaning_methods as cm
from bench.common import CLASSIFICATION, REGRESSION, REPO, load, machine, results_csv
from bench.methods import Cell
from bench.quality import parse_part, resolve_folder, seed_of
from lossval.noise import NOISE_KINDS, add_noise

RATES: tuple[float, ...] = (0.0, 0.05, 0.10, 0.20)
METHODS: tuple[str, ...] = ("all", "oracle", "clean", "weighted", "champion", "cleanlab")
COLUMNS = [
    "dataset", "task", "kind", "rate", "rep", "rows", "epochs", "method", "n_train", "n_test", "score",
    "delta", "delta_lo", "delta_hi", "n_noisy", "flagged", "true_flagged", "est_count", "est_lo", "est_hi",
    "est_precision", "canary_auroc", "rule", "picked", "seconds",
]  # fmt: skip
KEY = ("dataset", "kind", "rate", "rep", "rows", "epochs", "method")
DEFAULT_OUT = REPO / "bench" / "results" / "cleaning.csv"
QUICK_OUT = REPO / "bench" / "results" / "quick.tmp" / "cleaning.csv"  # git-ignored
QUICK = dict(names=["electricity"], kinds=["labels"], rates=[0.0, 0.1], repeats=1, rows=[300], reference=100, test=1000, epochs=2)


@dataclass(frozen=True)
class Spec:
    dataset: str
    kind: str  # "labels", "features", "mixed", or "none" at rate 0
    rate: float
    rep: int
    rows: int  # training rows asked for (fewer when the table is too small)


def grid(names: Sequence[str], kinds: Sequence[str], rates: Sequence[float], repeats: int, rows: Sequence[int]) -> list[Spec]:
    """Every cell, repetitions outermost (a partial run covers the grid evenly); rate 0 once, kind "none"."""
    specs = []
    for rep in range(repeats):
        for n in rows:
            for rate in rates:
                for kind in ["none"] if rate == 0 else kinds:
                    specs.extend(Spec(name, kind, float(rate), rep, n) for name in names)
    return specs


def make_cell(spec: Spec, X: np.ndarray, y: np.ndarray, task: str, *, reference: int, test: int) -> Cell:
    """The disjoint split and the noise of one cell (``Cell.X_val`` holds the trusted reference).

    The test and reference rows depend on (dataset, rep) only, so they are the same at every
    rate, kind and table size of a repetition; the training rows are the next ``rows`` of the permutation.
    """
    available = len(X) - test - reference
    if available < 50:
        raise SystemExit(f"{spec.dataset} has {len(X)} rows: too few for {test} test and {reference} reference rows")
    perm = np.random.default_rng(seed_of(spec.dataset, spec.rep, "cleaning-split")).permutation(len(X))
    te, ref = perm[:test], perm[test : test + reference]
    tr = perm[test + reference : test + reference + min(spec.rows, available)]
    noise = np.full(len(tr), "", dtype=object)
    X_train, y_train = X[tr], y[tr]
    if spec.rate > 0:
        rng = np.random.default_rng(seed_of(spec.dataset, spec.kind, spec.rate, spec.rep, spec.rows, "cleaning-noise"))
        X_train, y_train, rows, kinds = add_noise(X_train, y_train, kind=spec.kind, rate=spec.rate, task=task, rng=rng)
        noise[rows] = kinds
    return Cell(
        setting="trusted", dataset=spec.dataset, task=task, kind=spec.kind, rate=spec.rate, rep=spec.rep,
        seed=seed_of(spec.dataset, spec.kind, spec.rate, spec.rep, spec.rows), X_train=X_train, y_train=y_train,
        X_val=X[ref], y_val=y[ref], X_test=X[te], y_test=y[te], noise=noise,
    )  # fmt: skip


def key_of(spec: Spec, epochs: int, method: str) -> tuple:
    return (spec.dataset, spec.kind, f"{spec.rate:g}", str(spec.rep), str(spec.rows), str(epochs), method)


def preds_file(folder: Path, spec: Spec, epochs: int) -> Path:
    return folder / f"{spec.dataset}_{spec.kind}_{spec.rate:g}_{spec.rep}_{spec.rows}_{epochs}.npz"


def run_cell(spec: Spec, cell: Cell, methods: Sequence[str], *, epochs: int, settings: cm.Settings, cache: Path) -> list[dict]:
    """Train and score the asked variants of one cell: one CSV row per method.

    The test predictions of every variant are kept in ``cache`` (one .npz per cell), so a later run of
    other methods on the cell pairs them with the same all-rows model without training it again.
    """
    started = time.perf_counter()
    fit = cm.Trainer(cell, epochs=epochs, settings=settings)
    noisy = cell.noisy
    path = preds_file(cache, spec, epochs)
    preds: dict[str, np.ndarray] = dict(np.load(path)) if path.is_file() else {}
    if "all" not in preds:
        preds["all"] = fit.predict()
    flags: dict[str, np.ndarray] = {}
    quarantine = None
    if "oracle" in methods:
        preds["oracle"], flags["oracle"] = fit.predict(keep=~noisy), noisy
    if {"clean", "weighted"} & set(methods) or ("champion" in methods and not {"clean", "weighted"} <= set(preds)):
        quarantine = cm.quarantine(cell, epochs=epochs, settings=settings)
        preds["clean"], flags["clean"] = fit.predict(keep=~quarantine.flagged), quarantine.flagged
        preds["weighted"] = fit.predict(weight=cm.row_weights(quarantine))
    picked = ""
    if "champion" in methods:
        preds["champion"], picked = cm.cross_fitted_champion(cell, {m: preds[m] for m in cm.GATE_VARIANTS}, seed=cell.seed)
    if "cleanlab" in methods and cm.cleanlab_applies(cell):
        flags["cleanlab"] = cm.cleanlab_flags(cell, epochs=epochs)
        preds["cleanlab"] = fit.predict(keep=~flags["cleanlab"])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **preds)
    seconds = round(time.perf_counter() - started, 1)
    base = dict(
        dataset=spec.dataset, task=cell.task, kind=spec.kind, rate=f"{spec.rate:g}", rep=spec.rep, rows=spec.rows, epochs=epochs,
        n_train=len(cell.y_train), n_test=len(cell.y_test), n_noisy=int(noisy.sum()), seconds=seconds,
    )  # fmt: skip
    out = []
    for method in (m for m in methods if m in preds):
        row = dict(base, method=method, score=cm.score(cell, preds[method]))
        gain = cm.paired_gain(cell, preds["all"], preds[method], seed=cell.seed)
        row.update(zip(("delta", "delta_lo", "delta_hi"), (round(v, 6) for v in gain)))
        if method in flags:
            row.update(flagged=int(flags[method].sum()), true_flagged=int((flags[method] & noisy).sum()))
        if method == "clean" and quarantine is not None:
            row.update(quarantine.estimate, rule=quarantine.rule)
        if method == "champion":
            row["picked"] = picked
        out.append(row)
    return out


def run_grid(specs: Sequence[Spec], methods: Sequence[str], folder: Path, out: Path, *, epochs: int, reference: int,
             test: int, settings: cm.Settings, log=print) -> int:  # fmt: skip
    """Run every (cell, method) not yet in ``out``; returns how many rows were added."""
    added, data = 0, {}
    with results_csv(out, COLUMNS, key=lambda r: tuple(r[c] for c in KEY)) as (done, write):
        for spec in specs:
            todo = [m for m in methods if key_of(spec, epochs, m) not in done]
            if spec.rate == 0:
                todo = [m for m in todo if m != "oracle"]  # nothing to remove: oracle = all
            if not todo:
                continue
            if spec.dataset not in data:
                data[spec.dataset] = load(spec.dataset, folder)
            cell = make_cell(spec, *data[spec.dataset], reference=reference, test=test)
            todo = [m for m in todo if m != "cleanlab" or cm.cleanlab_applies(cell)]
            if not todo:
                continue
            rows = run_cell(spec, cell, todo, epochs=epochs, settings=settings, cache=out.with_name(out.stem + "_preds.tmp"))
            for row in rows:
                write({c: row.get(c, "") for c in COLUMNS})
                added += 1
            log(f"{spec} done in {rows[0]['seconds'] if rows else 0}s")
    return added


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets; --quick falls back to data/example)")
    parser.add_argument("--out", type=Path, default=None, help="CSV of runs, appended, resumable (default bench/results/cleaning.csv)")
    parser.add_argument("--names", nargs="+", default=[*CLASSIFICATION, *REGRESSION])
    parser.add_argument("--kinds", nargs="+", default=list(NOISE_KINDS), choices=NOISE_KINDS)
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", nargs="+", type=int, default=[500], help="training rows (several: the table-size sweep)")
    parser.add_argument("--reference", type=int, default=300, help="trusted reference rows")
    parser.add_argument("--test", type=int, default=3000, help="clean test rows")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--quarantine", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override the quarantine section of params.yaml, e.g. strategy=calibrated min_precision=0.6")
    parser.add_argument("--epochs", type=int, default=None, help="valuation and retraining epochs (default: params.yaml)")
    parser.add_argument("--part", default="1/1", help="run only part i of n of the cells, e.g. 2/3")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="bundled electricity, small sizes, 2 epochs (CI smoke test)")
    parser.add_argument("--report", action="store_true", help="write the tables of --out into --doc and exit")
    parser.add_argument("--doc", type=Path, default=None, help="markdown file for the tables (default docs/benchmarks.md)")
    parser.add_argument("--command", default=None, help="the command line to quote in the report")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    args.doc = args.doc or (args.out.with_suffix(".md") if args.quick else REPO / "docs" / "benchmarks.md")
    torch.set_num_threads(args.threads)
    if args.report:
        from bench.cleaning_report import write_report

        write_report(args.out, args.doc, command=args.command, machine=machine(), main_rows=args.rows[0])
        print(f"wrote the cleaning tables of {args.out} into {args.doc}")
        return
    settings = cm.Settings.from_params([f"quarantine.{item}" for item in args.quarantine])
    epochs = args.epochs or settings.epochs
    folder = resolve_folder(args.datasets, args.quick)
    i, n = parse_part(args.part)
    specs = grid(args.names, args.kinds, args.rates, args.repeats, args.rows)[i - 1 :: n]
    print(f"{len(specs)} cells x {len(args.methods)} methods from {folder} -> {args.out} ({machine()})", flush=True)
    added = run_grid(specs, args.methods, folder, args.out, epochs=epochs, reference=args.reference, test=args.test,
                     settings=settings, log=lambda line: print(line, flush=True))  # fmt: skip
    print(f"done: {added} new rows in {args.out}")
    if args.quick:
        from bench.cleaning_report import write_report

        write_report(args.out, args.doc, command=args.command or "python -m bench.cleaning --quick", machine=machine(), main_rows=args.rows[0])
        print(f"tables in {args.doc}")


if __name__ == "__main__":
    main()
