"""The generated input of :mod:`bench.flow_scale`: resampled Elec2 in the bundled example's layout, at any size.

Each row a random row of data/example's Elec2 plus N(0, ``jitter``^2) on every [0, 1] feature, clipped to [0, 1];
10 % of the labels flipped; 0.1 % of the rows exact copies of the previous row, 0.05 % with an empty cell, 0.05 %
with an out-of-range price (so the schema's failure path runs too); written in 10^6-row chunks (bounded memory).
Plus a 2000-row trusted reference file drawn the same way, without label noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import BUNDLED, read_frame

FEATURES = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]
UNIT = [c for c in FEATURES if c != "day"]  # the [0, 1] columns of ElectricityExample
GENERATE_CHUNK = 1_000_000


def make_input(n: int, folder: Path, *, seed: int = 0, jitter: float = 0.01) -> tuple[Path, Path]:
    """The raw CSV of ``n`` rows and the 2000-row trusted reference file (module doc), in ``folder``; cached by size and seed."""
    folder.mkdir(parents=True, exist_ok=True)
    raw, ref = folder / f"elec2-{n}-s{seed}.csv", folder / f"elec2-reference-s{seed}.csv"
    source = read_frame("electricity", BUNDLED)
    rng = np.random.default_rng(seed)
    if not ref.exists():
        ref_rows = source.sample(2000, replace=True, random_state=seed).reset_index(drop=True)
        ref_rows[UNIT] = np.clip(ref_rows[UNIT].to_numpy() + rng.normal(0, jitter, (2000, len(UNIT))), 0, 1).round(6)
        ref_rows.to_csv(ref, index=False)
    if raw.exists():
        return raw, ref
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)  # its own stream: the same rows whether or not the reference was made now
    tmp = raw.with_suffix(".tmp")
    schema = pa.schema([(c, pa.string()) for c in [*FEATURES, "target"]])
    with pcsv.CSVWriter(tmp, schema, write_options=pcsv.WriteOptions(quoting_style="none")) as writer:
        for start in range(0, n, GENERATE_CHUNK):  # bounded memory at 10^7 rows
            size = min(GENERATE_CHUNK, n - start)
            rows = rng.integers(0, len(source), size)
            X = np.clip(source[UNIT].to_numpy()[rows] + rng.normal(0, jitter, (size, len(UNIT))), 0, 1).round(6)
            frame = pd.DataFrame(X, columns=UNIT)
            frame.insert(1, "day", source["day"].to_numpy()[rows].astype(np.int64))
            target = source["target"].to_numpy()[rows].astype(object)
            flip = rng.random(size) < 0.1
            target[flip] = np.where(target[flip] == "UP", "DOWN", "UP")
            frame["target"] = target
            frame = frame[[*FEATURES, "target"]]
            dup = rng.random(size) < 0.001  # exact copies of the previous row: schema:duplicate_id
            frame.iloc[np.flatnonzero(dup[1:]) + 1] = frame.iloc[np.flatnonzero(dup[1:])].to_numpy()
            table = pa.Table.from_pandas(frame.astype({c: "string" for c in frame.columns}), preserve_index=False)
            blank = rng.random(size) < 0.0005  # an empty cell: schema:not_nullable
            far = rng.random(size) < 0.0005  # a price of 3.5: schema:less_than_or_equal_to
            table = table.set_column(table.column_names.index("vicprice"), "vicprice",
                                     pc.if_else(pa.array(blank), pa.scalar(None, pa.string()), table.column("vicprice")))
            table = table.set_column(table.column_names.index("nswprice"), "nswprice",
                                     pc.if_else(pa.array(far), pa.scalar("3.5"), table.column("nswprice")))
            writer.write_table(table.cast(schema))
    tmp.rename(raw)
    return raw, ref
