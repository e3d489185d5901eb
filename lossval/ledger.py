"""The quarantine ledger: an append-only event log of every quarantine and restore, kept across runs.

One row per event: ``fingerprint, run_id, row_id, event, value, reason,
rule, at, note, times, first_at``. ``event`` is ``quarantined`` or ``restored``. A run's
``fingerprint`` identifies its inputs and parameters: recording the same
fingerprint again adds nothing, so a rerun with the same inputs leaves the
ledger (and the snapshot that holds it) byte-identical.

Bounded size: :meth:`Ledger.compact` keeps the last ``keep_runs`` runs' events in full
and folds older quarantine events into one event per row (``fingerprint`` empty, note
``folded``): its last run, value, reason and rule, ``times`` = how many runs quarantined
it, ``first_at`` = the first. :meth:`Ledger.status` is the same before and after; restores
are never folded. Without it a nightly run on 10^6 rows adds ~10^5 events a night, each
night's snapshot holds the whole file, and every run reads it all.
A ledger written before ``times``/``first_at`` existed loads as one run per event.

Integrity: :meth:`Ledger.save` writes a SHA-256 sidecar; :meth:`Ledger.load`
refuses a ledger whose bytes, columns or keys do not check out (a corrupt or
hand-edited file), instead of silently overwriting history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lossval.io import write_bytes, write_text

COLUMNS = ["fingerprint", "run_id", "row_id", "event", "value", "reason", "rule", "at", "note", "times", "first_at"]
LEGACY_COLUMNS = COLUMNS[:9]  # before compaction: one event, one run
EVENTS = ("quarantined", "restored")
DTYPES = {"value": "float64", "times": "int64"}  # the other columns are strings


class LedgerError(RuntimeError):
    """The ledger on disk is corrupt or was edited by hand; nothing was overwritten."""


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=DTYPES.get(c, "object")) for c in COLUMNS})
    return frame


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


class Ledger:
    """Immutable view of the event log; methods return new ledgers."""

    def __init__(self, events: pd.DataFrame | None = None) -> None:
        self.events = _empty() if events is None else events[COLUMNS].reset_index(drop=True)

    # ---- persistence ---------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        path = Path(path)
        checksum = _checksum_path(path)
        if not path.exists():
            if checksum.exists():
                raise LedgerError(f"ledger {path} is missing but its checksum file exists: was it deleted by hand?")
            return cls()
        data = path.read_bytes()
        if not checksum.exists():
            raise LedgerError(f"ledger {path} has no checksum file {checksum.name}: refusing a ledger of unknown origin")
        expected = next(iter(checksum.read_text().split()), "")
        if hashlib.sha256(data).hexdigest() != expected:
            raise LedgerError(
                f"ledger {path} does not match its checksum: it is corrupt or was edited by hand. "
                "Bring back a good copy (`lossval-clean snapshot checkout RUN_ID` or `dvc checkout`) before running again"
            )
        try:
            events = pd.read_parquet(path)
        except Exception as e:  # corrupt parquet with a matching checksum: written corrupt
            raise LedgerError(f"ledger {path} cannot be read: {e}") from e
        if list(events.columns) == LEGACY_COLUMNS:
            events = events.assign(times=1, first_at=events["at"])
        if list(events.columns) != COLUMNS:
            raise LedgerError(f"ledger {path} has columns {list(events.columns)}, expected {COLUMNS}")
        if events.duplicated(["fingerprint", "row_id", "event", "at"]).any() or not events["event"].isin(EVENTS).all():
            raise LedgerError(f"ledger {path} holds duplicated or unknown events")
        return cls(events)

    def save(self, path: str | Path) -> None:
        """Write the ledger and then its checksum, each atomically."""
        path = Path(path)
        frame = self.events.astype({c: "object" for c in COLUMNS if c not in DTYPES}).astype(DTYPES)
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, engine="pyarrow")
        data = buffer.getvalue()
        write_bytes(data, path)
        write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n", _checksum_path(path))

    # ---- updates -------------------------------------------------------
    def has_fingerprint(self, fingerprint: str) -> bool:
        return bool((self.events["fingerprint"] == fingerprint).any())

    def record(self, quarantined: pd.DataFrame, *, fingerprint: str, run_id: str, at: str) -> Ledger:
        """Append one ``quarantined`` event per row of ``quarantined`` (row_id, value, reason, rule).

        A fingerprint already in the ledger adds nothing (idempotent reruns).
        """
        if self.has_fingerprint(fingerprint) or quarantined.empty:
            return self
        new = pd.DataFrame(
            {
                "fingerprint": fingerprint,
                "run_id": run_id,
                "row_id": quarantined["row_id"].astype(str).to_numpy(),
                "event": "quarantined",
                "value": pd.to_numeric(quarantined["value"], errors="coerce").to_numpy(dtype=float),
                "reason": quarantined["reason"].astype(str).to_numpy(),
                "rule": quarantined["rule"].astype(str).to_numpy(),
                "at": at,
                "note": "",
                "times": 1,
                "first_at": at,
            }
        )
        return Ledger(pd.concat([self.events, new], ignore_index=True) if len(self.events) else new)

    def restore(self, row_ids: Iterable[str], *, at: str, note: str = "") -> Ledger:
        """Append ``restored`` events: these rows are kept in later runs, whatever their value."""
        row_ids = list(dict.fromkeys(str(r) for r in row_ids))
        new = pd.DataFrame(
            {
                "fingerprint": "", "run_id": "", "row_id": row_ids, "event": "restored",
                "value": float("nan"), "reason": "restored by user", "rule": "", "at": at, "note": note, "times": 1, "first_at": at,
            }
        )
        return Ledger(pd.concat([self.events, new], ignore_index=True) if len(self.events) else new)

    def compact(self, keep_runs: int) -> Ledger:
        """Keep the quarantine events of the last ``keep_runs`` runs (by first record time) and every restore;
        fold the older quarantine events into one per row (see the module doc). Deterministic: the same
        ledger compacts to the same bytes."""
        if keep_runs < 1:
            raise ValueError(f"keep_runs must be >= 1, got {keep_runs!r}")
        events, held = self.events, self._held()
        order = events[held].groupby("fingerprint", sort=False)["at"].min().sort_values(kind="stable")
        if len(order) <= keep_runs:  # nothing beyond what is already folded
            return self
        old = (events["event"] == "quarantined").to_numpy() & ~events["fingerprint"].isin(set(order.index[-keep_runs:])).to_numpy()
        folded = events[old].sort_values("at", kind="stable").groupby("row_id", sort=True).agg(
            run_id=("run_id", "last"), value=("value", "last"), reason=("reason", "last"), rule=("rule", "last"),
            at=("at", "max"), times=("times", "sum"), first_at=("first_at", "min"),
        ).reset_index().assign(fingerprint="", event="quarantined", note="folded")
        return Ledger(pd.concat([folded[COLUMNS], events[~old]], ignore_index=True).sort_values("at", kind="stable"))

    # ---- views ---------------------------------------------------------
    def _held(self) -> pd.Series:
        """The quarantine events of runs held in full (a folded event has no fingerprint)."""
        return (self.events["event"] == "quarantined") & (self.events["fingerprint"] != "")

    def pinned(self) -> set[str]:
        """Rows restored by a user: kept in every later run."""
        restored = self.events.loc[self.events["event"] == "restored", "row_id"]
        return set(restored.astype(str))

    def status(self) -> pd.DataFrame:
        """One row per row id ever quarantined: how often, when first and last, last value/reason, pinned."""
        q = self.events[self.events["event"] == "quarantined"]
        if q.empty:
            return pd.DataFrame(columns=["row_id", "times_quarantined", "first_quarantined", "last_quarantined",
                                         "last_value", "last_reason", "last_rule", "last_run_id", "pinned"])
        q = q.sort_values("at", kind="stable")
        grouped = q.groupby("row_id", sort=False)
        table = pd.DataFrame(
            {
                "times_quarantined": grouped["times"].sum(),
                "first_quarantined": grouped["first_at"].min(),
                "last_quarantined": grouped["at"].last(),
                "last_value": grouped["value"].last(),
                "last_reason": grouped["reason"].last(),
                "last_rule": grouped["rule"].last(),
                "last_run_id": grouped["run_id"].last(),
            }
        ).reset_index()
        table["pinned"] = table["row_id"].isin(self.pinned())
        return table.sort_values(["times_quarantined", "last_value"], ascending=[False, True], kind="stable").reset_index(drop=True)

    def runs(self) -> pd.DataFrame:
        """Quarantine counts per run still held in full (see :meth:`compact`), in order: how the total changed night to night."""
        q = self.events[self._held()]
        return q.groupby(["run_id", "at"], sort=False).size().rename("quarantined").reset_index().sort_values("at", kind="stable")
