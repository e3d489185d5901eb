"""Shared helpers for the benchmarks: dataset loading and the machine description."""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
#: The small real data committed with the repository (see data/example/README.md).
BUNDLED = REPO / "data" / "example"

CLASSIFICATION = ("2dplanes", "electricity", "pol", "fried")
REGRESSION = ("kin8nm", "white_wine", "cpu_activity", "pumadyn32nh")
TASK_OF = {**{n: "classification" for n in CLASSIFICATION}, **{n: "regression" for n in REGRESSION}}
#: The development datasets: settings are chosen on these, never on the eight reported above.
DEVELOPMENT = ("adult", "california_housing", "covertype_binary_subset")


def datasets_dir(value: str | None) -> Path:
    path = Path(value) if value else DEFAULT_DATASETS
    if not path.is_dir():
        raise SystemExit(f"datasets folder not found: {path} (pass --datasets DIR)")
    return path


def read_frame(name: str, folder: Path) -> pd.DataFrame:
    """The raw table ``name`` from ``folder``: ``name.csv.gz`` (the shared folder), or the bundled
    ``name.csv`` plus ``name_reference.csv`` when present (data/example), stacked."""
    packed = folder / f"{name}.csv.gz"
    if packed.is_file():
        return pd.read_csv(packed)
    plain = folder / f"{name}.csv"
    if not plain.is_file():
        raise SystemExit(f"dataset {name!r} not found in {folder} (looked for {packed.name} and {plain.name})")
    parts = [pd.read_csv(plain)]
    reference = folder / f"{name}_reference.csv"
    if reference.is_file():
        parts.append(pd.read_csv(reference))
    return pd.concat(parts, ignore_index=True)


def load(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Features (standardised), target and task of a dataset, prepared as OpenDataVal prepares the paper's.

    Features are standardised over the whole table, regression targets too;
    class labels are coded 0..K-1 (string labels of the bundled copy
    included). electricity: OpenDataVal loads OpenML 44080, which lacks the
    ``day`` column and is class-balanced by undersampling
    (datasets/README.md); we drop ``day`` and undersample the larger class
    with a fixed seed.
    """
    frame = read_frame(name, folder)
    if name == "electricity":
        frame = frame.drop(columns="day")
        labels = frame["target"].to_numpy()
        classes, counts = np.unique(labels, return_counts=True)
        rng = np.random.default_rng(44080)
        keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), counts.min(), replace=False) for c in classes])
        frame = frame.iloc[np.sort(keep)].reset_index(drop=True)
    X = frame.drop(columns="target").to_numpy(dtype=np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    task = TASK_OF.get(name, "classification" if frame["target"].nunique() <= 10 else "regression")
    y = frame["target"].to_numpy()
    if task == "regression":
        y = y.astype(np.float64)
        y = (y - y.mean()) / y.std()
    else:
        y = np.unique(y, return_inverse=True)[1].astype(np.int64)
    return X, y, task


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}"


def add_table_arguments(parser: argparse.ArgumentParser, *, rows: int, val: int, repeats: int) -> None:
    """The options of the benchmarks that value resampled tables (:func:`bench.scale.scaled_table`) per
    dataset and noise kind: which datasets, kinds, noise rate, sizes, repetitions and torch threads."""
    parser.add_argument("--datasets", help="folder of the shared datasets (default ../shared/datasets)")
    parser.add_argument("--names", nargs="+", default=[*CLASSIFICATION, *REGRESSION])
    parser.add_argument("--kinds", nargs="+", default=["labels", "features", "mixed"])
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--val", type=int, default=val)
    parser.add_argument("--threads", type=int, default=1)


@contextlib.contextmanager
def results_csv(path: Path, columns: list[str], key: Callable[[dict[str, str]], tuple]) -> Iterator[tuple[set, Callable[[dict[str, Any]], None]]]:
    """A resumable results file: yields the ``key`` of every row already in ``path`` (as read back: strings)
    and a function that appends one row (header first on a new file), flushes it and prints it."""
    done: set = set()
    if path.exists():
        with path.open() as fh:
            done = {key(r) for r in csv.DictReader(fh)}
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        if new:
            writer.writeheader()

        def write(row: dict[str, Any]) -> None:
            writer.writerow(row)
            fh.flush()
            print(row, flush=True)

        yield done, write


@contextlib.contextmanager
def patched(owner: object, **replacements: Any) -> Iterator[None]:
    """Within the block, ``owner``'s attributes are ``replacements`` (a lever or variant under test);
    the originals come back after it, whatever happens."""
    originals = {name: getattr(owner, name) for name in replacements}
    for name, value in replacements.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(owner, name, value)
