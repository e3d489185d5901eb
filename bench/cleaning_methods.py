"""The variants the cleaning benchmark (:mod:`bench.cleaning`) compares, and how it scores them.

- ``all`` / ``oracle`` / ``clean`` / ``cleanlab``: the pipeline's downstream MLP (params.yaml
  ``retrain``) on all training rows, on the rows that are truly clean, on the rows the pipeline's
  default decision keeps, on the rows cleanlab does not flag (its own flags).
- ``weighted``: the same MLP on all rows with the values as sample weights.
- ``champion``: the variant the gate promotes (all, clean or weighted).

Every variant trains with the same seed and is scored on the same test rows; the difference to
``all`` carries the champion gate's paired bootstrap interval over the test rows (:mod:`lossval.gate`). Scores: accuracy (classification)
or RMSE of the standardised target (regression); "gain" is always "error of all minus error of the
variant", so > 0 = better than all rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.common import REPO
from bench.methods import Cell
from lossval import MLP, LossVal
from lossval.canary import make_canaries
from lossval.gate import champion_gate

#: The variants the gate chooses among (the pipeline's ``retrain.mode: both``).
GATE_VARIANTS: tuple[str, ...] = ("all", "clean", "weighted")


@dataclass(frozen=True)
class Settings:
    """The pipeline's defaults (params.yaml): valuation, decision (its ``quarantine`` section) and retraining."""

    epochs: int
    batch_size: int
    lr: float
    quarantine: Any  # schemas.params.Quarantine

    @classmethod
    def from_params(cls, overrides: Sequence[str] = ()) -> Settings:
        """params.yaml's settings; ``overrides`` as ``"quarantine.min_precision=0.5"``."""
        from schemas.params import load_params

        params = load_params(REPO / "params.yaml", list(overrides))
        if params.value.epochs != params.retrain.epochs:
            raise SystemExit(f"value.epochs {params.value.epochs} != retrain.epochs {params.retrain.epochs}: pass --epochs")
        return cls(epochs=params.retrain.epochs, batch_size=params.retrain.batch_size, lr=params.retrain.lr, quarantine=params.quarantine)


@dataclass(frozen=True)
class Quarantine:
    """The pipeline's default decision on one cell's training rows."""

    values: np.ndarray  # (N,) higher = more valuable
    flagged: np.ndarray  # (N,) bool, True = quarantined
    rule: str
    estimate: dict[str, float]  # est_count, est_lo, est_hi, est_precision, canary_auroc (nan: no canaries)


def quarantine(cell: Cell, *, epochs: int, settings: Settings) -> Quarantine:
    """Value the training rows against the reference (``cell.X_val``) and decide as the pipeline does.

    As ``cleaning.value``: canaries from ``quarantine.canary_share`` of the reference rows
    (:func:`lossval.canary.make_canaries`; their sources leave the OT reference) are valued together with
    the training rows. The decision is the pipeline's own, ``cleaning.quarantine.decide_values`` (tie-free
    ranks shared with the canaries; ``calibrated`` by default); it flags training rows only.
    """
    from cleaning.quarantine import decide_values

    q, n = settings.quarantine, len(cell.y_train)
    seed = cell.seed % (2**31)
    canaries = make_canaries(pd.DataFrame(cell.X_val), pd.Series(cell.y_val), task=cell.task, share=q.canary_share, seed=seed, min_reference=2)
    X = np.vstack([cell.X_train, canaries.X.to_numpy(dtype=np.float64)])  # (N + 2S, D)
    y = np.concatenate([cell.y_train, canaries.y.to_numpy().astype(cell.y_train.dtype)])
    lv = LossVal(cell.task, epochs=epochs, batch_size=settings.batch_size, lr=settings.lr, random_state=seed, progress=False,
                 device="cpu").fit(X, y, cell.X_val[canaries.keep], cell.y_val[canaries.keep])  # fmt: skip
    rows = lv.parts_[["loss_part", "transport_part"]].assign(value=lv.values_.to_numpy()).reset_index(drop=True)
    values, canary_rows = rows.iloc[:n].reset_index(drop=True), rows.iloc[n:].reset_index(drop=True)
    decision, cal = decide_values(values, canary_rows.assign(kind=canaries.kind), q, seed=seed)
    nan = float("nan")
    estimate = dict(est_count=nan, est_lo=nan, est_hi=nan, est_precision=nan, canary_auroc=nan)
    if cal is not None:
        estimate = dict(est_count=cal.estimated_bad, est_lo=cal.estimated_bad_low, est_hi=cal.estimated_bad_high,
                        est_precision=cal.precision, canary_auroc=cal.canary_auroc)  # fmt: skip
    return Quarantine(values=values["value"].to_numpy(), flagged=decision.flagged, rule=decision.rule, estimate=estimate)


def row_weights(q: Quarantine) -> np.ndarray:
    """(N,) sample weights of the weighted retraining: the values themselves."""
    return q.values


class Trainer:
    """Fits the pipeline's downstream MLP on (a subset of, or weighted) training rows of one cell."""

    def __init__(self, cell: Cell, *, epochs: int, settings: Settings) -> None:
        self.cell, self.epochs, self.settings = cell, epochs, settings

    def model(self) -> MLP:
        s = self.settings
        return MLP(self.cell.task, epochs=self.epochs, batch_size=s.batch_size, lr=s.lr, random_state=self.cell.seed % (2**31),
                   progress=False, device="cpu")  # fmt: skip

    def predict(self, *, keep: np.ndarray | None = None, weight: np.ndarray | None = None) -> np.ndarray:
        """(T,) test predictions of the model trained on the kept rows (all by default), optionally weighted."""
        c = self.cell
        rows = np.ones(len(c.y_train), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        model = self.model().fit(c.X_train[rows], c.y_train[rows], sample_weight=None if weight is None else weight[rows])
        return model.predict(c.X_test)


def score(cell: Cell, pred: np.ndarray) -> float:
    """Accuracy (classification) or RMSE of the standardised target (regression) on the test rows."""
    if cell.task == "classification":
        return float(np.mean(pred == cell.y_test))
    return float(np.sqrt(np.mean((np.asarray(pred, float) - cell.y_test) ** 2)))


def paired_gain(cell: Cell, base: np.ndarray, pred: np.ndarray, *, seed: int) -> tuple[float, float, float]:
    """Improvement of ``pred`` over ``base`` on the test rows (> 0 = better; accuracy: pred - base,
    RMSE: base - pred) with the champion gate's paired bootstrap interval (:mod:`lossval.gate`)."""
    verdict = champion_gate(task=cell.task, y_true=cell.y_test, predictions={"all": base, "variant": pred}, seed=seed)
    return verdict.improvement["variant"]


def cross_fitted_champion(cell: Cell, preds: dict[str, np.ndarray], *, seed: int) -> tuple[np.ndarray, str]:
    """The champion's test predictions: each half of the test rows is predicted by the variant
    :func:`lossval.gate.champion_gate` promoted on the other half (so no selection bias), and the two
    picks ("clean+all")."""
    halves = np.array_split(np.random.default_rng(seed).permutation(len(cell.y_test)), 2)
    out = np.empty_like(preds["all"])
    picks = []
    for pick_on, score_on in ((halves[0], halves[1]), (halves[1], halves[0])):
        verdict = champion_gate(task=cell.task, y_true=cell.y_test[pick_on], predictions={m: p[pick_on] for m, p in preds.items()}, seed=seed)
        out[score_on] = preds[verdict.promoted][score_on]
        picks.append(verdict.promoted)
    return out, "+".join(picks)


def cleanlab_applies(cell: Cell) -> bool:
    """cleanlab on the classification cells with label noise only: 5 refits a cell, and regression's
    ``CleanLearning`` about 60, too slow for this machine's budget (docs/benchmarks.md, section 6)."""
    return cell.task == "classification" and cell.kind == "labels"


def cleanlab_flags(cell: Cell, *, epochs: int) -> np.ndarray:
    """(N,) cleanlab's own flags on the training rows (bench.cleanlab_baseline)."""
    from bench.cleanlab_baseline import cleanlab_outcome  # benchmark-only dependency

    return cleanlab_outcome(cell, epochs)[1]
