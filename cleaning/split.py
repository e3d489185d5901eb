"""Step 3: the trusted reference set, its checks, and the held-out test split."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lossval.io import write_json, write_parquet
from lossval.reference import reference_distance
from lossval.imputation import impute_splits, imputed_metrics
from lossval.rows import ROW_ID, assign_row_ids, feature_columns, read_table
from schemas.dataset import DatasetError
from cleaning.ingest import check_rows, Ingested
from cleaning.project import Project

log = logging.getLogger("lossval_clean")


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame  # rows to value (row_id, features, target)
    reference: pd.DataFrame  # trusted rows LossVal compares with
    test: pd.DataFrame  # held out: never valued, never thresholded
    trusted_ids: list[str] = field(default_factory=list)  # input rows used as reference/test (kept as clean)
    check: dict = field(default_factory=dict)


def split_reference(project: Project, *, valid: pd.DataFrame, features: list[str]) -> Split:
    """Build the reference and test sets and check them.

    Raises:
        DatasetError: too few reference rows, a training class missing from the
            reference, a reference class unseen in training.
    """
    base, cfg = project.params.base, project.params.reference
    rng = np.random.default_rng(base.seed)
    columns = [ROW_ID, *features, base.target]
    if cfg.path is not None:
        pool, train, trusted = _trusted_file(project, cfg.path, "reference", columns), valid[columns], []
        source = "file"
    else:
        log.warning("no reference.path: sampling %.0f%% of the data as the trusted reference; a separate clean file is recommended", 100 * cfg.sample_fraction)
        take = rng.random(len(valid)) < cfg.sample_fraction
        pool, train = valid.loc[take, columns], valid.loc[~take, columns]
        trusted = pool[ROW_ID].astype(str).tolist()
        source = "sample"
    is_test = rng.random(len(pool)) < cfg.test_fraction
    if cfg.test_path is not None:  # a separate test file: the whole pool is reference
        is_test[:] = False
    reference, test = pool.loc[~is_test].reset_index(drop=True), pool.loc[is_test].reset_index(drop=True)
    if cfg.test_path is not None:
        test = _trusted_file(project, cfg.test_path, "test", columns).reset_index(drop=True)
        if overlap := set(test[ROW_ID]) & (set(train[ROW_ID]) | set(reference[ROW_ID])):
            raise DatasetError(f"{len(overlap)} rows of {cfg.test_path} also occur in the data or the reference; a test set must be disjoint")
    if len(reference) < cfg.min_rows:
        raise DatasetError(f"reference set too small: {len(reference)} rows after holding out the test split, need >= {cfg.min_rows} (reference.min_rows)")
    if len(test) < 2:
        raise DatasetError(f"test split too small: {len(test)} rows; raise reference.test_fraction or add reference rows")
    if len(train) < 2:
        raise DatasetError(f"only {len(train)} rows left to value after taking the reference set")
    if base.task == "classification":
        train_classes, ref_classes = set(train[base.target].unique()), set(reference[base.target].unique())  # unique(): fast on Arrow strings
        if len(train_classes) < 2:
            only = next(iter(train_classes))
            raise DatasetError(f"the data has a single class {only!r}; classification needs at least 2")
        if missing := sorted(train_classes - ref_classes):
            raise DatasetError(f"reference set lacks classes present in the data: {missing}; every class needs reference rows")
        if unseen := sorted((ref_classes | set(test[base.target].unique())) - train_classes):
            raise DatasetError(f"reference set has classes never seen in the data: {unseen}")
    # missing feature cells (the `impute` policy): filled from the training rows only, plus indicators
    try:
        train, filled, imputed = impute_splits(train, {"reference": reference, "test": test}, columns=features)
    except ValueError as e:
        raise DatasetError(f"cannot impute missing cells: {e}") from e
    reference, test = filled["reference"], filled["test"]
    features = feature_columns(train, base.target)
    check = reference_distance(train[features], reference[features], seed=base.seed)
    check.update(reference_rows=len(reference), test_rows=len(test), reference_source=source, **imputed_metrics(imputed))
    if check["reference_distance_ratio"] > cfg.max_distance_ratio:
        log.warning(
            "reference set is far from the data: OT ratio %.2f > %.2f (reference.max_distance_ratio); values may be unreliable",
            check["reference_distance_ratio"], cfg.max_distance_ratio,
        )
    return Split(train=train.reset_index(drop=True), reference=reference, test=test, trusted_ids=trusted, check=check)


def _trusted_file(project: Project, path: str, role: str, columns: list[str]) -> pd.DataFrame:
    """A trusted file (reference or test) read, given content row ids and schema-checked; ``columns`` of it.

    Raises:
        DatasetError: a column of the data is missing, or a row fails the schema (a trusted file must be clean).
    """
    raw = read_table(project.input_path(path))
    if absent := [c for c in columns if c != ROW_ID and c not in raw.columns]:
        raise DatasetError(f"the {role} set {path} lacks column(s) {absent} that the data has; columns are {list(map(str, raw.columns))}")
    ids, dup = assign_row_ids(raw)
    raw.insert(0, ROW_ID, ids)
    checked = check_rows(project, Ingested(frame=raw.assign(_duplicate=dup), input_sha256=""))
    if len(checked.failures):
        first = checked.failures["reason"].iloc[0]
        raise DatasetError(f"the {role} set must be clean, but {len(checked.failures)} of its rows fail the schema (e.g. {first}); fix {path}")
    return checked.valid[columns]


def save_split(project: Project, split: Split) -> None:
    write_parquet(split.train, project.work_file("train.parquet"))
    write_parquet(split.reference, project.work_file("reference.parquet"))
    write_parquet(split.test, project.work_file("test.parquet"))
    write_json({**split.check, "trusted_ids": split.trusted_ids}, project.work_file("reference_check.json"))


def load_split(project: Project) -> Split:
    import json

    check = json.loads(project.work_file("reference_check.json").read_text())
    trusted = check.pop("trusted_ids")
    return Split(
        train=pd.read_parquet(project.work_file("train.parquet")),
        reference=pd.read_parquet(project.work_file("reference.parquet")),
        test=pd.read_parquet(project.work_file("test.parquet")),
        trusted_ids=trusted,
        check=check,
    )
