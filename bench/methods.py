"""The detectors the quality benchmark compares, behind one interface.

A method takes one :class:`Cell` (a split with injected noise) and returns an
:class:`Outcome`: a value per training row (higher = more valuable), its own
flags when it has a decision rule of its own (cleanlab), the per-row parts of
LossVal's objective (for reasons), and the test score of the model it trained.

Names:

``lossval``
    This project's default, ``LossVal(task)``.
``paper``
    The authors' variant, ``LossVal.paper(task)``, with geomloss's
    ``SamplesLoss`` itself. ``paper_fast`` swaps in this project's Sinkhorn
    solver: equal to 1e-4 per call (tests/core/test_ot.py), but 30 epochs of
    per-batch Adam amplify float-level differences, so its values are close
    to, not identical with, ``paper``'s (bench/results/paper_solver_check.csv).
``loss_only``, ``ot_only``, ``ot_not_squared``
    The paper's ablations, applied to this project's default.
``cleanlab``
    cleanlab 2.x on out-of-fold predictions of 5-fold cross-validation of the
    same MLP LossVal trains (paper architecture, same epochs, batch and lr):
    classification ``filter.find_label_issues`` (flags) and
    ``rank.get_label_quality_scores`` (values); regression
    ``regression.learn.CleanLearning(...).find_label_issues`` (flags and
    ``label_quality`` values).
``cleanlab_hgb``
    The same cleanlab calls on scikit-learn's ``HistGradientBoostingClassifier``
    / ``Regressor`` (defaults), 5-fold out of fold: the stronger label-error
    baseline a user would pick for tabular data.
``random``
    Uniform random values.
``lv[key=value,...]`` / ``paper[key=value,...]``
    The default (or the paper variant) with options overridden, for experiments,
    e.g. ``lv[weight_lr=0.02,average_last=10]``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lossval import MLP, LossVal


@dataclass(frozen=True)
class Cell:
    """One benchmark split: noisy training rows, validation rows, clean test rows, and the truth."""

    setting: str  # "paper" (noise on train and validation) or "trusted" (train only)
    dataset: str
    task: str
    kind: str  # "labels", "features" or "mixed"
    rate: float
    rep: int
    seed: int
    X_train: np.ndarray  # (N, D)
    y_train: np.ndarray  # (N,)
    X_val: np.ndarray  # (M, D)
    y_val: np.ndarray  # (M,)
    X_test: np.ndarray  # (T, D)
    y_test: np.ndarray  # (T,)
    noise: np.ndarray  # (N,) "" for clean rows, else "labels" or "features"

    @property
    def noisy(self) -> np.ndarray:
        return self.noise != ""


@dataclass
class Outcome:
    values: np.ndarray  # (N,) higher = more valuable
    flags: np.ndarray | None = None  # (N,) bool, the method's own decision, if it has one
    parts: pd.DataFrame | None = None  # LossVal.parts_
    test_score: float = float("nan")  # accuracy (classification) or R^2 (regression) on the test rows


def test_score(model: Any, cell: Cell) -> float:
    """Accuracy (classification) or R^2 (regression) of a fitted model on the cell's test rows."""
    pred = model.predict(cell.X_test)
    if cell.task == "classification":
        return float(np.mean(pred == cell.y_test))
    residual = np.sum((cell.y_test - pred) ** 2)
    return float(1.0 - residual / np.sum((cell.y_test - cell.y_test.mean()) ** 2))


def _lossval(make: Callable[..., LossVal], overrides: dict[str, Any]) -> Callable[[Cell, int], Outcome]:
    def run(cell: Cell, epochs: int) -> Outcome:
        options = dict(epochs=epochs, random_state=cell.seed % (2**31), progress=False, device="cpu")
        lv = make(cell.task, **{**options, **overrides}).fit(cell.X_train, cell.y_train, cell.X_val, cell.y_val)
        return Outcome(lv.values_.to_numpy(), parts=lv.parts_, test_score=test_score(lv, cell))

    return run


def _random(cell: Cell, epochs: int) -> Outcome:
    return Outcome(np.random.default_rng(cell.seed).random(len(cell.y_train)))


def _cleanlab(model: str) -> Callable[[Cell, int], Outcome]:
    def run(cell: Cell, epochs: int) -> Outcome:
        from bench.cleanlab_baseline import cleanlab_outcome  # benchmark-only dependency

        values, flags = cleanlab_outcome(cell, epochs, model=model)
        return Outcome(values, flags=flags)

    return run


NAMED: dict[str, Callable[[Cell, int], Outcome]] = {
    "lossval": _lossval(LossVal, {}),
    "paper": _lossval(LossVal.paper, {}),
    "paper_fast": _lossval(LossVal.paper, {"solver": "fast"}),
    "loss_only": _lossval(LossVal, {"combine": "loss_only"}),
    "ot_only": _lossval(LossVal, {"combine": "ot_only"}),
    "ot_not_squared": _lossval(LossVal, {"ot_power": 1.0}),
    "cleanlab": _cleanlab("mlp"),
    "cleanlab_hgb": _cleanlab("hgb"),
    "random": _random,
}
#: What a full run compares (``paper_fast`` only checks the solver swap).
DEFAULT_METHODS: tuple[str, ...] = (
    "lossval", "paper", "loss_only", "ot_only", "ot_not_squared", "cleanlab", "cleanlab_hgb", "random",
)  # fmt: skip
#: Methods with their own flags (their ``f1_flags`` differ from the 2-means F1 of their values).
CLEANLAB: tuple[str, ...] = ("cleanlab", "cleanlab_hgb")
_CUSTOM = re.compile(r"^(lv|paper)\[(.*)\]$")


def parse_option(item: str) -> tuple[str, Any]:
    """``"a=1"`` -> ``("a", 1)`` (the value a Python literal, else the bare word)."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ValueError(f"option {item!r} is not key=value")
    try:
        return key.strip(), ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        return key.strip(), raw.strip()


def parse_options(text: str) -> dict[str, Any]:
    """``"a=1,b=True,c='x'"`` -> ``{"a": 1, "b": True, "c": "x"}`` (values are Python literals or bare words)."""
    return dict(parse_option(part) for part in filter(None, (part.strip() for part in text.split(","))))


def resolve(name: str) -> Callable[[Cell, int], Outcome]:
    """The runner of a method name (see the module doc)."""
    if name in NAMED:
        return NAMED[name]
    match = _CUSTOM.match(name)
    if not match:
        raise ValueError(f"unknown method {name!r}; known: {sorted(NAMED)} or lv[key=value,...] / paper[key=value,...]")
    base, overrides = match.groups()
    options = parse_options(overrides)
    if base == "paper":
        return _lossval(LossVal.paper, options)
    return _lossval(LossVal, options)


def validation_use(name: str) -> tuple[bool, bool]:
    """Whether a method reads the validation (features, labels).

    LossVal only transports the validation features (its labels are checked,
    never trained on), unless ``ot_label_scale`` puts the labels into the
    transport; ``loss_only``, cleanlab and random never look at the validation rows.
    """
    if name in ("cleanlab", "cleanlab_hgb", "random", "loss_only"):
        return False, False
    match = _CUSTOM.match(name)
    options = parse_options(match.group(2)) if match else {}
    if options.get("combine") == "loss_only":
        return False, False
    return True, bool(options.get("ot_label_scale", 0))


def plain_model(task: str, epochs: int, seed: int) -> MLP:
    """The MLP LossVal trains, without row weights (the model the baselines cross-validate)."""
    return MLP(task, epochs=epochs, random_state=seed % (2**31), progress=False, device="cpu")
