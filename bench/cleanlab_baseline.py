"""cleanlab, the tool users pick for label errors, as a benchmark baseline (benchmark-only dependency).

Two models: ``"mlp"``, the MLP LossVal itself trains (paper architecture, same
epochs, batch size and learning rate), so both see the same learner; and
``"hgb"``, scikit-learn's ``HistGradientBoostingClassifier`` / ``Regressor``
with its defaults (the stronger tabular model a user would pick).

- Classification: out-of-fold ``pred_probs`` from stratified 5-fold
  cross-validation; flags from ``cleanlab.filter.find_label_issues`` (its
  default ``prune_by_noise_rate``), values from
  ``cleanlab.rank.get_label_quality_scores`` (``self_confidence``; lower =
  more likely a label error).
- Regression: ``cleanlab.regression.learn.CleanLearning(model, cv_n_folds=5)
  .find_label_issues(X, y)``: flags ``is_label_issue``, values
  ``label_quality``. This refits the model about 80 times (5-fold CV for the
  initial residuals, a coarse and fine search of the issue fraction, 5
  bootstrap rounds for epistemic and one CV for aleatoric uncertainty).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold

from bench.methods import Cell, plain_model


class MLPRegressor(RegressorMixin, BaseEstimator):
    """lossval's regression MLP behind scikit-learn's estimator interface (for ``CleanLearning``)."""

    def __init__(self, epochs: int = 30, seed: int = 0) -> None:
        self.epochs = epochs
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> MLPRegressor:
        self.model_ = plain_model("regression", self.epochs, self.seed).fit(X, y, sample_weight=sample_weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)


MODELS: tuple[str, ...] = ("mlp", "hgb")


def classifier(model: str, epochs: int, seed: int):
    """A fresh classifier with ``fit`` / ``predict_proba`` / ``classes_``: the MLP or gradient boosting."""
    if model == "hgb":
        return HistGradientBoostingClassifier(random_state=seed % (2**31))
    return plain_model("classification", epochs, seed)


def regressor(model: str, epochs: int, seed: int) -> BaseEstimator:
    """A fresh scikit-learn regressor for ``CleanLearning``: the MLP or gradient boosting."""
    if model == "hgb":
        return HistGradientBoostingRegressor(random_state=seed % (2**31))
    return MLPRegressor(epochs=epochs, seed=seed % (2**31))


def out_of_fold_probabilities(X: np.ndarray, y: np.ndarray, *, epochs: int, seed: int, folds: int = 5, model: str = "mlp") -> np.ndarray:
    """(N, K) class probabilities of every row from a model (``"mlp"`` or ``"hgb"``) that did not train on it."""
    n_classes = int(y.max()) + 1
    probs = np.zeros((len(y), n_classes))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % (2**31))
    for fold, (fit_rows, held_out) in enumerate(splitter.split(X, y)):
        fitted = classifier(model, epochs, seed + fold).fit(X[fit_rows], y[fit_rows])
        proba = fitted.predict_proba(X[held_out])  # columns: the classes seen in this fold
        probs[np.ix_(held_out, fitted.classes_.astype(int))] = proba
    return probs


def cleanlab_outcome(cell: Cell, epochs: int, *, model: str = "mlp") -> tuple[np.ndarray, np.ndarray]:
    """(values, flags) of cleanlab with ``model`` on the cell's training rows; values: lower = more likely a label issue."""
    if cell.task == "classification":
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        labels = cell.y_train.astype(np.int64)
        probs = out_of_fold_probabilities(cell.X_train, labels, epochs=epochs, seed=cell.seed, model=model)
        flags = find_label_issues(labels, probs)
        return get_label_quality_scores(labels, probs), np.asarray(flags, dtype=bool)
    from cleanlab.regression.learn import CleanLearning

    learner = CleanLearning(regressor(model, epochs, cell.seed), cv_n_folds=5, seed=cell.seed % (2**31))
    issues = learner.find_label_issues(cell.X_train, cell.y_train)
    return issues["label_quality"].to_numpy(dtype=np.float64), issues["is_label_issue"].to_numpy(dtype=bool)
