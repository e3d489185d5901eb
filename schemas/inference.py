"""``lossval-clean init``: a complete params file for a new table, inferred from a sample of it.

The sample (at most ``sample_rows`` rows, seeded) is read as text, each column
gets its kind (:func:`schemas.columns.detect_kind`) and is converted to that
type; pandera's own inference (``pandera.infer_schema``) then gives each
column's dtype, nullability and numeric range. The result is the ``validate``
section with every column declared (kind, levels of categorical columns,
ranges of numeric ones), the ingest path, target and task, on top of the
project's defaults (its ``params.yaml``, or the one shipped with the code),
checked against :class:`schemas.params.Params` before it is written.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml

from lossval.rows import read_table
from schemas.columns import detect_kind, parse_boolean
from schemas.params import Params, ParamsError

#: Rows read for the inference; the whole file when it is smaller.
SAMPLE_ROWS = 100_000
#: A categorical column with more distinct values in the sample is written without levels (any level allowed).
MAX_DECLARED_LEVELS = 200
#: Reference rows the inferred sample_fraction aims at most (the paper used 10 % of 1000 training rows).
MAX_REFERENCE_ROWS = 1000
#: A numeric target with more distinct values than this is taken as regression when --task is not given.
REGRESSION_DISTINCT = 20


def typed_sample(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Each column converted to its detected kind: (typed frame, {column: kind}, {column: why})."""
    typed, kinds, why = {}, {}, {}
    for c in raw.columns:
        kinds[c], why[c] = detect_kind(raw[c])
        if kinds[c] == "numeric":
            typed[c] = pd.to_numeric(raw[c], errors="coerce")
        elif kinds[c] == "boolean":
            typed[c] = parse_boolean(raw[c])[0]
        else:
            typed[c] = raw[c].astype("string").str.strip()
    return pd.DataFrame(typed, index=raw.index), kinds, why


def _range(column: pa.Column) -> list[float] | None:
    stats = {k: v for check in column.checks for k, v in (check.statistics or {}).items()}
    low, high = stats.get("min_value"), stats.get("max_value")
    return None if low is None or high is None else [float(low), float(high)]


def infer_params(
    path: str | Path, *, target: str, defaults: dict[str, Any], path_in_params: str, task: str | None = None,
    sample_rows: int = SAMPLE_ROWS, seed: int = 0,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A complete params tree for the table at ``path``, and the columns left out (column: why).

    Args:
        defaults: the params tree the result starts from (every section).
        path_in_params: how ``ingest.path`` is written (relative to the project root).
        task: ``classification`` | ``regression``; None = regression for a numeric target
            with more than 20 distinct values, else classification.

    Raises:
        TableError: the file cannot be read. ParamsError: no column ``target``, or the
            result does not validate.
    """
    raw = read_table(path)
    n_rows = len(raw)
    if target not in raw.columns:
        raise ParamsError(f"--target {target!r} is not a column of {Path(path).name}; columns are {list(map(str, raw.columns))}")
    if len(raw) > sample_rows:
        raw = raw.iloc[np.sort(np.random.default_rng(seed).choice(len(raw), size=sample_rows, replace=False))]
    typed, kinds, why = typed_sample(raw)
    inferred = pa.infer_schema(typed)
    if task is None:
        numeric_target = kinds[target] == "numeric" and typed[target].nunique() > REGRESSION_DISTINCT
        task = "regression" if numeric_target else "classification"
    columns: dict[str, dict[str, Any]] = {}
    ranges: dict[str, list[float]] = {}
    for name, column in inferred.columns.items():
        kind = kinds[name]
        rule: dict[str, Any] = {"kind": kind}
        if kind == "categorical" and name != target:
            levels = sorted(typed[name].dropna().unique().tolist())
            rule["levels"] = levels if len(levels) <= MAX_DECLARED_LEVELS else None
        if name == target:
            rule = {"kind": "numeric" if task == "regression" else "categorical", "missing": "quarantine"}
        if kind == "numeric" and (bounds := _range(column)) is not None and (name != target or task == "regression"):
            ranges[name] = bounds
        columns[name] = rule
    tree = copy.deepcopy(defaults)
    tree["base"].update(task=task, target=target)
    tree["ingest"].update(path=path_in_params, format="auto", id_column=None)
    tree["reference"]["path"] = None
    tree["reference"]["sample_fraction"] = reference_fraction(n_rows, tree["reference"])
    classes = sorted(typed[target].dropna().astype(str).unique().tolist()) if task == "classification" else None
    tree["validate"].update(schema_name="params", features=None, classes=classes, ranges=ranges, columns=columns)
    try:
        Params.model_validate(tree)
    except Exception as e:  # pydantic's ValidationError, reported with the keys
        raise ParamsError(f"the inferred parameters do not validate: {e}") from e
    left_out = {c: why[c] for c, k in kinds.items() if k == "ignore" and c != target}
    return tree, left_out


def reference_fraction(n_rows: int, reference: dict[str, Any]) -> float:
    """The share of the data sampled as reference: the default, but at most about
    :data:`MAX_REFERENCE_ROWS` reference rows (each OT problem costs O(batch x reference rows):
    docs/benchmarks.md, section 3), and at least ``min_rows`` with a 1.5x margin (at most 0.5)."""
    kept = (1 - reference["test_fraction"]) * n_rows  # reference rows per unit of sample_fraction
    fraction = min(reference["sample_fraction"], MAX_REFERENCE_ROWS / kept)
    return round(min(0.5, max(fraction, 1.5 * reference["min_rows"] / kept)), 4)


def header(path: str, *, rows: int, left_out: dict[str, str]) -> str:
    """The comment written above the inferred parameters."""
    lines = [
        f"# lossval-clean parameters inferred by `lossval-clean init` from {path}",
        f"# (a sample of at most {rows} rows; pandera.infer_schema). Review before the first run:",
        "# validate.columns has every column's kind (numeric | categorical | boolean | ignore), the levels",
        "# seen in the sample and validate.ranges the numeric ranges seen; a cell outside them follows",
        "# validate.unknown_level / fails the range check. Missing feature cells: validate.missing.",
        "# reference.path is null: a seeded sample of the data is the reference (point it at trusted rows);",
        "# reference.sample_fraction is sized for this table: at least min_rows, at most about 1000 reference rows.",
    ]
    lines += [f"# left out (kind: ignore): {c}: {why}" for c, why in left_out.items()]
    return "\n".join(lines) + "\n"


def write_params(tree: dict[str, Any], destination: Path, *, comment: str) -> Path:
    """Write the tree as YAML (sections in order), refusing to overwrite an existing file."""
    if destination.exists():
        raise ParamsError(f"{destination} exists: choose another --output (nothing was written)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.tmp")
    tmp.write_text(comment + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None))
    os.replace(tmp, destination)
    return destination
