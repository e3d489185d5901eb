"""Canary rows: trusted rows of known state, valued together with the training rows.

A share of the trusted reference rows is set aside as canary *sources* (they
leave the optimal-transport reference, so that no canary sits exactly on a
reference point). Half of the sources become **clean controls** (the row as it
is: a real, trusted row of the training distribution), the other half
**corrupted copies**: the row with its label changed (classification: another
class; regression: the target of another reference row at least half a
standard deviation away) or with Gaussian noise of one standard deviation (of
the reference column) added to every numeric feature and every categorical or
boolean feature switched to another level seen in the reference. Kinds alternate, so half of the
corrupted canaries are label canaries and half feature canaries (the
corruptions of :mod:`lossval.noise`). A row never gives both a clean control
and a corrupted copy: a clean row and its relabelled twin at the same point
would push each other's loss up and hide the difference the canaries measure.

Their values tell where a corrupted row and a clean row land in this run
(:mod:`lossval.calibrate` turns that into a count estimate, a threshold and a
precision estimate, and the self-test :func:`canary_auroc`). Canaries are
never part of any output: callers keep them in their own table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lossval._checks import check_task
from lossval.tabular import column_kind

CANARY_KINDS: tuple[str, ...] = ("clean", "labels", "features")


@dataclass(frozen=True)
class Canaries:
    """Canary rows (one per source, S in all) and what is left of the reference.

    Attributes:
        X: (S, D) canary features, columns as the reference's.
        y: (S,) canary targets.
        kind: (S,) ``"clean"``, ``"labels"`` or ``"features"``; the first S // 2 rows are the clean controls.
        source: (S,) position in the reference of each canary's source row (all different).
        keep: (M,) bool, True = the reference row stays in the OT reference (not a source).
    """

    X: pd.DataFrame
    y: pd.Series
    kind: np.ndarray
    source: np.ndarray
    keep: np.ndarray

    @property
    def corrupted(self) -> np.ndarray:
        """(S,) bool, True for the corrupted copies."""
        return self.kind != "clean"


def make_canaries(
    X_ref: pd.DataFrame,
    y_ref: pd.Series,
    *,
    task: str,
    share: float,
    seed: int,
    feature_scale: float = 1.0,
    min_reference: int = 2,
) -> Canaries:
    """Set aside about ``share * M`` reference rows (an even number) as canary sources: half clean controls, half corrupted.

    Args:
        X_ref: (M, D) trusted reference features (numeric, categorical or boolean columns), y_ref: (M,) their targets.
        task: ``"classification"`` or ``"regression"``.
        share: fraction of the reference rows used as sources, in [0, 1); 0 = no canaries.
        seed: the canaries are a pure function of the inputs and the seed.
        feature_scale: the feature noise, in standard deviations of each reference column.
        min_reference: at least this many reference rows stay in the OT reference.

    Raises:
        ValueError: ``share`` outside [0, 1), fewer than ``min_reference`` rows would remain,
            or a label canary cannot change its label (a single class / a constant target).
    """
    check_task(task)
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1), got {share!r}")
    m = len(X_ref)
    n_sources = 2 * int(round(share * m / 2))  # even: as many clean controls as corrupted canaries
    if m - n_sources < min_reference:
        raise ValueError(f"{m} reference rows minus {n_sources} canary sources leaves fewer than {min_reference} for the reference")
    rng = np.random.default_rng(seed)
    sources = rng.choice(m, size=n_sources, replace=False)
    keep = np.ones(m, dtype=bool)
    keep[sources] = False
    n_clean = n_sources // 2
    clean_src, bad_src = np.sort(sources[:n_clean]), np.sort(sources[n_clean:])
    numeric = [c for c in X_ref.columns if column_kind(X_ref[c]) == "numeric"]
    as_float = {c: np.float64 for c in numeric}
    X_bad = X_ref.iloc[bad_src].astype(as_float).reset_index(drop=True)
    y_bad = y_ref.iloc[bad_src].reset_index(drop=True)
    kinds = np.where(np.arange(len(bad_src)) % 2 == 0, "labels", "features")
    feat = kinds == "features"
    if feat.any():
        _corrupt_features(X_bad, X_ref, feat, numeric=numeric, feature_scale=feature_scale, rng=rng)
    lab = np.flatnonzero(~feat)
    if len(lab):
        y_bad = _corrupt_targets(y_bad, y_ref, lab, task=task, rng=rng)
    X = pd.concat([X_ref.iloc[clean_src].astype(as_float).reset_index(drop=True), X_bad], ignore_index=True)
    y = pd.concat([y_ref.iloc[clean_src].reset_index(drop=True), y_bad], ignore_index=True)
    kind = np.concatenate([np.full(len(clean_src), "clean", dtype=object), kinds.astype(object)])
    return Canaries(X=X, y=y, kind=kind, source=np.concatenate([clean_src, bad_src]), keep=keep)


def _corrupt_features(X: pd.DataFrame, X_ref: pd.DataFrame, rows: np.ndarray, *, numeric: list[str], feature_scale: float,
                      rng: np.random.Generator) -> None:
    """Corrupt every feature of ``X[rows]`` in place: numeric columns get N(0, (feature_scale * SD)^2) noise (SD of the
    reference column); categorical and boolean columns switch to another level seen in the reference (as in
    ``bench.mixed``'s categorical noise), drawn uniformly; a column with a single level keeps it."""
    n = int(rows.sum())
    if numeric:
        scale = X_ref[numeric].astype(np.float64).std(ddof=0).to_numpy() * feature_scale  # (D_num,)
        X.loc[rows, numeric] = X.loc[rows, numeric].to_numpy() + rng.normal(0.0, 1.0, size=(n, len(numeric))) * scale
    for column in (c for c in X.columns if c not in numeric):
        levels = pd.unique(X_ref[column].dropna())
        if len(levels) < 2:
            continue
        current = X.loc[rows, column].to_numpy()
        X.loc[rows, column] = [
            (others := [lv for lv in levels if lv != value])[rng.integers(len(others))] for value in current
        ]


def _corrupt_targets(y_src: pd.Series, y_ref: pd.Series, rows: np.ndarray, *, task: str, rng: np.random.Generator) -> pd.Series:
    y = y_src.copy()
    if task == "classification":
        classes = np.array(sorted(pd.unique(y_ref), key=str), dtype=object)
        if len(classes) < 2:
            raise ValueError("label canaries need at least 2 classes in the reference")
        for i in rows:
            others = classes[classes != y.iloc[i]]
            y.iloc[i] = others[rng.integers(len(others))]
        return y
    y = y.astype(np.float64)  # an integer target (e.g. a 3-9 grade) takes another row's value as a float
    target = y_ref.to_numpy(np.float64)
    if np.ptp(target) == 0:
        raise ValueError("label canaries need a non-constant regression target in the reference")
    # The target of another reference row, drawn among those at least half a standard deviation away.
    spread = target.std()
    for i in rows:
        far = target[np.abs(target - float(y.iloc[i])) >= 0.5 * spread]
        y.iloc[i] = float(far[rng.integers(len(far))]) if len(far) else float(target[rng.integers(len(target))])
    return y


def canary_auroc(*, corrupted: np.ndarray, clean: np.ndarray) -> float:
    """P(a corrupted canary ranks below a clean control), ties counting one half.

    Args:
        corrupted: (K,) scores of the corrupted canaries; clean: (C,) scores of the clean
            controls; lower = more likely bad (values or tie-free ranks).

    Returns:
        The AUROC of "low score = corrupted" in [0, 1]; 0.5 = no better than chance;
        NaN when either set is empty.
    """
    bad, good = np.asarray(corrupted, dtype=np.float64), np.asarray(clean, dtype=np.float64)
    if len(bad) == 0 or len(good) == 0:
        return float("nan")
    pooled = np.concatenate([bad, good])
    ranks = pd.Series(pooled).rank(method="average").to_numpy()  # 1 = lowest
    rank_sum_good = ranks[len(bad):].sum()
    # Mann-Whitney U of the clean controls = pairs where a clean control ranks above a corrupted canary.
    u_good = rank_sum_good - len(good) * (len(good) + 1) / 2
    return float(u_good / (len(bad) * len(good)))
