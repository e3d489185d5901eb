"""The typed view of ``params.yaml``: one section per pipeline stage plus ``base``.

``params.yaml`` is the only home of default values; these models declare
types and bounds but no defaults, and forbid unknown keys, so a typo or a
wrong type in the file (or in a ``--set key=value`` override) fails the run
before anything is written, with a message naming the key.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError


def _int_or_auto(value: Any) -> int | str:
    """An integer >= 1, or the literal ``"auto"`` (resolved from the table's size by lossval.settings)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PydanticCustomError("int_or_auto", "Input should be a valid integer >= 1 or 'auto', got {value}", {"value": repr(value)})
    return value


#: ``epochs`` / ``batch_size``: an integer >= 1 or "auto" (the library resolves it from the number of rows).
IntOrAuto = Annotated[int | Literal["auto"], PlainValidator(_int_or_auto)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Base(_Section):
    seed: int = Field(ge=0)
    task: Literal["classification", "regression"]
    target: str = Field(min_length=1)
    data_dir: str = Field(min_length=1, description="folder of the pipeline's outputs, relative to the project")


class Ingest(_Section):
    path: str = Field(min_length=1, description="the raw dataset, CSV or Parquet, relative to the project")
    format: Literal["auto", "csv", "parquet"]
    id_column: str | None = Field(description="column holding a stable row id; null = a content hash of the row")
    max_row_drop: float = Field(ge=0, le=1, description="refuse a file with this share fewer rows than the previous run's; 1 = never")
    allow_outside_overrides: bool = Field(description="let overrides (--set, flow parameters) point ingest.path / reference.path outside the project")


class ColumnRule(_Section):
    """One column of ``validate.columns``; an unset key (null) takes the section's policy."""

    kind: Literal["numeric", "categorical", "boolean", "ignore"]
    levels: list[str | int | float] | None = Field(None, description="allowed levels of a categorical column; null = any")
    missing: Literal["impute", "quarantine"] | None = Field(None, description="null = validate.missing")
    unknown_level: Literal["quarantine", "other"] | None = Field(None, description="null = validate.unknown_level")


class Validate(_Section):
    schema_name: str = Field(description="a DataFrameModel in schemas/dataset.py, or 'params' to build one from this section")
    features: list[str] | None = Field(description="feature columns; null = every column but the target and the id")
    classes: list[str | int] | None = Field(description="allowed classes (classification); null = any")
    ranges: dict[str, tuple[float, float]] = Field(description="column: [min, max], inclusive")
    # column kinds and policies of the `params` schema (schemas/columns.py)
    columns: dict[str, ColumnRule] = Field(description="column: {kind, levels, missing, unknown_level}; undeclared = detected")
    missing: Literal["impute", "quarantine"] = Field(description="missing feature cells: impute (train median / most frequent + indicator) or quarantine the row")
    unknown_level: Literal["quarantine", "other"] = Field(description="a categorical cell outside its declared levels")


class Reference(_Section):
    path: str | None = Field(description="trusted reference rows (same columns); null = a seeded sample of the data")
    sample_fraction: float = Field(gt=0, lt=1, description="share of the data sampled as reference when path is null")
    test_fraction: float = Field(gt=0, lt=1, description="share of the reference held out as the test split")
    test_path: str | None = Field(description="a separate test file (same columns); null = hold out test_fraction of the reference")
    min_rows: int = Field(ge=2)
    max_distance_ratio: float = Field(gt=0, description="warn when reference-to-train OT exceeds this multiple of train-to-train")


class Value(_Section):
    epochs: IntOrAuto = Field(description="an integer, or auto: the paper's 30 on small tables, fewer on large (lossval.settings)")
    batch_size: IntOrAuto = Field(description="an integer, or auto: the paper's 32 on small tables, larger on large (lossval.settings)")
    lr: float = Field(gt=0)
    hidden_layers: list[int] | None
    device: str
    options: dict[str, Any] = Field(description="further keyword options of lossval.LossVal")
    shards: int = Field(ge=1, le=1024, description="split the rows by a hash of their id into this many shards, each valued against the same reference set as its own Prefect run; values pooled, one threshold")
    deployment: str | None = Field(
        description="a Prefect deployment FLOW/NAME (e.g. lossval-value/gpu) that values the rows on its own work pool; null = in-process",
        pattern=r"^[^/]+/[^/]+$",
    )


class Quarantine(_Section):
    strategy: Literal["calibrated", "auto", "quantile", "value"]
    min_precision: float = Field(gt=0, le=1, description="calibrated: the lowest estimated precision of the quarantine")
    canary_share: float = Field(ge=0, lt=1, description="share of the reference rows made into canaries; 0 = none")
    min_canary_auroc: float = Field(ge=0, le=1, description="below this canary AUROC the valuation is unreliable")
    ledger_runs: int = Field(30, ge=1, description="the ledger keeps this many runs' quarantine events in full; older ones are folded into one event per row")

    @model_validator(mode="after")
    def _canaries_for_calibrated(self) -> Quarantine:
        if self.strategy == "calibrated" and self.canary_share == 0:
            raise ValueError("strategy 'calibrated' needs canaries: set quarantine.canary_share > 0 (e.g. 0.25)")
        return self
    quantile: float = Field(ge=0, le=1)
    value: float
    max_fraction: float = Field(ge=0, le=1)


class Retrain(_Section):
    model: Literal["mlp"]
    mode: Literal["drop", "weighted", "both"]
    hidden_layers: list[int] | None
    epochs: IntOrAuto = Field(description="an integer, or auto: resolved from the number of training rows (lossval.settings)")
    batch_size: IntOrAuto = Field(description="an integer, or auto: resolved from the number of training rows (lossval.settings)")
    lr: float = Field(gt=0)


class Snapshot(_Section):
    push: bool = Field(description="push the snapshot to the DVC remote")


class Tracking(_Section):
    experiment: str = Field(min_length=1)
    registered_model: str = Field(min_length=1)


class Params(_Section):
    """Every setting of a pipeline run."""

    base: Base
    ingest: Ingest
    validate_: Validate = Field(alias="validate")
    reference: Reference
    value: Value
    quarantine: Quarantine
    retrain: Retrain
    snapshot: Snapshot
    tracking: Tracking

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("validate_", mode="after")
    @classmethod
    def _features_unique(cls, v: Validate) -> Validate:
        if v.features is not None and len(set(v.features)) != len(v.features):
            raise ValueError("validate.features lists a column twice")
        for name, rule in v.columns.items():
            if rule.levels is not None and rule.kind != "categorical":
                raise ValueError(f"validate.columns.{name}: levels are for kind categorical, got kind {rule.kind!r}")
        return v

    @field_validator("validate_", mode="after")
    @classmethod
    def _target_never_imputed(cls, v: Validate, info) -> Validate:
        target = info.data["base"].target if "base" in info.data else None
        rule = v.columns.get(target) if target else None
        if rule is not None and rule.missing == "impute":
            raise ValueError(f"validate.columns.{target}.missing: the target is never imputed (use quarantine), got 'impute'")
        return v

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def flat(self) -> dict[str, str]:
        """``section.key -> value`` strings, for MLflow params."""
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in _flatten(self.as_dict()).items()}


class ParamsError(ValueError):
    """params.yaml or an override is invalid; the message names the key."""


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and key not in ("options", "ranges", "columns"):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def apply_overrides(tree: dict[str, Any], overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    """Set ``section.key`` values; strings ``"a.b=value"`` are parsed as YAML scalars."""
    tree = copy.deepcopy(tree)
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
    for dotted, value in items:
        *parents, leaf = dotted.split(".")
        node = tree
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ParamsError(f"unknown parameter {dotted!r}: no section {part!r}")
            node = node[part]
        node[leaf] = value
    return tree


def parse_override(override: str) -> tuple[str, Any]:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ParamsError(f"an override must look like section.key=value, got {override!r}")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ParamsError(f"override {override!r}: value is not valid YAML") from e


def load_params(path: str | Path, overrides: Mapping[str, Any] | Sequence[str] = ()) -> Params:
    """Read ``params.yaml``, apply overrides, validate everything.

    Raises:
        ParamsError: missing or unreadable file, unknown key, wrong type; the
            message lists every problem with its dotted key.
    """
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ParamsError(f"params file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ParamsError(f"params file {path} is not valid YAML: {e}") from e
    if not isinstance(tree, dict):
        raise ParamsError(f"params file {path} must hold a mapping of sections")
    tree = apply_overrides(tree, overrides)
    try:
        return Params.model_validate(tree)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ParamsError(f"invalid parameters in {path.name}: {problems}") from e
