"""Mixed-type features in the library: encoding, the OT ground cost of a category change, level cap, imputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossval import MLP, LossVal
from lossval.imputation import Imputer, impute_splits, imputed_metrics
from lossval.model import design_input, export_state
from lossval.tabular import ONE_HOT, OTHER, TabularEncoder, column_kind
from tests.helpers import EXAMPLE

CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex", "native-country"]


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE / "adult_raw_sample.csv").dropna().reset_index(drop=True)


def test_categorical_columns_reach_lossval_as_categories(adult):
    X, y = adult.drop(columns="target"), adult["target"]
    X = X.astype({"sex": "category"})  # category and object (str) columns alike
    lv = LossVal("classification", epochs=2, random_state=0).fit(X.iloc[:400], y.iloc[:400], X.iloc[400:], y.iloc[400:])
    kinds = lv.encoder_.kinds
    assert sorted(c for c, k in kinds.items() if k == "categorical") == sorted(CATEGORICAL)
    assert all(kinds[c] == "numeric" for c in ("age", "fnlwgt", "hours-per-week"))
    levels = {c: lv.encoder_.levels[c] for c in CATEGORICAL}
    assert levels["sex"] == ("Female", "Male") and "Private" in levels["workclass"]
    assert lv.n_features_in_ == 6 + sum(len(v) for v in levels.values())
    assert "race=White" in lv.feature_names_in_ and "race" not in lv.feature_names_in_
    Z = lv.encoder_.transform(X.iloc[:400])
    race = [lv.feature_names_in_.index(f"race={level}") for level in levels["race"]]
    assert set(np.unique(Z[:, race]).round(6)) == {0.0, round(ONE_HOT, 6)}  # one-hot, every row exactly one level
    assert np.allclose(Z[:, race].sum(axis=1), ONE_HOT)
    assert lv.values_.index.equals(X.iloc[:400].index) and np.isfinite(lv.values_).all()
    assert set(lv.predict(X.iloc[400:][list(reversed(X.columns))])) <= {"<=50K", ">50K"}  # by name, any order


def test_a_category_change_costs_as_much_as_one_standard_deviation():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(5, 3, 200), "colour": rng.choice(["red", "green", "blue", "grey"], 200), "ok": rng.random(200) < 0.5})
    encoder = TabularEncoder.fit(X)
    std = X["x"].std(ddof=0)
    base = X.iloc[[0]]
    moved = base.assign(x=base["x"] + std)
    recoloured = base.assign(colour="green" if base["colour"].iloc[0] != "green" else "red")
    flipped = base.assign(ok=~base["ok"])

    def squared(a, b):
        return float(((encoder.transform(a) - encoder.transform(b)) ** 2).sum())

    assert squared(base, moved) == pytest.approx(1.0)
    assert squared(base, recoloured) == pytest.approx(1.0)
    assert squared(base, flipped) == pytest.approx(1.0)
    assert squared(base, base.assign(colour="purple")) == pytest.approx(0.5)  # unseen, no `other`: all zeros


def test_level_cap_pools_rare_levels_into_other():
    counts = {f"l{i:02d}": 40 - i for i in range(30)}
    X = pd.DataFrame({"c": [k for k, n in counts.items() for _ in range(n)]})
    X["x"] = np.arange(len(X), dtype=float)
    encoder = TabularEncoder.fit(X, max_levels=5)
    assert encoder.levels["c"] == ("l00", "l01", "l02", "l03", OTHER)
    design = encoder.design(pd.DataFrame({"c": ["l29", "never-seen", "l01"], "x": [0.0, 1.0, 2.0]}))
    assert design["c=other"].tolist() == [1.0, 1.0, 0.0] and design["c=l01"].tolist() == [0.0, 0.0, 1.0]
    model = MLP("classification", epochs=1, max_levels=5, random_state=0).fit(X, X["x"] > 300)
    assert model.n_features_in_ == 6


def test_mixed_input_errors_name_the_column():
    X = pd.DataFrame({"c": ["a", None, "b", "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match=r"missing values \{'c': 1\}"):
        LossVal(epochs=1).fit(X, [0, 1, 0, 1], X.fillna("a"), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="dtype datetime64"):
        column_kind(pd.Series(pd.to_datetime(["2020-01-01"]), name="when"))
    model = MLP(epochs=1).fit(X.fillna("a"), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"lacks the training feature columns \['c'\]"):
        model.predict(X[["x"]])


def test_exported_state_rebuilds_the_design_input(adult):
    X, y = adult.drop(columns="target"), adult["target"]
    state = export_state(MLP("classification", epochs=1, random_state=0).fit(X, y))
    assert state["encoder"]["kinds"]["race"] == "categorical"
    example = design_input(state, X.head(3))
    assert example.dtype == np.float32 and example.shape == (3, len(state["feature_names"]))


def test_imputer_is_fitted_on_training_rows_only():
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0, 10.0], "c": ["a", "b", "b", None], "f": pd.array([True, None, True, False], dtype="boolean")})
    test = pd.DataFrame({"x": [np.nan, 100.0], "c": [None, "a"], "f": pd.array([None, True], dtype="boolean")})
    imputer = Imputer.fit(train, columns=["x", "c", "f"])
    assert imputer.fill == {"x": 3.0, "c": "b", "f": True} and imputer.indicators == ("x", "c", "f")
    filled_train, filled, counts = impute_splits(train, {"test": test}, columns=["x", "c", "f"])
    assert counts == {"x": 2, "c": 2, "f": 2}
    assert filled["test"]["x"].tolist() == [3.0, 100.0] and filled["test"]["c"].tolist() == ["b", "a"]
    assert filled["test"]["x__missing"].tolist() == [True, False] and filled_train["f"].dtype == bool
    assert list(filled_train.columns) == ["x", "c", "f", "x__missing", "c__missing", "f__missing"]
    assert imputed_metrics({"x": 2, "a(b)": 1, "z": 0}) == {"imputed_cells": 3, "imputed_cells.x": 2, "imputed_cells.a_b_": 1}
    complete = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "a"]})
    with pytest.raises(ValueError, match="already has that name"):
        Imputer.fit(train.assign(x__missing=1.0), columns=["x"])
    assert Imputer.fit(complete, columns=["x", "c"]).indicators == ()
