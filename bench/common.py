"""Shared helpers for the benchmarks: dataset loading and the machine description."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

CLASSIFICATION = ("2dplanes", "electricity", "pol", "fried")
REGRESSION = ("kin8nm", "white_wine", "cpu_activity", "pumadyn32nh")
TASK_OF = {**{n: "classification" for n in CLASSIFICATION}, **{n: "regression" for n in REGRESSION}}


def datasets_dir(value: str | None) -> Path:
    path = Path(value) if value else DEFAULT_DATASETS
    if not path.is_dir():
        raise SystemExit(f"datasets folder not found: {path} (pass --datasets DIR)")
    return path


def load(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Features (standardised), target (standardised for regression) and task of a shared dataset."""
    frame = pd.read_csv(folder / f"{name}.csv.gz")
    X = frame.drop(columns="target").to_numpy(dtype=np.float64)
    y = frame["target"].to_numpy()
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    task = TASK_OF.get(name, "classification" if frame["target"].nunique() <= 10 else "regression")
    if task == "regression":
        y = (y - y.mean()) / y.std()
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
