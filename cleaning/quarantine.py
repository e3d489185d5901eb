"""Step 5: turn values into keep / quarantine decisions, and keep the ledger across runs."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lossval.ledger import Ledger
from lossval.rows import ROW_ID
from lossval.calibrate import Calibration, assess_cut, calibrated_decision, tie_free_ranks
from lossval.threshold import Decision, decide
from schemas.dataset import DatasetError
from cleaning.project import Project

if TYPE_CHECKING:  # a type only: importing cleaning.value would load torch for the light commands
    from cleaning.value import Valued

log = logging.getLogger("lossval_clean")
#: The row counts every run reports (counts.json, MLflow metrics, summaries): rows_in is the sum of the other three.
COUNT_KEYS = ("rows_in", "rows_quarantined_schema", "rows_quarantined_value", "rows_clean")
QUARANTINE_HEAD = [ROW_ID, "reason", "value", "rule", "stage"]


@dataclass(frozen=True)
class Cleaned:
    clean: pd.DataFrame  # every kept input row: row_id + the input columns
    quarantine: pd.DataFrame  # row_id, reason, value, rule, stage + the row's columns
    decision: Decision  # over the valued rows, in the order of Valued.values
    flagged_ids: list[str]  # value-quarantined row ids
    counts: dict[str, int]
    ledger: Ledger
    fingerprint: str
    calibration: Calibration | None = None  # what the canaries say (None without canaries)

    @property
    def unreliable(self) -> bool:
        """The canary self-test failed: nothing was quarantined by value."""
        return self.calibration is not None and not self.calibration.reliable


def fingerprint(project: Project, input_sha256: str) -> str:
    """Identifies a run's inputs and parameters: equal fingerprints give equal outputs."""
    params = project.params.as_dict()
    for volatile in ("snapshot", "tracking"):
        params.pop(volatile, None)
    text = json.dumps({"input": input_sha256, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decide_rows(
    project: Project,
    *,
    rows_in: int,
    input_sha256: str,
    valid: pd.DataFrame,
    schema_failures: pd.DataFrame,
    valued: Valued,
    run_id: str,
    at: str,
) -> Cleaned:
    """Quarantine schema failures and low-valued rows; pinned (restored) rows are always kept."""
    cfg = project.params.quarantine
    ledger = Ledger.load(project.ledger_path)
    values = valued.values
    decision, calibration = decide_values(values, valued.canaries, cfg, seed=project.params.base.seed)
    pinned = values[ROW_ID].isin(ledger.pinned()).to_numpy()
    flagged = decision.flagged & ~pinned
    if flagged.all():
        raise DatasetError(
            f"the threshold ({decision.rule}) would quarantine every valued row; nothing was written. "
            "Lower quarantine.value / quarantine.quantile or quarantine.max_fraction"
        )
    if pinned.any():
        log.info("%d rows below the threshold are pinned by restore and kept", int((decision.flagged & pinned).sum()))
    by_value = values.loc[flagged, [ROW_ID, "value", "reason"]].assign(
        reason=lambda f: "value:" + f["reason"] + "-like", rule=decision.rule, stage="value"
    )
    by_value = by_value.merge(valid, on=ROW_ID, how="left")
    by_schema = schema_failures.assign(value=np.nan, rule="schema", stage="schema")
    quarantine = pd.concat([by_schema, by_value], ignore_index=True)
    quarantine = quarantine[QUARANTINE_HEAD + [c for c in quarantine.columns if c not in QUARANTINE_HEAD]]
    quarantine = quarantine.astype({c: "string" for c in quarantine.columns if c not in ("value",)})
    dropped = set(quarantine[ROW_ID].astype(str))
    clean = valid.loc[~valid[ROW_ID].astype(str).isin(dropped)].reset_index(drop=True)
    counts = {
        "rows_in": rows_in,
        "rows_quarantined_schema": len(by_schema),
        "rows_quarantined_value": len(by_value),
        "rows_clean": len(clean),
    }
    if counts["rows_in"] != counts["rows_quarantined_schema"] + counts["rows_quarantined_value"] + counts["rows_clean"]:
        raise AssertionError(f"row accounting is off: {counts}")  # never expected: every row is clean or quarantined
    fp = fingerprint(project, input_sha256)
    ledger = ledger.record(quarantine[[ROW_ID, "value", "reason", "rule"]], fingerprint=fp, run_id=run_id, at=at).compact(cfg.ledger_runs)
    return Cleaned(
        clean=clean, quarantine=quarantine, decision=decision, flagged_ids=by_value[ROW_ID].tolist(), counts=counts, ledger=ledger,
        fingerprint=fp, calibration=calibration,
    )


def decide_values(values: pd.DataFrame, canaries: pd.DataFrame, cfg, *, seed: int) -> tuple[Decision, Calibration | None]:
    """The threshold rule over the training rows, in a tie-free order shared with the canaries; with canaries,
    their calibration, and nothing flagged when their self-test fails (whatever the strategy)."""
    pooled = pd.concat([values[["value", "loss_part", "transport_part"]], canaries[["value", "loss_part", "transport_part"]]], ignore_index=True)
    ranks = tie_free_ranks(pooled["value"].to_numpy(), loss_part=pooled["loss_part"].to_numpy(), transport_part=pooled["transport_part"].to_numpy())
    n = len(values)
    if not len(canaries) and cfg.strategy == "calibrated":
        raise DatasetError(
            "quarantine.strategy 'calibrated' needs canaries, but the reference set is too small to make any: "
            "add reference rows, raise quarantine.canary_share, or choose another quarantine.strategy"
        )
    if not len(canaries):
        return decide(values["value"].to_numpy(), strategy=cfg.strategy, quantile=cfg.quantile, value=cfg.value, max_fraction=cfg.max_fraction, ranks=ranks[:n]), None
    corrupted = (canaries["kind"] != "clean").to_numpy()
    if cfg.strategy == "calibrated":
        return calibrated_decision(
            ranks, n_train=n, corrupted=corrupted, min_precision=cfg.min_precision, max_fraction=cfg.max_fraction,
            min_auroc=cfg.min_canary_auroc, seed=seed,
        )
    decision = decide(values["value"].to_numpy(), strategy=cfg.strategy, quantile=cfg.quantile, value=cfg.value, max_fraction=cfg.max_fraction, ranks=ranks[:n])
    calibration = assess_cut(ranks, n_train=n, corrupted=corrupted, flagged=decision.flagged, min_auroc=cfg.min_canary_auroc, seed=seed)
    if not calibration.reliable:
        decision = Decision(flagged=np.zeros(n, dtype=bool), threshold=decision.threshold, rule=decision.rule + ",unreliable", capped=False)
    return decision, calibration


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe (numbers are untouched)."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object or pd.api.types.is_string_dtype(out[name]):
            text = out[name].astype("string")
            risky = text.str.startswith(_FORMULA_START, na=False)
            out[name] = text.where(~risky, "'" + text)
    return out
