"""Step 4: value every training row with LossVal against the reference set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lossval import LossVal
from lossval._types import Callback
from lossval.canary import make_canaries
from lossval.io import write_parquet, write_text, write_with
from lossval.model import export_state
from lossval.reasons import row_reasons
from lossval.rows import ROW_ID, feature_columns
from cleaning.project import Project
from cleaning.split import Split

VALUE_COLUMNS = [ROW_ID, "value", "loss_part", "transport_part", "reason"]
CANARY_COLUMNS = [ROW_ID, "kind", "value", "loss_part", "transport_part"]


@dataclass(frozen=True)
class Valued:
    values: pd.DataFrame  # row_id, value, loss_part, transport_part, reason (label|feature): training rows only
    history: pd.DataFrame  # per-epoch metrics
    model_state: dict  # lossval.model.export_state of the LossVal network
    device: str
    seconds: float
    canaries: pd.DataFrame  # row_id (canary-<i>), kind (clean|labels|features), value, loss_part, transport_part; never an output
    settings: dict = field(default_factory=dict)  # the settings LossVal resolved (epochs, batch size... for "auto")

    def summary(self) -> dict:
        """What the value stage reports: rows, device, seconds, the resolved settings."""
        return {"rows": len(self.values), "device": self.device, "seconds": round(self.seconds, 3), "settings": self.settings}


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


def value_rows(project: Project, split: Split, *, callbacks: Sequence[Callback] = (), progress: bool | None = None,
               shard: int | None = None) -> Valued:
    """Value the training rows of ``split`` (or, with ``shard``, the rows of that shard of ``value.shards``)
    against the reference set, with canaries made from the reference."""
    base, cfg = project.params.base, project.params.value
    features = feature_columns(split.train, base.target)
    train = split.train.set_index(ROW_ID)
    if shard is not None:
        train = train.loc[shard_of(train.index, cfg.shards) == shard]
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
    reference = split.reference
    canaries = make_canaries(
        reference[features], reference[base.target], task=base.task, share=project.params.quarantine.canary_share,
        seed=base.seed, min_reference=2,
    )
    # Canaries are valued with the training rows (their ids cannot collide: row ids are hex or user ids without this prefix)
    # and split off right after the fit: they reach no output, table or count.
    prefix = "canary-" if shard is None else f"canary-s{shard}-"
    canary_ids = pd.Index([f"{prefix}{i}" for i in range(len(canaries.X))], name=ROW_ID)
    X = pd.concat([train[features], canaries.X.set_index(canary_ids)])
    y = pd.concat([train[base.target], canaries.y.set_axis(canary_ids)])
    started = time.perf_counter()
    lv.fit(X, y, reference.loc[canaries.keep, features], reference.loc[canaries.keep, base.target])
    seconds = time.perf_counter() - started
    is_canary = lv.values_.index.isin(canary_ids)
    parts = lv.parts_.loc[~is_canary]
    values = pd.DataFrame(
        {
            ROW_ID: lv.values_.index[~is_canary].astype(str),
            "value": lv.values_.to_numpy()[~is_canary],
            "loss_part": parts["loss_part"].to_numpy(),
            "transport_part": parts["transport_part"].to_numpy(),
            "reason": row_reasons(parts).to_numpy(),
        }
    )
    canary_values = pd.DataFrame(
        {
            ROW_ID: canary_ids.astype(str),
            "kind": canaries.kind.astype(str),
            "value": lv.values_.to_numpy()[is_canary],
            "loss_part": lv.parts_["loss_part"].to_numpy()[is_canary],
            "transport_part": lv.parts_["transport_part"].to_numpy()[is_canary],
        }
    )
    settings = dict(getattr(lv, "settings_", {}) or {"epochs": lv.epochs, "batch_size": lv.batch_size})
    return Valued(values=values, history=lv.history_, model_state=export_state(lv), device=str(lv.device_), seconds=seconds, canaries=canary_values,
                  settings=settings)


def shard_of(row_ids: pd.Index | pd.Series, shards: int) -> np.ndarray:
    """The shard (0 .. shards-1) of each row: a fixed hash of its id, so a row stays in its shard from night to night."""
    return (pd.util.hash_pandas_object(pd.Series(row_ids, dtype=str), index=False).to_numpy() % np.uint64(shards)).astype(int)


def shard_folder(project: Project, shard: int) -> Path:
    return project.work_file("shards") / str(shard)


def pool_shards(project: Project) -> Valued:
    """The shards' values as one valuation (work/values.parquet...): every row's value and every shard's canaries
    pooled, so that one threshold and one calibration cover the table; the history is shard 0's, the model shard 0's."""
    parts = [load_valued(project, folder=shard_folder(project, k)) for k in range(project.params.value.shards)]
    first = parts[0]
    valued = Valued(
        values=pd.concat([p.values for p in parts], ignore_index=True), history=first.history, model_state=first.model_state,
        device=first.device, seconds=sum(p.seconds for p in parts), canaries=pd.concat([p.canaries for p in parts], ignore_index=True),
        settings={**first.settings, "shards": len(parts)},
    )
    save_valued(project, valued)
    return valued


def save_valued(project: Project, valued: Valued, *, folder: Path | None = None) -> None:
    """The valuation's files into ``folder`` (default: the project's work folder; a shard's: :func:`shard_folder`)."""
    at = (folder or project.work).joinpath
    write_parquet(valued.values, at("values.parquet"))
    write_parquet(valued.canaries, at("canaries.parquet"))
    write_text(valued.history.to_csv(index=False), at("history.csv"))
    write_with(at("lossval_model.pt"), lambda tmp: torch.save({**valued.model_state, "device": valued.device, "seconds": valued.seconds, "settings": valued.settings}, tmp))


def load_valued(project: Project, *, folder: Path | None = None) -> Valued:
    at = (folder or project.work).joinpath
    state = torch.load(at("lossval_model.pt"), weights_only=True)
    device, seconds, settings = state.pop("device"), state.pop("seconds"), state.pop("settings", {})
    return Valued(
        values=pd.read_parquet(at("values.parquet")),
        history=pd.read_csv(at("history.csv")),
        model_state=state,
        device=device,
        seconds=seconds,
        canaries=pd.read_parquet(at("canaries.parquet")),
        settings=settings,
    )
