"""The flow's data path at 10^5-10^7 rows: seconds and peak memory of each step, for docs/benchmarks.md (issue 17).

Generates (once, cached in ``--work``) a raw CSV of N rows in the bundled
example's layout (resampled Elec2, data/example: each row a random source row
plus N(0, ``--jitter``^2) on every [0, 1] feature, clipped to [0, 1]; 10 % of
the labels flipped; 0.1 % of the rows exact copies of another row, 0.05 % with
an empty cell, 0.05 % with an out-of-range price, so the schema's failure path
runs at scale too) and a 2000-row trusted reference file (half reference, half
test, as ``reference.test_fraction: 0.5`` splits it). Then runs, in this one
process, the library and schema calls each task of the flow makes, in the
flow's order, and reports per step the wall seconds and the peak RSS
(``VmHWM``, reset before each step through ``/proc/self/clear_refs``):

    read        lossval.rows.read_table_hashed                  (tasks.ingest.read_input)
    row_ids     lossval.rows.assign_row_ids + the frame's id column
    validate    schemas.dataset.validate_rows, ElectricityExample (tasks.ingest.check_rows)
    save_work   the work/ parquet files of save_ingested / save_validated (strings, failures with their columns)
    reference   the trusted file read and checked, imputation, the class checks, lossval.reference.reference_distance
    value       lossval.canary.make_canaries + LossVal(**large_data_settings(n)).fit + the values table (tasks.value.value_rows)
    decide      tie-free ranks and lossval.calibrate.calibrated_decision (tasks.quarantine.decide_values)
    quarantine  the quarantine and clean tables and Ledger.record (tasks.quarantine.decide_rows)
    retrain     lossval.MLP with the same size settings on all rows (one of tasks.retrain's variants; --retrain)
    report      lossval.report's plots and HTML (tasks.report.build_report, without MLflow)
    publish     the snapshot's clean.parquet, quarantine.parquet and ledger.parquet (tasks.publish.stage_files)
    record      what tasks.tracking.log_run computes from the frames: value quantiles, the values and
                quarantine parquet artifacts, mlflow.data.from_pandas of the training frame

    python -m bench.flow_scale --rows 100000 1000000          # each size in its own child process
    python -m bench.flow_scale --rows 10000000 --value-epochs 1 --max-gib 12
    python -m bench.flow_scale --rows 10000000 --stand-in-values     # the data path alone, random values in place of the fit
    python -m bench.flow_scale --table                          # the markdown table of the CSV

Each size runs in a fresh child process (its memory is its own); a child whose RSS passes ``--max-gib``
is killed and the step it was in is reported. Results are appended to ``bench/results/flow_scale.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import REPO, machine
from bench.flow_input import FEATURES, make_input

DEFAULT_OUT = REPO / "bench" / "results" / "flow_scale.csv"
class Steps:
    """Per-step wall seconds and peak RSS (MiB), with a sampler that kills the process above ``max_gib``."""

    def __init__(self, max_gib: float, status: Path) -> None:
        self.rows: list[dict[str, Any]] = []
        self.status, self.limit = status, max_gib * 1024
        threading.Thread(target=self._watch, daemon=True).start()

    @staticmethod
    def _mib(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _watch(self) -> None:
        while True:
            if self._mib("VmRSS") > self.limit:
                self.status.write_text(json.dumps({"done": self.rows, "killed_in": getattr(self, "current", "?"),
                                                  "rss_mib": round(self._mib("VmRSS"))}))
                os._exit(3)
            time.sleep(0.2)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        self.current = name
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before, started = self._mib("VmRSS"), time.perf_counter()
        out = fn()
        row = {"step": name, "seconds": round(time.perf_counter() - started, 2), "rss_before_mib": round(before),
               "peak_rss_mib": round(self._mib("VmHWM"))}
        self.rows.append(row)
        print(row, flush=True)
        self.status.write_text(json.dumps({"done": self.rows}))
        return out


def profile(n: int, *, work: Path, value_epochs: int | None, retrain: bool, max_gib: float, status: Path,
            stand_in_values: bool = False) -> list[dict[str, Any]]:
    """Every step of the data path at ``n`` rows, in this process (module doc)."""
    import torch

    from lossval import MLP, LossVal, large_data_settings
    from lossval import report as report_lib
    from lossval.calibrate import calibrated_decision, tie_free_ranks
    from lossval.canary import make_canaries
    from lossval.health import breakdown
    from lossval.imputation import impute_splits
    from lossval.io import write_parquet
    from lossval.ledger import Ledger
    from lossval.reasons import row_reasons
    from lossval.reference import reference_distance
    from lossval.rows import ROW_ID, assign_row_ids, feature_columns, read_table, read_table_hashed
    from schemas.dataset import model_schema, validate_rows

    raw_path, ref_path = make_input(n, work / "data")
    out = work / f"out-{n}"
    out.mkdir(parents=True, exist_ok=True)
    steps, schema, target = Steps(max_gib, status), model_schema("electricity_example"), "target"
    frame, _, extra = steps.run("read", lambda: read_table_hashed(raw_path))

    def row_ids() -> pd.DataFrame:
        ids, dup = assign_row_ids(frame)
        ingested = frame.copy()
        ingested.insert(0, ROW_ID, ids)
        return ingested.assign(_duplicate=dup, _extra_fields=extra)

    ingested = steps.run("row_ids", row_ids)
    del frame
    raw = ingested.drop(columns=["_duplicate", "_extra_fields"])
    result = steps.run("validate", lambda: validate_rows(raw, schema=schema, target=target, task="classification",
                                                         duplicate=ingested["_duplicate"], extra_fields=ingested["_extra_fields"]))

    def save_work() -> pd.DataFrame:
        internal = ("_duplicate", "_extra_fields")
        write_parquet(ingested.astype({c: "string" for c in ingested.columns if c not in internal}), out / "ingested.parquet")
        write_parquet(result.valid, out / "valid.parquet")
        failed = result.failures.merge(raw, on=ROW_ID, how="left").astype("string")
        write_parquet(failed, out / "schema_failures.parquet")
        return failed

    failed = steps.run("save_work", save_work)
    del raw
    valid = result.valid

    def reference() -> dict[str, Any]:
        ref_raw = read_table(ref_path)
        ids, dup = assign_row_ids(ref_raw)
        ref_raw.insert(0, ROW_ID, ids)
        checked = validate_rows(ref_raw, schema=schema, target=target, task="classification", duplicate=dup)
        columns = [ROW_ID, *FEATURES, target]
        pool = checked.valid[columns]
        is_test = np.random.default_rng(0).random(len(pool)) < 0.5
        ref, test = pool.loc[~is_test].reset_index(drop=True), pool.loc[is_test].reset_index(drop=True)
        train = valid[columns]
        train_classes, ref_classes = set(train[target]), set(ref[target])  # tasks.reference's class checks
        assert not train_classes - ref_classes
        train, filled, _ = impute_splits(train, {"reference": ref, "test": test}, columns=FEATURES)
        feats = feature_columns(train, target)
        check = reference_distance(train[feats], filled["reference"][feats], seed=0)
        return {"train": train.reset_index(drop=True), "reference": filled["reference"], "test": filled["test"], "check": check}

    split = steps.run("reference", reference)
    settings = large_data_settings(len(split["train"]))
    if value_epochs is not None:
        settings["epochs"] = value_epochs

    def value() -> tuple[pd.DataFrame, pd.DataFrame]:
        train, ref = split["train"].set_index(ROW_ID), split["reference"]
        canaries = make_canaries(ref[FEATURES], ref[target], task="classification", share=0.3, seed=0, min_reference=2)
        canary_ids = pd.Index([f"canary-{i}" for i in range(len(canaries.X))], name=ROW_ID)
        X = pd.concat([train[FEATURES], canaries.X.set_index(canary_ids)])
        y = pd.concat([train[target], canaries.y.set_axis(canary_ids)])
        lv = LossVal("classification", random_state=0, progress=False, **settings)
        lv.fit(X, y, ref.loc[canaries.keep, FEATURES], ref.loc[canaries.keep, target])
        is_canary = lv.values_.index.isin(canary_ids)
        parts = lv.parts_.loc[~is_canary]
        values = pd.DataFrame({ROW_ID: lv.values_.index[~is_canary].astype(str), "value": lv.values_.to_numpy()[~is_canary],
                               "loss_part": parts["loss_part"].to_numpy(), "transport_part": parts["transport_part"].to_numpy(),
                               "reason": row_reasons(parts).to_numpy()})
        canary_values = pd.DataFrame({"kind": canaries.kind.astype(str), "value": lv.values_.to_numpy()[is_canary],
                                      "loss_part": lv.parts_["loss_part"].to_numpy()[is_canary],
                                      "transport_part": lv.parts_["transport_part"].to_numpy()[is_canary]})
        return values, canary_values

    def stand_in() -> tuple[pd.DataFrame, pd.DataFrame]:  # --stand-in-values: the data path without the fit, 8 % flagged
        rng = np.random.default_rng(0)
        n_train, n_canary = len(split["train"]), 2 * int(round(0.3 * len(split["reference"]) / 2))
        parts = pd.DataFrame({"loss_part": rng.gamma(1.0, size=n_train), "transport_part": rng.gamma(1.0, size=n_train)})
        low = 0.5 * (rng.random(n_train) < 0.08)  # 8 % of the rows score like the corrupted canaries: a night's quarantine
        values = pd.DataFrame({ROW_ID: split["train"][ROW_ID].astype(str).to_numpy(), "value": rng.normal(1.0, 0.2, n_train) - low,
                               "loss_part": parts["loss_part"].to_numpy(), "transport_part": parts["transport_part"].to_numpy(),
                               "reason": row_reasons(parts).to_numpy()})
        kind = np.where(np.arange(n_canary) < n_canary // 2, "clean", "labels")
        canary_values = pd.DataFrame({"kind": kind, "value": rng.normal(1.0, 0.2, n_canary) - 0.5 * (kind != "clean"),
                                      "loss_part": rng.gamma(1.0, size=n_canary), "transport_part": rng.gamma(1.0, size=n_canary)})
        return values, canary_values

    values, canary_values = steps.run("value (stand-in)" if stand_in_values else "value", stand_in if stand_in_values else value)

    def decide():
        pooled = pd.concat([values[["value", "loss_part", "transport_part"]], canary_values[["value", "loss_part", "transport_part"]]],
                           ignore_index=True)
        ranks = tie_free_ranks(pooled["value"].to_numpy(), loss_part=pooled["loss_part"].to_numpy(),
                               transport_part=pooled["transport_part"].to_numpy())
        return calibrated_decision(ranks, n_train=len(values), corrupted=(canary_values["kind"] != "clean").to_numpy(),
                                   min_precision=0.6, max_fraction=0.25, min_auroc=0.0, seed=0)[0]

    decision = steps.run("decide", decide)

    def quarantine() -> tuple[pd.DataFrame, pd.DataFrame, Ledger]:
        head = [ROW_ID, "reason", "value", "rule", "stage"]
        by_value = values.loc[decision.flagged, [ROW_ID, "value", "reason"]].assign(
            reason=lambda f: "value:" + f["reason"] + "-like", rule=decision.rule, stage="value").merge(valid, on=ROW_ID, how="left")
        table = pd.concat([failed.assign(value=np.nan, rule="schema", stage="schema"), by_value], ignore_index=True)
        table = table[head + [c for c in table.columns if c not in head]]
        table = table.astype({c: "string" for c in table.columns if c != "value"})
        clean = valid.loc[~valid[ROW_ID].astype(str).isin(set(table[ROW_ID].astype(str)))].reset_index(drop=True)
        ledger = Ledger().record(table[[ROW_ID, "value", "reason", "rule"]], fingerprint="f" * 16, run_id="r", at="2026-12-01T00:00:00")
        return table, clean, ledger

    table, clean, ledger = steps.run("quarantine", quarantine)
    if retrain:
        steps.run("retrain", lambda: MLP("classification", batch_size=settings["batch_size"], epochs=settings["epochs"],
                                         random_state=0, progress=False).fit(split["train"][FEATURES], split["train"][target]))

    def report() -> None:
        v = values["value"].to_numpy()
        flagged = values[ROW_ID].isin(set(table.loc[table["stage"] == "value", ROW_ID].astype(str))).to_numpy()
        cut = float(v[flagged].max()) if flagged.any() else float("nan")
        images = {"hist": report_lib.value_histogram(v, flagged, cut), "sorted": report_lib.sorted_values(v, flagged, cut)}
        value_rows = table[table["stage"] == "value"].astype({"value": "float64"})
        worst = value_rows.sort_values("value", kind="stable").head(25).drop(columns=["stage"])
        schema_rows = table[table["stage"] == "schema"].drop(columns=["stage", "value", "rule"])
        status_table = ledger.status()
        by_reason, by_class = breakdown(table, target=target)
        data = report_lib.ReportData(title="flow_scale", counts={"rows_in": len(ingested)}, scores={}, metric="accuracy",
                                     rule=decision.rule, worst=worst, images=images, by_reason=by_reason, by_class=by_class,
                                     repeated=status_table[status_table["times_quarantined"] > 1].head(25), schema_failures=schema_rows)
        (out / "report.html").write_text(report_lib.render_html(data))

    steps.run("report", report)

    def publish() -> None:
        write_parquet(clean, out / "clean.parquet")
        write_parquet(table, out / "quarantine.parquet")
        ledger.save(out / "ledger.parquet")

    steps.run("publish", publish)

    def record() -> None:
        import mlflow.data

        v = values["value"].to_numpy()
        np.quantile(v, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]), v.mean(), v.std()
        values.to_parquet(out / "values.artifact.parquet", index=False)
        table.to_parquet(out / "quarantine.artifact.parquet", index=False)
        mlflow.data.from_pandas(split["train"], source=str(raw_path), name=raw_path.name, targets=target)

    steps.run("record", record)
    sizes = {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(out.glob("*.parquet"))}
    print(json.dumps({"rows": n, "csv_mib": round(raw_path.stat().st_size / 2**20, 1), "parquet_mib": sizes,
                      "settings": settings, "torch_threads": torch.get_num_threads()}), flush=True)
    return steps.rows


def markdown(results: pd.DataFrame) -> str:
    """One row per step, one column per (rows, label): ``seconds / peak MiB``; the last row is the steps' sum and the
    largest peak."""
    results = results.assign(label=results["label"].astype(object).where(results["label"].notna(), "").astype(str)).drop_duplicates(["rows", "label", "step"], keep="last")
    order = ["read", "row_ids", "validate", "save_work", "reference", "value", "value (stand-in)", "decide", "quarantine", "retrain",
             "report", "publish", "record"]
    steps = sorted(dict.fromkeys(results["step"]), key=lambda s: order.index(s) if s in order else len(order))
    labels = list(dict.fromkeys(results["label"]))
    keys = sorted(dict.fromkeys(zip(results["rows"], results["label"])), key=lambda k: (k[0], labels.index(k[1])))
    head = "| step | " + " | ".join(f"{n:,} rows, {label} (s / MiB)" for n, label in keys) + " |"
    lines = [head, "|---|" + "---|" * len(keys)]
    for step in [*steps, "all"]:
        cells = []
        for n, label in keys:
            part = results[(results["rows"] == n) & (results["label"] == label)]
            row = part if step == "all" else part[part["step"] == step]
            cells.append("-" if row.empty else f"{row['seconds'].sum():.1f} / {int(row['peak_rss_mib'].max()):,}")
        lines.append(f"| {'**all steps** (sum / largest peak)' if step == 'all' else step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lossval-flow-scale",
                        help="generated inputs and outputs (default: <temp folder>/lossval-flow-scale)")
    parser.add_argument("--value-epochs", type=int, default=None, help="override large_data_settings' epochs (time-bounded runs)")
    parser.add_argument("--retrain", action="store_true", help="also time one downstream MLP fit")
    parser.add_argument("--stand-in-values", action="store_true",
                        help="seeded random values instead of the LossVal fit: the data path alone (e.g. its memory at 10^7 rows)")
    parser.add_argument("--max-gib", type=float, default=12.0, help="kill a size's child process above this RSS")
    parser.add_argument("--label", default="", help="e.g. before / after, written to the CSV")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--table", action="store_true", help="print the markdown table of --out's results and exit")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.table:
        print(markdown(pd.read_csv(args.out)))
        return
    status = args.work / f"status-{args.child or 0}.json"
    if args.child:
        profile(args.child, work=args.work, value_epochs=args.value_epochs, retrain=args.retrain, max_gib=args.max_gib, status=status,
                stand_in_values=args.stand_in_values)
        return
    print(f"machine: {machine()}; load {os.getloadavg()}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    for n in args.rows:
        cmd = [sys.executable, "-m", "bench.flow_scale", "--child", str(n), "--work", str(args.work), "--max-gib", str(args.max_gib)]
        cmd += (["--value-epochs", str(args.value_epochs)] if args.value_epochs else []) + (["--retrain"] if args.retrain else [])
        cmd += ["--stand-in-values"] if args.stand_in_values else []
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=REPO).returncode
        state = json.loads((args.work / f"status-{n}.json").read_text())
        rows = state.get("done", [])
        if code != 0:
            print(f"{n} rows: child exited {code}: {state}", flush=True)
        new = not args.out.exists()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(rows).assign(rows=n, label=args.label, exit=code, value_epochs=args.value_epochs or "",
                                          total_s=round(time.perf_counter() - started, 1), killed_in=state.get("killed_in", ""))
        frame.to_csv(args.out, mode="a", header=new, index=False)


if __name__ == "__main__":
    main()
