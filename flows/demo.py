"""``lossval-clean demo``: the whole flow on a noised copy of the bundled example, and what it caught."""

from __future__ import annotations

import argparse

from flows.cli import _print_summary, _project, _run_flow

#: The demo's clean test set (data/example/README.md): 4000 rows, enough for the gate to resolve about one point.
DEMO_TEST = "data/example/electricity_test.csv"


def run_demo(args: argparse.Namespace) -> int:
    """Noise a copy of the bundled example, clean it with the full flow, and show what was caught."""
    import numpy as np
    import pandas as pd

    from lossval.noise import add_noise
    from lossval.rows import assign_row_ids, read_table

    project = _project(args)
    source = project.input_path("data/example/electricity.csv")
    data = pd.read_csv(source, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(args.seed)
    features = [c for c in data.columns if c != "target"]
    X = data[features].astype(float).to_numpy()
    mean, std = X.mean(axis=0), X.std(axis=0)
    # the paper's noise: N(0, 1) on standardised features, i.e. one standard deviation per column,
    # clipped to each column's observed range so that the schema passes and LossVal has to find them
    Z_noisy, y_noisy, rows, kinds = add_noise((X - mean) / std, data["target"].to_numpy(), kind="mixed", rate=args.rate, task="classification", rng=rng)
    X_noisy = np.clip(Z_noisy * std + mean, X.min(axis=0), X.max(axis=0))
    X_noisy[:, features.index("day")] = np.round(X_noisy[:, features.index("day")])
    noisy = data.copy()
    noisy["target"] = y_noisy
    feature_rows = rows[kinds == "features"]
    noisy.loc[feature_rows, features] = pd.DataFrame(X_noisy[feature_rows], columns=features).map(lambda v: f"{v:.6g}").to_numpy()
    broken = rng.choice(np.setdiff1d(np.arange(len(data)), rows), size=3, replace=False)
    noisy.loc[broken[0], "nswprice"] = ""  # missing value
    noisy.loc[broken[1], "day"] = "9"  # out of range
    noisy.loc[broken[2], "target"] = "FLAT"  # unknown class
    demo_file = project.output_path("data/demo/electricity_noisy.csv")
    demo_file.parent.mkdir(parents=True, exist_ok=True)
    noisy.to_csv(demo_file, index=False)
    ids, _ = assign_row_ids(read_table(demo_file))
    print(f"demo data: {demo_file.relative_to(project.root)} = the bundled example with {int((kinds == 'labels').sum())} labels flipped, "
          f"{len(feature_rows)} rows' features noised (N(0,1) on standardised features, clipped to the columns' ranges) "
          "and 3 rows broken (missing value, out of range, unknown class)")
    summary, code = _run_flow(
        params_file=args.params, project_dir=str(project.root), trigger="manual",
        overrides={"ingest.path": str(demo_file.relative_to(project.root)), "reference.test_path": DEMO_TEST},
    )
    quarantine = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    flagged = set(quarantine.loc[quarantine["stage"] == "value", "row_id"])
    schema = quarantine[quarantine["stage"] == "schema"]
    print("\nquarantined by the schema:")
    print(schema[["row_id", "reason"]].to_string(index=False))
    by_value = quarantine[quarantine["stage"] == "value"].sort_values("value")
    print(f"\nquarantined by value ({len(by_value)} rows; the 10 lowest):")
    print(by_value[["row_id", "value", "reason"] + features[:4] + ["target"]].head(10).to_string(index=False))
    for kind in ("labels", "features"):
        injected = set(ids.iloc[rows[kinds == kind]])
        print(f"caught {len(injected & flagged)} of {len(injected)} rows with noisy {kind}")
    noised = set(ids.iloc[rows])
    precision = len(flagged & noised) / max(len(flagged), 1)
    cal = summary["calibration"]
    print(f"\nrows flagged by value: {len(flagged)}   estimated bad by the canaries: "
          + (f"{cal['estimated_bad']:.0f} ({cal['estimated_bad_low']:.0f}-{cal['estimated_bad_high']:.0f})" if cal else "n/a")
          + f"   truly corrupted: {len(noised)}")
    print(f"precision: {precision:.0%} of the value-quarantined rows were noised"
          + (f" (the run estimated {cal['estimated_precision']:.0%})" if cal and len(flagged) else "")
          + f"; recall: {len(flagged & noised) / max(len(noised), 1):.0%}")
    _print_summary(project, summary)
    return code
