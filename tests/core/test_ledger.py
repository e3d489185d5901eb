"""The quarantine ledger's bounded size: compaction keeps the per-row history a user reads, and old files still load."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from lossval.ledger import LEGACY_COLUMNS, Ledger


def _night(rng: np.random.Generator, night: int, rows: int = 40) -> pd.DataFrame:
    """One night's quarantine: a random half of 40 rows, a value each, one schema failure (no value) now and then."""
    ids = sorted(rng.choice(rows, size=rows // 2, replace=False))
    values = rng.normal(size=len(ids))
    if night % 3 == 0:
        values[0] = np.nan  # a schema failure has no value
    return pd.DataFrame({"row_id": [f"r{i}" for i in ids], "value": values, "reason": f"value:night{night}", "rule": f"value<={night}"})


def _nights(n: int, *, keep_runs: int | None = None, restore_at: int = 4) -> Ledger:
    rng = np.random.default_rng(0)
    ledger = Ledger()
    for night in range(n):
        ledger = ledger.record(_night(rng, night), fingerprint=f"fp{night:03d}", run_id=f"run{night:03d}", at=f"2026-11-{night + 1:02d}T02:00:00")
        if night == restore_at:
            ledger = ledger.restore(["r3"], at=f"2026-11-{night + 1:02d}T09:00:00", note="checked by hand")
        if keep_runs is not None:
            ledger = ledger.compact(keep_runs)
    return ledger


def test_compaction_bounds_the_ledger_and_keeps_every_rows_history(tmp_path):
    full, compact = _nights(25), _nights(25, keep_runs=3)
    pd.testing.assert_frame_equal(compact.status(), full.status())  # counts, first and last, last value/reason/run, pinned
    assert compact.pinned() == full.pinned() == {"r3"}
    assert list(compact.runs()["run_id"]) == ["run022", "run023", "run024"]
    assert compact.has_fingerprint("fp024") and not compact.has_fingerprint("fp010")
    # bounded: the kept runs in full, at most one folded event per row, the restore
    assert len(full.events) == 25 * 20 + 1 and len(compact.events) <= 3 * 20 + 40 + 1
    folded = compact.events[compact.events["note"] == "folded"]
    assert folded["row_id"].is_unique and folded["times"].sum() == 22 * 20
    compact.save(tmp_path / "ledger.parquet")
    again = Ledger.load(tmp_path / "ledger.parquet")
    pd.testing.assert_frame_equal(again.status(), full.status())
    assert again.compact(3) is again  # nothing new to fold: the same ledger, the same bytes on the next save


def test_compaction_is_deterministic_and_needs_a_positive_count(tmp_path):
    for name in ("a", "b"):
        _nights(12, keep_runs=2).save(tmp_path / f"{name}.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    with pytest.raises(ValueError, match="keep_runs must be >= 1"):
        Ledger().compact(0)


def test_a_ledger_written_before_compaction_loads_as_one_run_per_event(tmp_path):
    full = _nights(6)
    legacy = full.events[LEGACY_COLUMNS].astype({c: "object" for c in LEGACY_COLUMNS if c != "value"})
    path = tmp_path / "ledger.parquet"
    legacy.to_parquet(path, index=False)
    path.with_name("ledger.parquet.sha256").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  ledger.parquet\n")
    loaded = Ledger.load(path)
    pd.testing.assert_frame_equal(loaded.status(), full.status())
    pd.testing.assert_frame_equal(loaded.compact(2).status(), full.status())
