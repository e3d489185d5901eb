"""Detection quality: the LossVal paper's noise benchmark, LossVal variants against cleanlab and random.

Protocol (docs/benchmarks.md, section 2): per repetition a fresh random split
of 1000 training / 100 validation / 3000 test rows (features standardised,
regression targets too); noise on a fraction ``rate`` of the training rows
(setting "trusted") or of the training and validation rows (setting "paper",
as the authors did): noisy labels, noisy features or both (mixed). Each
method values the training rows of the same split; we score how well low
values find the noisy rows (2-means F1, AUROC, precision at the noise count).

    python -m bench.quality --quick                       # smoke test (CI): one dataset, rate, repetition
    python -m bench.quality [--part 1/2] [--names ...] [--methods ...] [--rates ...] [--repeats 5]
    python -m bench.quality --report                      # tables into docs/benchmarks.md

Every finished run is appended to the CSV (``--out``); a rerun skips what is
there, so the grid can be stopped, resumed and split across processes
(``--part i/n`` takes every n-th group of cells; a group holds one cell
per setting). A method that cannot tell the settings of a cell apart runs
once per group and its row is recorded under each setting: cleanlab, random
and loss_only never read the validation rows, and LossVal never reads the
validation labels, so on label noise its two settings are the same run
(:func:`shared_across_settings`).
"""

from __future__ import annotations

import argparse
import fcntl
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.common import BUNDLED, CLASSIFICATION, DEFAULT_DATASETS, REGRESSION, REPO, load, machine
from bench.methods import CLEANLAB, DEFAULT_METHODS, Cell, resolve, validation_use
from lossval.metrics import detection_auroc, detection_f1, f1_of_flags, precision_at_noise_count
from lossval.noise import NOISE_KINDS, add_noise

SETTINGS: tuple[str, ...] = ("paper", "trusted")
RATES: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20)
SIZES = (1000, 100, 3000)  # train, validation, test rows
COLUMNS = [
    "setting", "dataset", "task", "kind", "rate", "rep", "method", "epochs",
    "f1", "f1_flags", "auroc", "precision_at_k", "reason_accuracy", "test_score", "n_noisy", "seconds",
]  # fmt: skip
KEY = ["setting", "dataset", "kind", "rate", "rep", "method", "epochs"]
DEFAULT_OUT = REPO / "bench" / "results" / "quality.csv"
QUICK_OUT = REPO / "bench" / "results" / "quick.tmp" / "quality.csv"  # git-ignored
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
QUICK = dict(names=["electricity"], rates=[0.10], repeats=1)



def seed_of(*parts: object) -> int:
    """A stable 32-bit seed from names and numbers (the same on every machine and Python)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


@dataclass(frozen=True)
class Spec:
    setting: str
    dataset: str
    kind: str
    rate: float
    rep: int


def grid(names: Sequence[str], kinds: Sequence[str], rates: Sequence[float], repeats: int, settings: Sequence[str]) -> list[list[Spec]]:
    """Every cell, grouped by (dataset, kind, rate, repetition) with one cell per setting in a group;
    repetitions outermost, so a partial run covers the grid evenly. ``--part`` splits the groups."""
    return [
        [Spec(setting, name, kind, rate, rep) for setting in settings]
        for rep in range(repeats)
        for rate in rates
        for kind in kinds
        for name in names
    ]


def make_cell(spec: Spec, X: np.ndarray, y: np.ndarray, task: str) -> Cell:
    """The split and noise of one cell.

    The split depends on (dataset, rep) and the training noise on (dataset,
    kind, rate, rep), so the two settings of a cell share their training rows
    exactly and differ only in the validation noise.
    """
    n_train, n_val, n_test = SIZES
    n_test = min(n_test, len(X) - n_train - n_val)
    if n_test < 1:
        raise SystemExit(f"{spec.dataset} has {len(X)} rows; the protocol needs more than {n_train + n_val}")
    perm = np.random.default_rng(seed_of(spec.dataset, spec.rep, "split")).permutation(len(X))
    train, val, test = perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val : n_train + n_val + n_test]
    noise_rng = np.random.default_rng(seed_of(spec.dataset, spec.kind, spec.rate, spec.rep, "train"))
    X_train, y_train, rows, kinds = add_noise(X[train], y[train], kind=spec.kind, rate=spec.rate, task=task, rng=noise_rng)
    noise = np.full(n_train, "", dtype=object)
    noise[rows] = kinds
    X_val, y_val = X[val], y[val]
    if spec.setting == "paper":
        val_rng = np.random.default_rng(seed_of(spec.dataset, spec.kind, spec.rate, spec.rep, "validation"))
        X_val, y_val, _, _ = add_noise(X_val, y_val, kind=spec.kind, rate=spec.rate, task=task, rng=val_rng)
    return Cell(
        setting=spec.setting, dataset=spec.dataset, task=task, kind=spec.kind, rate=spec.rate, rep=spec.rep,
        seed=seed_of(spec.dataset, spec.kind, spec.rate, spec.rep),
        X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val, X_test=X[test], y_test=y[test], noise=noise,
    )  # fmt: skip


def applies(method: str, spec: Spec, task: str, cleanlab_kinds: Sequence[str]) -> bool:
    """cleanlab's regression mode refits ~80 models: by default only on the label-noise cells (either model)."""
    return not (method in CLEANLAB and task == "regression" and spec.kind not in cleanlab_kinds)


def shared_across_settings(method: str, kind: str) -> bool:
    """True when a method cannot tell the settings of a cell apart, so one run serves them all.

    The settings share training rows, noise and seed; they differ only in the
    validation rows' features (noise kinds "features", "mixed") and labels
    ("labels", "mixed"). A method that reads neither of what differs gives the
    same values in every setting: cleanlab, random and loss_only always;
    LossVal, which transports only the validation features, on label noise.
    """
    reads_features, reads_labels = validation_use(method)
    return not ((reads_features and kind != "labels") or (reads_labels and kind != "features"))


def reason_accuracy(parts: pd.DataFrame | None, cell: Cell) -> float:
    """Share of the truly noisy rows of a mixed cell whose reason names the injected noise type."""
    if parts is None or cell.kind != "mixed":
        return float("nan")
    from lossval.reasons import row_reasons

    reasons = row_reasons(parts).to_numpy()
    noisy = cell.noisy
    expected = np.where(cell.noise[noisy] == "labels", "label", "feature")
    return float(np.mean(reasons[noisy] == expected))


def evaluate(method: str, cell: Cell, epochs: int) -> dict[str, object]:
    """Run one method on one cell and score it: one CSV row."""
    started = time.perf_counter()
    outcome = resolve(method)(cell, epochs)
    seconds = time.perf_counter() - started
    noisy = cell.noisy
    f1 = detection_f1(outcome.values, noisy)
    return dict(
        setting=cell.setting, dataset=cell.dataset, task=cell.task, kind=cell.kind, rate=cell.rate, rep=cell.rep,
        method=method, epochs=epochs, f1=f1,
        f1_flags=f1 if outcome.flags is None else f1_of_flags(outcome.flags, noisy),
        auroc=detection_auroc(outcome.values, noisy), precision_at_k=precision_at_noise_count(outcome.values, noisy),
        reason_accuracy=reason_accuracy(outcome.parts, cell), test_score=outcome.test_score,
        n_noisy=int(noisy.sum()), seconds=round(seconds, 3),
    )  # fmt: skip


def done_keys(path: Path) -> set[tuple]:
    if not path.is_file():
        return set()
    frame = pd.read_csv(path, usecols=KEY)
    return {_key(row) for row in frame.to_dict("records")}


def _key(row: dict) -> tuple:
    return (row["setting"], row["dataset"], row["kind"], round(float(row["rate"]), 4), int(row["rep"]), row["method"], int(row["epochs"]))


def append_row(path: Path, row: dict) -> None:
    """Append one run to the CSV under an exclusive lock (several processes may share the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = pd.DataFrame([row], columns=COLUMNS).to_csv(index=False, header=False, float_format="%.6g")
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0, 2)
        if handle.tell() == 0:
            handle.write(",".join(COLUMNS) + "\n")
        handle.write(line)
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)


def run_grid(groups: Sequence[Sequence[Spec]], methods: Sequence[str], folder: Path, out: Path, *, epochs: int, cleanlab_kinds: Sequence[str], log=print) -> int:
    """Run every (cell, method) not yet in ``out``; returns how many rows were added."""
    done, added, data = done_keys(out), 0, {}
    for group in groups:
        first = group[0]
        todo = {m: [s for s in group if (s.setting, s.dataset, s.kind, round(s.rate, 4), s.rep, m, epochs) not in done] for m in methods}
        if not any(todo.values()):
            continue
        if first.dataset not in data:
            data[first.dataset] = load(first.dataset, folder)
        X, y, task = data[first.dataset]
        cells: dict[str, Cell] = {}
        for method, specs in todo.items():
            specs = [s for s in specs if applies(method, s, task, cleanlab_kinds)]
            batches = [specs] if shared_across_settings(method, first.kind) and specs else [[s] for s in specs]
            for batch in batches:
                spec = batch[0]
                if spec.setting not in cells:
                    cells[spec.setting] = make_cell(spec, X, y, task)
                row = evaluate(method, cells[spec.setting], epochs)
                for member in batch:
                    append_row(out, {**row, "setting": member.setting})
                    added += 1
                log(f"{'+'.join(m.setting for m in batch)} {spec.dataset} {spec.kind} {spec.rate:g} rep{spec.rep} {method}: "
                    f"f1={row['f1']:.3f} auroc={row['auroc']:.3f} ({row['seconds']:.1f}s)")  # fmt: skip
    return added


def parse_part(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as e:
        raise SystemExit(f"--part must look like 1/2, got {text!r}") from e
    if not 1 <= i <= n:
        raise SystemExit(f"--part {text}: need 1 <= i <= n")
    return i, n


def resolve_folder(value: str | None, quick: bool) -> Path:
    """The datasets folder; ``--quick`` falls back to the bundled data/example on a clone without ../shared."""
    folder = Path(value) if value else DEFAULT_DATASETS
    if folder.is_dir():
        return folder
    if quick and value is None:
        return BUNDLED
    raise SystemExit(f"datasets folder not found: {folder} (pass --datasets DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets; --quick falls back to data/example)")
    parser.add_argument("--out", type=Path, default=None,
                        help="CSV of runs, appended, resumable (default bench/results/quality.csv; --quick: a git-ignored one)")  # fmt: skip
    parser.add_argument("--names", nargs="+", default=[*CLASSIFICATION, *REGRESSION], help="datasets to run")
    parser.add_argument("--kinds", nargs="+", default=list(NOISE_KINDS), choices=NOISE_KINDS)
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per cell")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--part", default="1/1", help="run only part i of n of the cells, e.g. 2/3")
    parser.add_argument("--cleanlab-kinds", nargs="+", default=["labels"], choices=NOISE_KINDS,
                        help="noise kinds on which cleanlab's slow regression mode runs (classification: all)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="one dataset, one rate, one repetition (CI smoke test)")
    parser.add_argument("--report", action="store_true", help="write the tables of --out into --doc and exit")
    parser.add_argument("--doc", type=Path, default=None,
                        help="markdown file the tables go into (default docs/benchmarks.md; --quick: next to the CSV)")  # fmt: skip
    parser.add_argument("--command", default=None, help="the command line to quote in the report")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    args.doc = args.doc or (args.out.with_suffix(".md") if args.quick else DEFAULT_DOC)
    torch.set_num_threads(args.threads)
    if args.report:
        from bench.report import write_report

        write_report(args.out, args.doc, command=args.command, machine=machine())
        print(f"wrote the quality tables of {args.out} into {args.doc}")
        return
    if args.quick:
        args.names, args.rates, args.repeats = QUICK["names"], QUICK["rates"], QUICK["repeats"]
    folder = resolve_folder(args.datasets, args.quick)
    for name in args.methods:
        resolve(name)  # fail on a bad method name before any work
    i, n = parse_part(args.part)
    groups = grid(args.names, args.kinds, args.rates, args.repeats, args.settings)[i - 1 :: n]
    print(f"{sum(map(len, groups))} cells x {len(args.methods)} methods from {folder} -> {args.out} ({machine()})", flush=True)
    added = run_grid(groups, args.methods, folder, args.out, epochs=args.epochs, cleanlab_kinds=args.cleanlab_kinds,
                     log=lambda line: print(line, flush=True))  # fmt: skip
    print(f"done: {added} new runs in {args.out}")
    if args.quick:
        from bench.report import write_report

        write_report(args.out, args.doc, command=args.command or "python -m bench.quality --quick", machine=machine())
        print(f"tables in {args.doc}")


if __name__ == "__main__":
    main()
