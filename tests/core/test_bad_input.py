"""Every bad input gets a ValueError naming the argument and the problem, never a torch traceback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossval import LossVal, TrainingDivergedError

FAST = dict(epochs=1, random_state=0, progress=False)


def _data(n=40, d=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = np.array(["a", "b"] * (n // 2))
    return X, y, X[:10].copy(), y[:10].copy()


def _with(index, value):
    X, y, Xv, yv = _data()
    args = [X, y, Xv, yv]
    args[index] = value
    return args


X0, y0, Xv0, yv0 = _data()
nan_X = X0.copy(); nan_X[3, 1] = np.nan
inf_X = X0.copy(); inf_X[5, 0] = np.inf
nan_Xv = Xv0.copy(); nan_Xv[0, 0] = np.nan
y_none = y0.astype(object); y_none[2] = None

CASES = [
    ("nan in X_train", _with(0, nan_X), "X_train contains NaN or inf"),
    ("inf in X_train", _with(0, inf_X), "X_train contains NaN or inf"),
    ("nan in X_val", _with(2, nan_Xv), "X_val contains NaN or inf"),
    ("missing label", _with(1, y_none), "y_train contains 1 missing"),
    ("length mismatch", _with(1, y0[:-1]), "y_train has 39 values but X_train has 40 rows"),
    ("val length mismatch", _with(3, yv0[:-2]), "y_val has 8 values but X_val has 10 rows"),
    ("empty train", _with(0, np.empty((0, 3))), "X_train must have at least 2 rows"),
    ("single-row train", _with(0, X0[:1]), "X_train must have at least 2 rows"),
    ("empty val", _with(2, np.empty((0, 3))), "X_val must have at least 2 rows"),
    ("single class", _with(1, np.array(["a"] * 40)), "single class 'a'"),
    ("unseen val class", _with(3, np.array(["a", "c"] * 5)), r"y_val has classes not present in the training labels: \['c'\]"),
    ("non-numeric array", _with(0, X0.astype(str)), "X_train must hold numeric features only"),
    ("feature count", _with(2, Xv0[:, :2]), "X_val has 2 features but X_train had 3"),
    ("1-D X", _with(0, X0[:, 0]), "X_train must be 2-D"),
]


@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_fit_input(name, args, message):
    with pytest.raises(ValueError, match=message):
        LossVal(**FAST).fit(*args)


def test_string_columns_are_categorical_and_unusable_dtypes_are_named():
    X, y, Xv, yv = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(city="Paris")  # a categorical feature (lossval.tabular)
    with pytest.raises(ValueError, match=r"X_val lacks the training feature columns \['city'\]"):
        LossVal(**FAST).fit(frame, y, pd.DataFrame(Xv, columns=["a", "b", "c"]), yv)
    with pytest.raises(ValueError, match=r"column 'when' has dtype datetime64"):
        LossVal(**FAST).fit(frame.assign(when=pd.Timestamp("2024-01-01")), y, pd.DataFrame(Xv, columns=["a", "b", "c"]), yv)


def test_missing_validation_column_is_named():
    X, y, Xv, yv = _data()
    with pytest.raises(ValueError, match=r"X_val lacks the training feature columns \['c'\]"):
        LossVal(**FAST).fit(pd.DataFrame(X, columns=list("abc")), y, pd.DataFrame(Xv[:, :2], columns=list("ab")), yv)


def test_regression_target_must_be_numeric_and_finite():
    X, _, Xv, _ = _data()
    with pytest.raises(ValueError, match="y_train must be numeric for task='regression'"):
        LossVal("regression", **FAST).fit(X, np.array(["x"] * 40), Xv, np.zeros(10))
    y = np.zeros(40); y[0] = np.nan
    with pytest.raises(ValueError, match="y_train contains 1 missing, NaN or inf"):
        LossVal("regression", **FAST).fit(X, y, Xv, np.zeros(10))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(task="ranking"), "task must be one of"),
        (dict(epochs=0), "epochs must be an integer >= 1"),
        (dict(batch_size=2.5), "batch_size must be an integer >= 1"),
        (dict(lr=-1.0), "lr must be a finite number > 0"),
        (dict(hidden_layers=(10, 0)), "hidden_layers must be a tuple of positive integers"),
        (dict(device="tpu"), "device must be 'auto', 'cpu' or 'cuda"),
        (dict(weight_updates="sometimes"), "weight_updates must be one of"),
        (dict(combine="sum"), "combine must be one of"),
        (dict(scaling=1.5), r"scaling must be in \(0, 1\)"),
        (dict(callbacks=[42]), "callbacks must be callables"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        LossVal(**options)


def test_huge_magnitudes_and_constant_columns_are_handled():
    X, y, Xv, yv = _data()
    X = np.column_stack([X * 1e300, np.full(40, 7.0)])
    Xv = np.column_stack([Xv * 1e300, np.full(10, 7.0)])
    lv = LossVal(**FAST).fit(X, y, Xv, yv)
    assert np.isfinite(lv.values_).all()


def test_divergence_is_reported_with_what_to_change():
    X, y, Xv, yv = _data()
    with pytest.raises(TrainingDivergedError, match=r"Lower the learning rate \(lr=1e\+30"):
        LossVal(epochs=3, lr=1e30, random_state=0, progress=False).fit(X, y, Xv, yv)
