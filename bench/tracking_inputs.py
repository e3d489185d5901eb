"""How long cleaning.tracking.Tracker takes to log the dataset inputs, against MLflow's own from_pandas (issue 13).

    python -m bench.tracking_inputs --rows 1000000 10000000 --mlflow-rows 100000 --model

A synthetic frame (8 float columns, a 3-level categorical, a 2-class target) of each size is logged as the
training input (reference and test: 1000 rows each) to a fresh sqlite store in a temporary folder. Prints
wall and CPU seconds (CPU time is steadier on a shared machine); ``--mlflow-rows`` also times
``mlflow.data.from_pandas(...)`` + ``log_input`` on that many rows, which infers schema and digest from every row;
``--model`` times logging the served models (cleaning.serving.log_label_model, a 1000-row classifier).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {f"x{i}": rng.normal(size=rows) for i in range(8)}
    return pd.DataFrame({**columns, "colour": rng.choice(["red", "green", "blue"], rows), "target": rng.choice(["DOWN", "UP"], rows)})


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--model", action="store_true", help="also time logging the two label models (cleaning.serving)")
    parser.add_argument("--mlflow-rows", type=int, default=0, help="also time MLflow's from_pandas on this many rows (0: no)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    try:
        tree = yaml.safe_load((REPO / "params.yaml").read_text())
        (folder / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
        import mlflow

        from cleaning.tracking import Tracker
        from cleaning.project import Project

        project = Project.load(folder)
        small = frame(1000, seed=1)
        print("| rows | what | wall (s) | CPU (s) |\n|---|---|---|---|")
        for rows in args.rows:
            train = frame(rows)
            tracker = Tracker.start(project, trigger="bench")
            wall, cpu = timed(lambda: tracker.log_inputs(train=train, reference=small, test=small))
            tracker.end()
            print(f"| {rows:,} | Tracker.log_inputs (3 inputs) | {wall:.2f} | {cpu:.2f} |", flush=True)
            del train
        if args.model:
            from lossval.model import MLP, export_state
            from cleaning.serving import log_label_model

            features = small.drop(columns=["target"])
            state = export_state(MLP("classification", epochs=2, random_state=0, progress=False).fit(features, small["target"]))
            tracker = Tracker.start(project, trigger="bench")
            for name in ("lossval_model", "downstream_model"):
                wall, cpu = timed(lambda: log_label_model(run_id=tracker.run_id, name=name, state=state, input_rows=features.head(5),
                                                          registered_model_name="bench" if name == "downstream_model" else None))
                print(f"| - | log_label_model ({name}) | {wall:.2f} | {cpu:.2f} |", flush=True)
            tracker.end()
        if args.mlflow_rows:
            train = frame(args.mlflow_rows)
            with mlflow.start_run():
                wall, cpu = timed(lambda: mlflow.log_input(mlflow.data.from_pandas(train, source="train.csv", targets="target"), context="training"))
            print(f"| {args.mlflow_rows:,} | mlflow.data.from_pandas + log_input (1 input) | {wall:.2f} | {cpu:.2f} |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
