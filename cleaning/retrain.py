"""Step 6: retrain the downstream model (all rows, cleaned rows, value-weighted rows), score every variant on the
test split, and pick the champion with the gate (lossval.gate)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from lossval import MLP
from lossval.gate import Gate, champion_gate
from lossval.io import write_json, write_with
from lossval.metrics import downstream_scores
from lossval.model import export_state
from lossval.rows import ROW_ID, feature_columns
from cleaning.project import Project
from cleaning.split import Split

log = logging.getLogger("lossval_clean")

HEADLINE = {"classification": "accuracy", "regression": "rmse"}
#: The downstream variants each retrain.mode trains (all rows are always trained: the gate's baseline).
VARIANTS = {"drop": ("all", "clean"), "weighted": ("all", "weighted"), "both": ("all", "clean", "weighted")}


@dataclass(frozen=True)
class Retrained:
    scores: dict[str, float]  # test_<metric>_<variant> for every trained variant
    models: dict[str, dict]  # variant ("all" / "clean" / "weighted") -> lossval.model.export_state
    gate: dict = field(default_factory=dict)  # champion_gate's verdict as JSON (gate_record)

    @property
    def promoted(self) -> str:
        return self.gate.get("promoted", "all")


def retrain_models(project: Project, split: Split, flagged_ids: list[str], values: pd.DataFrame | None = None) -> Retrained:
    """Train every variant of retrain.mode, score them on the test split, and run the champion gate.

    ``values`` (row_id, value) are the sample weights of the ``weighted`` variant; None (values not to be
    trusted: the canary self-test failed) leaves that variant out.
    """
    base, cfg = project.params.base, project.params.retrain
    features = feature_columns(split.train, base.target)
    kept = ~split.train[ROW_ID].astype(str).isin(set(map(str, flagged_ids)))
    variants = tuple(v for v in VARIANTS[cfg.mode] if v != "weighted" or values is not None)
    weights = None
    if "weighted" in variants:
        by_id = dict(zip(values[ROW_ID].astype(str), values["value"]))
        weights = split.train[ROW_ID].astype(str).map(by_id)
        if weights.isna().any():
            raise ValueError(f"{int(weights.isna().sum())} training rows have no value; cannot train the weighted variant")
    rows = {"all": split.train, "clean": split.train.loc[kept], "weighted": split.train}
    scores: dict[str, float] = {}
    models: dict[str, dict] = {}
    predictions = {}
    settings: dict = {}
    for name in variants:
        started = time.perf_counter()
        log.info("retraining the %r model on %d rows", name, len(rows[name]))
        model = MLP(
            base.task, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, hidden_layers=cfg.hidden_layers,
            device=project.params.value.device, random_state=base.seed, progress=False,
        ).fit(rows[name][features], rows[name][base.target], sample_weight=weights.to_numpy() if name == "weighted" else None)
        predictions[name] = model.predict(split.test[features])
        variant_scores = downstream_scores(base.task, split.test[base.target].to_numpy(), predictions[name])
        scores.update({f"test_{metric}_{name}": score for metric, score in variant_scores.items()})
        models[name] = export_state(model)
        log.info("the %r model: %s, %.0f s", name, ", ".join(f"{k} {v:.4f}" for k, v in variant_scores.items()), time.perf_counter() - started)
        settings = dict(model.settings_)  # what "auto" resolved to (the same for every variant but for the row count)
    gate = champion_gate(task=base.task, y_true=split.test[base.target].to_numpy(), predictions=predictions, seed=base.seed)
    return Retrained(scores=scores, models=models, gate={**gate_record(gate), "settings": settings})


def gate_record(gate: Gate) -> dict:
    """The gate's verdict as plain JSON: promoted, reason, metric, test_rows, one_point, resolves_one_point,
    scores, improvement {variant: [point, low, high]}, confidence."""
    return {
        "promoted": gate.promoted, "reason": gate.reason, "metric": gate.metric, "test_rows": gate.test_rows,
        "one_point": gate.one_point, "resolves_one_point": gate.resolves_one_point, "scores": gate.scores,
        "improvement": {k: list(v) for k, v in gate.improvement.items()}, "confidence": gate.confidence,
        "metrics": gate.as_metrics(),
    }  # fmt: skip


def save_retrained(project: Project, retrained: Retrained, *, scores: bool = True) -> None:
    """The models and the gate's verdict (working files, in work/downstream/) and, unless ``scores=False``,
    the DVC metric ``scores.json`` (the flow leaves that to :func:`cleaning.transaction.publish`, inside its
    all-or-nothing transaction)."""
    folder = project.work_file("downstream")
    for name, state in retrained.models.items():
        write_with(folder / f"{name}.pt", lambda tmp, s=state: torch.save(s, tmp))
    for stale in set(VARIANTS["both"]) - set(retrained.models):
        (folder / f"{stale}.pt").unlink(missing_ok=True)
    write_json(retrained.gate, folder / "gate.json")
    if scores:
        write_json(retrained.scores, project.metrics_dir / "scores.json")


def load_retrained(project: Project) -> Retrained:
    import json

    folder = project.work_file("downstream")
    scores = json.loads((project.metrics_dir / "scores.json").read_text())
    models = {name: torch.load(folder / f"{name}.pt", weights_only=True) for name in VARIANTS["both"] if (folder / f"{name}.pt").exists()}
    return Retrained(scores=scores, models=models, gate=json.loads((folder / "gate.json").read_text()))


def describe(retrained: Retrained) -> str:
    """One line per variant and the gate's verdict, for logs and the CLI summary."""
    gate = retrained.gate
    metric = gate["metric"]
    lines = [f"downstream test {metric} on {gate['test_rows']} test rows:"]
    for name, score in gate["scores"].items():
        gain = gate["improvement"].get(name)
        interval = f"  ({gain[0]:+.4f} vs all rows, {gate['confidence']:.0%} interval [{gain[1]:+.4f}, {gain[2]:+.4f}])" if gain else ""
        lines.append(f"  {name:>8}: {score:.4f}{interval}")
    lines.append(f"champion: {gate['promoted']} ({gate['reason']})")
    return "\n".join(lines)
