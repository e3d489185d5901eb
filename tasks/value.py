"""Step 4: value every training row with LossVal against the reference set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from prefect import get_run_logger, task

from lossval import LossVal
from lossval._types import Callback
from lossval.io import write_parquet, write_text, write_with
from lossval.model import export_state
from lossval.reasons import row_reasons
from lossval.rows import ROW_ID, feature_columns
from tasks.project import Project
from tasks.reference import Split

VALUE_COLUMNS = [ROW_ID, "value", "loss_part", "transport_part", "reason"]


@dataclass(frozen=True)
class Valued:
    values: pd.DataFrame  # row_id, value, loss_part, transport_part, reason (label|feature)
    history: pd.DataFrame  # per-epoch metrics
    model_state: dict  # lossval.model.export_state of the LossVal network
    device: str
    seconds: float


def check_options(options: dict) -> None:
    """Refuse ``value.options`` keys that LossVal does not take, or that the other ``value`` keys already set.

    Raises:
        ParamsError: naming the unknown keys and the known ones.
    """
    import inspect

    from schemas.params import ParamsError

    known = set(inspect.signature(LossVal).parameters) - {"self", "task", "epochs", "batch_size", "lr", "hidden_layers", "device",
                                                          "random_state", "progress", "callbacks"}
    if unknown := sorted(set(options) - known):
        raise ParamsError(f"value.options: unknown option(s) {unknown}; LossVal takes {sorted(known)}")


def value_rows(project: Project, split: Split, callbacks: Sequence[Callback] = (), progress: bool | None = None) -> Valued:
    base, cfg = project.params.base, project.params.value
    features = feature_columns(split.train, base.target)
    train = split.train.set_index(ROW_ID)
    options = dict(cfg.options)
    check_options(options)
    lv = LossVal(
        base.task,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        hidden_layers=cfg.hidden_layers,
        device=cfg.device,
        random_state=base.seed,
        progress=progress,
        callbacks=callbacks,
        **options,
    )
    started = time.perf_counter()
    lv.fit(train[features], train[base.target], split.reference[features], split.reference[base.target])
    seconds = time.perf_counter() - started
    parts = lv.parts_
    values = pd.DataFrame(
        {
            ROW_ID: lv.values_.index.astype(str),
            "value": lv.values_.to_numpy(),
            "loss_part": parts["loss_part"].to_numpy(),
            "transport_part": parts["transport_part"].to_numpy(),
            "reason": row_reasons(parts).to_numpy(),
        }
    )
    return Valued(values=values, history=lv.history_, model_state=export_state(lv), device=str(lv.device_), seconds=seconds)


def save_valued(project: Project, valued: Valued) -> None:
    write_parquet(valued.values, project.work_file("values.parquet"))
    write_text(valued.history.to_csv(index=False), project.work_file("history.csv"))
    write_with(project.work_file("lossval_model.pt"), lambda tmp: torch.save({**valued.model_state, "device": valued.device, "seconds": valued.seconds}, tmp))


def load_valued(project: Project) -> Valued:
    state = torch.load(project.work_file("lossval_model.pt"), weights_only=True)
    device, seconds = state.pop("device"), state.pop("seconds")
    return Valued(
        values=pd.read_parquet(project.work_file("values.parquet")),
        history=pd.read_csv(project.work_file("history.csv")),
        model_state=state,
        device=device,
        seconds=seconds,
    )


@task(name="value")
def value(project: Project, split: Split, callbacks: Sequence[Callback] = ()) -> Valued:
    logger = get_run_logger()
    valued = value_rows(project, split, callbacks)
    logger.info("valued %d rows in %.1f s on %s", len(valued.values), valued.seconds, valued.device)
    return valued
