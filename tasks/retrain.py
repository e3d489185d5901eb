"""Step 6: retrain the downstream model on all rows and on the cleaned rows; score both on the test split."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from prefect import get_run_logger, task

from lossval import MLP
from lossval.io import write_json, write_with
from lossval.metrics import downstream_scores
from lossval.model import export_state
from lossval.rows import ROW_ID, feature_columns
from tasks.project import Project
from tasks.reference import Split

HEADLINE = {"classification": "accuracy", "regression": "rmse"}


@dataclass(frozen=True)
class Retrained:
    scores: dict[str, float]  # test_<metric>_all / test_<metric>_clean
    models: dict[str, dict]  # "all" / "clean" -> lossval.model.export_state


def retrain_models(project: Project, split: Split, flagged_ids: list[str]) -> Retrained:
    base, cfg = project.params.base, project.params.retrain
    features = feature_columns(split.train, base.target)
    kept = ~split.train[ROW_ID].astype(str).isin(set(map(str, flagged_ids)))
    scores: dict[str, float] = {}
    models: dict[str, dict] = {}
    for name, rows in (("all", split.train), ("clean", split.train.loc[kept])):
        model = MLP(
            base.task, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, hidden_layers=cfg.hidden_layers,
            device=project.params.value.device, random_state=base.seed, progress=False,
        ).fit(rows[features], rows[base.target])
        for metric, score in downstream_scores(base.task, split.test[base.target].to_numpy(), model.predict(split.test[features])).items():
            scores[f"test_{metric}_{name}"] = score
        models[name] = export_state(model)
    return Retrained(scores=scores, models=models)


def save_retrained(project: Project, retrained: Retrained, *, scores: bool = True) -> None:
    """The models (working files) and, unless ``scores=False``, the DVC metric ``scores.json``
    (the flow leaves that to :func:`tasks.publish.publish`, inside its all-or-nothing transaction)."""
    for name, state in retrained.models.items():
        write_with(project.work_file(f"downstream_{name}.pt"), lambda tmp, s=state: torch.save(s, tmp))
    if scores:
        write_json(retrained.scores, project.metrics_dir / "scores.json")


def load_retrained(project: Project) -> Retrained:
    import json

    scores = json.loads((project.metrics_dir / "scores.json").read_text())
    models = {name: torch.load(project.work_file(f"downstream_{name}.pt"), weights_only=True) for name in ("all", "clean")}
    return Retrained(scores=scores, models=models)


@task(name="retrain")
def retrain(project: Project, split: Split, flagged_ids: list[str]) -> Retrained:
    retrained = retrain_models(project, split, flagged_ids)
    metric = HEADLINE[project.params.base.task]
    get_run_logger().info(
        "downstream test %s: %.4f on all rows, %.4f on cleaned rows",
        metric, retrained.scores[f"test_{metric}_all"], retrained.scores[f"test_{metric}_clean"],
    )
    return retrained
