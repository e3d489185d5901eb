"""Column kinds, unknown levels and missing-cell policies of the `params` schema (schemas/columns.py)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from lossval.rows import ROW_ID, assign_row_ids
from schemas.columns import detect_kind
from schemas.dataset import schema_from_params, validate_rows
from schemas.params import ParamsError, load_params
from tests.helpers import EXAMPLE, REPO


def _params(tmp_path, **validate):
    tree = yaml.safe_load((REPO / "params.yaml").read_text())
    tree["validate"].update(schema_name="params", classes=None, **validate)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree))
    return load_params(tmp_path / "params.yaml")


def _validate(frame, params):
    ids, dup = assign_row_ids(frame)
    frame = frame.assign(**{ROW_ID: ids})
    schema = schema_from_params(frame, params=params, reserved=(ROW_ID,))
    return validate_rows(frame, schema=schema, target="target", task="classification", duplicate=dup)


def _table():
    return pd.DataFrame(
        {
            "colour": ["red", "green", "red", None, "blue", "red"],
            "size": ["1.5", "2", None, "3", "4", "5"],
            "ok": ["yes", "no", "YES", "no", None, "maybe"],
            "target": ["a", "b", "a", "b", "a", "b"],
        }
    )


@pytest.mark.parametrize(
    "values, kind",
    [
        (["1", "2.5", "-3e4", None, "7"], "numeric"),
        (["True", "false", "TRUE", None], "boolean"),
        (["red", "blue", "red", "9"], "categorical"),
        ([f"id-{i:05d}" for i in range(100)], "ignore"),  # ids / free text
        ([f"2024-01-{1 + i % 28:02d} 10:{i % 60:02d}" for i in range(100)], "ignore"),  # dates
        ([str(i) for i in range(100, 150)], "ignore"),  # row numbers
        ([None, ""], "ignore"),
    ],
)
def test_detect_kind(values, kind):
    assert detect_kind(pd.Series(values, dtype=object))[0] == kind


def test_kinds_policies_and_reasons(tmp_path):
    params = _params(
        tmp_path,
        columns={"colour": {"kind": "categorical", "levels": ["red", "blue"]}, "ok": {"kind": "boolean", "missing": "quarantine"}},
    )
    result = _validate(_table(), params)
    assert sorted(result.failures["reason"]) == ["schema:not_boolean:ok", "schema:not_nullable:ok", "schema:unknown_level:colour"]
    valid = result.valid
    assert len(valid) == 3 and valid["size"].isna().sum() == 1 and valid["colour"].isna().sum() == 1  # imputed later, not quarantined
    assert valid["ok"].dtype == "boolean" and valid["size"].dtype == float


def test_unknown_level_other_and_missing_quarantine(tmp_path):
    params = _params(tmp_path, missing="quarantine", unknown_level="other", columns={"colour": {"kind": "categorical", "levels": ["red", "blue"]}})
    result = _validate(_table().drop(columns="ok"), params)
    assert sorted(result.failures["reason"]) == ["schema:not_nullable:colour", "schema:not_nullable:size"]
    assert result.valid["colour"].tolist() == ["red", "other", "blue", "red"]


def test_non_features_are_left_out_unless_declared(tmp_path):
    table = pd.read_csv(EXAMPLE / "adult_raw_sample.csv", dtype=str).head(200)
    table["note"] = [f"free text number {i}" for i in range(len(table))]
    result = _validate(table, _params(tmp_path))
    assert "note" in result.left_out and "note" not in result.features and "workclass" in result.features
    result = _validate(table, _params(tmp_path, columns={"note": {"kind": "categorical"}}))
    assert "note" in result.features and not result.left_out


def test_params_refuse_an_imputed_target_and_levels_on_numbers(tmp_path):
    with pytest.raises(ParamsError, match="the target is never imputed"):
        _params(tmp_path, columns={"target": {"kind": "categorical", "missing": "impute"}})
    with pytest.raises(ParamsError, match="levels are for kind categorical"):
        _params(tmp_path, columns={"size": {"kind": "numeric", "levels": [1, 2]}})
    with pytest.raises(ParamsError, match="validate.columns.size.kind"):
        _params(tmp_path, columns={"size": {"kind": "float"}})
