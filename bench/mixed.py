"""Detection and cleaning on a raw mixed-type table: adult_raw (categories as strings) vs adult (ordinal codes).

Per repetition, a fresh random split of the UCI Adult rows (``adult_raw.csv.gz``)
into ``--rows`` training, ``--val`` trusted validation and ``--test`` test rows;
a share ``--rate`` of the training rows is corrupted with one kind of noise:

- ``labels``: the label flipped to the other class;
- ``numeric``: N(0, 1) added to every standardised numeric feature (the paper's
  feature noise, on the 6 numeric columns), written back in the column's units;
- ``categorical``: every categorical cell of the row switched to another level,
  drawn with the training frequencies of the column's other levels (a missing
  cell stays missing).

The same corrupted rows are then valued in two encodings, side by side:
``adult_raw`` (the 8 categorical columns as strings: LossVal one-hot encodes
them, :mod:`lossval.tabular`; missing cells imputed from the training rows with
indicators, :mod:`lossval.imputation`) and ``adult`` (each categorical column
as its alphabetical level code, missing as its own level ``?``, treated as a
number: the coding of PMLB's ``adult``, the ordinal variant in the datasets
folder). Methods: LossVal (the library defaults) and cleanlab (out-of-fold
probabilities of the same MLP, 5 folds, on the same encoding). Scores: F1 of
the flagged rows (LossVal: 2-means on the values; cleanlab: its own
``find_label_issues``), AUROC of the values, and the downstream effect: test
accuracy of the MLP trained on all training rows and on the rows left after
removing the flagged ones.

    nice -n 10 python -m bench.mixed [--datasets DIR] [--repeats 2] [--out bench/results/mixed.csv]
    python -m bench.mixed --report      # the table into docs/benchmarks.md (between its markers)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold

from bench.common import REPO, datasets_dir, machine
from lossval import MLP, LossVal
from lossval.imputation import impute_splits
from lossval.metrics import accuracy, detection_auroc, detection_f1, f1_of_flags
from lossval.threshold import two_means_mask

KINDS = ("labels", "numeric", "categorical")
ENCODINGS = ("adult_raw", "adult")
METHODS = ("lossval", "cleanlab")
DEFAULT_OUT = REPO / "bench" / "results" / "mixed.csv"
DOC = REPO / "docs" / "benchmarks.md"
MARKERS = ("<!-- mixed:begin -->", "<!-- mixed:end -->")


def corrupt(frame: pd.DataFrame, target: str, *, kind: str, rows: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """A copy of the training ``frame`` with ``rows`` (positions) corrupted by ``kind`` (see the module doc)."""
    out = frame.copy()
    numeric = [c for c in frame.columns if c != target and pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in frame.columns if c != target and c not in numeric]
    if kind == "labels":
        classes = np.array(sorted(frame[target].unique()))
        col = out.columns.get_loc(target)
        out.iloc[rows, col] = [classes[classes != v][0] for v in frame[target].iloc[rows]]
    elif kind == "numeric":
        values = frame[numeric].to_numpy(np.float64)
        std = values.std(axis=0)
        noisy = values[rows] + rng.normal(size=(len(rows), len(numeric))) * std
        out[numeric] = out[numeric].astype(np.float64)
        out.iloc[rows, [out.columns.get_loc(c) for c in numeric]] = noisy
    else:
        for c in categorical:
            counts = frame[c].value_counts()
            col = out.columns.get_loc(c)
            for i in rows:
                current = frame[c].iloc[i]
                if pd.isna(current):
                    continue
                others = counts[counts.index != current]
                out.iloc[i, col] = rng.choice(others.index.to_numpy(), p=(others / others.sum()).to_numpy())
    return out


def ordinal(frame: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    """Categorical columns as alphabetical level codes (missing = the level ``?``), as floats."""
    out = frame.copy()
    for c, known in levels.items():
        lookup = {level: code for code, level in enumerate(known)}
        out[c] = frame[c].fillna("?").map(lookup).astype(np.float64)
    return out


def cleanlab_flags(X: pd.DataFrame, y: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(label quality, flags) from 5-fold out-of-fold probabilities of the MLP LossVal trains."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    probs = np.zeros((len(y), 2))
    for fold, (fit, held) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)):
        model = MLP("classification", random_state=seed + fold, progress=False).fit(X.iloc[fit], y[fit])
        probs[np.ix_(held, model.classes_.astype(int))] = model.predict_proba(X.iloc[held])
    return get_label_quality_scores(y, probs), np.asarray(find_label_issues(y, probs), dtype=bool)


def run_cell(raw: pd.DataFrame, *, kind: str, rep: int, sizes: tuple[int, int, int], rate: float) -> list[dict]:
    rng = np.random.default_rng(1000 * rep + KINDS.index(kind))
    n_train, n_val, n_test = sizes
    order = rng.permutation(len(raw))
    train = raw.iloc[order[:n_train]].reset_index(drop=True)
    val = raw.iloc[order[n_train : n_train + n_val]].reset_index(drop=True)
    test = raw.iloc[order[n_train + n_val : n_train + n_val + n_test]].reset_index(drop=True)
    noisy_rows = np.sort(rng.choice(n_train, size=int(round(rate * n_train)), replace=False))
    train = corrupt(train, "target", kind=kind, rows=noisy_rows, rng=rng)
    noisy = np.isin(np.arange(n_train), noisy_rows)
    categorical = [c for c in raw.columns if c != "target" and not pd.api.types.is_numeric_dtype(raw[c])]
    levels = {c: sorted(set(raw[c].dropna()) | {"?"}) for c in categorical}
    features = [c for c in raw.columns if c != "target"]
    filled_train, filled, _ = impute_splits(train[features], {"val": val[features], "test": test[features]}, columns=features)
    frames = {
        "adult_raw": (filled_train, filled["val"], filled["test"]),
        "adult": tuple(ordinal(f[features], levels) for f in (train, val, test)),
    }
    y_train, y_val, y_test = (f["target"].to_numpy() for f in (train, val, test))
    y_codes = (y_train == ">50K").astype(np.int64)
    results = []
    for encoding, (X_train, X_val, X_test) in frames.items():
        def downstream(keep: np.ndarray) -> float:
            model = MLP("classification", random_state=rep, progress=False).fit(X_train[keep], y_train[keep])
            return accuracy(y_test, model.predict(X_test))

        base = downstream(np.ones(n_train, bool))
        for method in METHODS:
            started = time.perf_counter()
            if method == "lossval":
                values = LossVal("classification", random_state=rep, progress=False).fit(X_train, y_train, X_val, y_val).values_.to_numpy()
                flags = two_means_mask(values)
            else:
                values, flags = cleanlab_flags(X_train, y_codes, seed=rep)
            seconds = time.perf_counter() - started
            print(f"  {encoding} {kind} rep {rep} {method}: {seconds:.1f} s", flush=True)
            results.append({
                "dataset": encoding, "kind": kind, "rate": rate, "rep": rep, "method": method,
                "f1": f1_of_flags(flags, noisy), "f1_2means": detection_f1(values, noisy), "auroc": detection_auroc(values, noisy),
                "flagged": int(flags.sum()), "test_accuracy_all": base, "test_accuracy_clean": downstream(~flags),
                "seconds": seconds,
            })  # fmt: skip
    return results


def report(out: Path) -> str:
    table = pd.read_csv(out)
    mean = table.groupby(["kind", "dataset", "method"], sort=False).agg(
        f1=("f1", "mean"), auroc=("auroc", "mean"), all=("test_accuracy_all", "mean"), clean=("test_accuracy_clean", "mean"),
        flagged=("flagged", "mean"), runs=("rep", "count"),
    )  # fmt: skip
    lines = ["| noise | table | method | F1 | AUROC | test acc. all rows | test acc. cleaned | change | rows flagged | runs |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, dataset, method), r in mean.iterrows():
        lines.append(
            f"| {kind} | {dataset} | {method} | {r.f1:.3f} | {r.auroc:.3f} | {r['all']:.4f} | {r.clean:.4f} | {r.clean - r['all']:+.4f} | {r.flagged:.0f} | {int(r.runs)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=None, help="folder with adult_raw.csv.gz (default ../shared/datasets)")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--test", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: as fast as 2 here, see docs/stack-notes)")
    parser.add_argument("--report", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.report:
        text = DOC.read_text()
        start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
        DOC.write_text(text[:start] + "\n" + report(args.out) + "\n" + text[end:])
        print(report(args.out))
        return 0
    raw = pd.read_csv(datasets_dir(args.datasets) / "adult_raw.csv.gz")
    done = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame(columns=["kind", "rep"])
    print(f"machine: {machine()}", flush=True)
    for rep in range(args.repeats):
        for kind in args.kinds:
            if ((done["kind"] == kind) & (done["rep"] == rep)).any():
                continue
            rows = run_cell(raw, kind=kind, rep=rep, sizes=(args.rows, args.val, args.test), rate=args.rate)
            frame = pd.DataFrame(rows)
            frame.to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
            print(frame[["dataset", "kind", "rep", "method", "f1", "auroc", "test_accuracy_all", "test_accuracy_clean", "seconds"]].to_string(index=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
