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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.common import REPO
from bench.methods import Cell
from lossval import MLP, LossVal
from lossval.calibrate import calibrated_decision, tie_free_ranks
from lossval.canary import make_canaries
from lossval.gate import champion_gate
from lossval.threshold import decide

#: The variants the gate chooses among (the pipeline's ``retrain.mode: both``).
GATE_VARIANTS: tuple[str, ...] = ("all", "clean", "weighted")


@dataclass(frozen=True)
class Settings:
    """The pipeline's defaults (params.yaml): valuation, decision and retraining settings."""

    epochs: int
    batch_size: int
    lr: float
    quarantine: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, quarantine: dict[str, Any] | None = None) -> Settings:
        """params.yaml's settings; ``quarantine`` overrides keys of its quarantine section."""
        from schemas.params import load_params

        params = load_params(REPO / "params.yaml")
        if params.value.epochs != params.retrain.epochs:
            raise SystemExit(f"value.epochs {params.value.epochs} != retrain.epochs {params.retrain.epochs}: pass --epochs")
        return cls(epochs=params.retrain.epochs, batch_size=params.retrain.batch_size, lr=params.retrain.lr,
                   quarantine={**params.quarantine.model_dump(), **(quarantine or {})})  # fmt: skip


@dataclass(frozen=True)
class Quarantine:
    """The pipeline's default decision on one cell's training rows."""

    values: np.ndarray  # (N,) higher = more valuable
    flagged: np.ndarray  # (N,) bool, True = quarantined
    rule: str
    estimate: dict[str, float]  # est_count, est_lo, est_hi, est_precision, canary_auroc (nan: the rule gives none)


def quarantine(cell: Cell, *, epochs: int, settings: Settings) -> Quarantine:
    """Value the training rows against the reference (``cell.X_val``) and apply the default decision.

    ``calibrated`` (issue 12): canaries made from ``quarantine.canary_share`` of the reference rows
    (:func:`lossval.canary.make_canaries`, which leave the OT reference) are valued together with the
    training rows; training rows and canaries are ranked together without ties
    (:func:`lossval.calibrate.tie_free_ranks`) and :func:`lossval.calibrate.calibrated_decision` flags
    training rows only. The other strategies: :func:`lossval.threshold.decide` on the values.
    """
    q = settings.quarantine
    n = len(cell.y_train)
    X_train, y_train, X_ref, y_ref = cell.X_train, cell.y_train, cell.X_val, cell.y_val
    canaries = None
    if q["strategy"] == "calibrated":
        canaries = make_canaries(pd.DataFrame(X_ref), pd.Series(y_ref), task=cell.task, share=q["canary_share"], seed=cell.seed % (2**31))
        X_train = np.vstack([X_train, canaries.X.to_numpy(dtype=np.float64)])  # (N + 2S, D)
        y_train = np.concatenate([y_train, canaries.y.to_numpy().astype(y_train.dtype)])
        X_ref, y_ref = X_ref[canaries.keep], y_ref[canaries.keep]
    lv = LossVal(cell.task, epochs=epochs, batch_size=settings.batch_size, lr=settings.lr, random_state=cell.seed % (2**31),
                 progress=False, device="cpu").fit(X_train, y_train, X_ref, y_ref)  # fmt: skip
    values = lv.values_.to_numpy()
    nan = float("nan")
    if canaries is None:
        decision = decide(values, strategy=q["strategy"], quantile=q["quantile"], value=q["value"], max_fraction=q["max_fraction"])
        estimate = dict(est_count=nan, est_lo=nan, est_hi=nan, est_precision=nan, canary_auroc=nan)
        return Quarantine(values=values, flagged=decision.flagged, rule=decision.rule, estimate=estimate)
    parts = lv.parts_
    ranks = tie_free_ranks(values, loss_part=parts["loss_part"].to_numpy(), transport_part=parts["transport_part"].to_numpy())
    decision, cal = calibrated_decision(ranks, n_train=n, corrupted=canaries.corrupted, min_precision=q["min_precision"],
                                        max_fraction=q["max_fraction"], min_auroc=q["min_canary_auroc"], seed=cell.seed % (2**31))  # fmt: skip
    estimate = dict(est_count=cal.estimated_bad, est_lo=cal.estimated_bad_low, est_hi=cal.estimated_bad_high,
                    est_precision=cal.precision, canary_auroc=cal.canary_auroc)  # fmt: skip
    return Quarantine(values=values[:n], flagged=decision.flagged, rule=decision.rule, estimate=estimate)


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
    ``CleanLearning`` about 60, too slow for this machine's budget (docs/benchmarks.md, section 5)."""
    return cell.task == "classification" and cell.kind == "labels"


def cleanlab_flags(cell: Cell, *, epochs: int) -> np.ndarray:
    """(N,) cleanlab's own flags on the training rows (bench.cleanlab_baseline)."""
    from bench.cleanlab_baseline import cleanlab_outcome  # benchmark-only dependency

    return cleanlab_outcome(cell, epochs)[1]
