"""The quarantine ledger night after night: file size and the seconds a run spends on it, with and without compaction.

Simulates ``--nights`` nightly runs of one table of ``--rows`` rows (ids ``r0..``), each quarantining a random
``--share`` of them (the flow's ``calibrated`` rule took 16.7 % of 10^6 rows in docs/benchmarks.md), and does what
the quarantine and record stages do with the ledger each night: ``Ledger.load``, ``record`` (then
``compact(keep_runs)`` in the compacted arm), ``save``, and the report's ``status()``. Prints one CSV line per
arm and reported night; the summary is in docs/benchmarks.md.

    python -m bench.ledger_growth --rows 100000 --nights 60 --keep-runs 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lossval.ledger import Ledger


def night(rng: np.random.Generator, rows: int, share: float) -> pd.DataFrame:
    ids = np.sort(rng.choice(rows, size=int(share * rows), replace=False))
    return pd.DataFrame({"row_id": [f"r{i}" for i in ids], "value": rng.normal(size=len(ids)), "reason": "value:label-like", "rule": "calibrated"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.167)
    parser.add_argument("--nights", type=int, default=60)
    parser.add_argument("--keep-runs", type=int, default=30)
    parser.add_argument("--every", type=int, default=10, help="print every this many nights")
    args = parser.parse_args(argv)
    print("arm,night,events,file_mib,seconds_load_record_save,seconds_status,cumulative_mib")
    for arm, keep in (("compacted", args.keep_runs), ("full", None)):
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            path, cumulative = Path(tmp) / "ledger.parquet", 0.0
            for n in range(1, args.nights + 1):
                quarantined = night(rng, args.rows, args.share)
                started = time.perf_counter()
                ledger = Ledger.load(path).record(quarantined, fingerprint=f"fp{n:04d}", run_id=f"run{n:04d}", at=f"night-{n:04d}")
                if keep is not None:
                    ledger = ledger.compact(keep)
                ledger.save(path)
                seconds = time.perf_counter() - started
                started = time.perf_counter()
                ledger.status()
                status_seconds = time.perf_counter() - started
                size = path.stat().st_size / 2**20
                cumulative += size  # each night's snapshot holds its ledger: DVC caches one copy a night
                if n % args.every == 0 or n == args.nights:
                    print(f"{arm},{n},{len(ledger.events)},{size:.1f},{seconds:.2f},{status_seconds:.2f},{cumulative:.0f}", flush=True)


if __name__ == "__main__":
    main()
