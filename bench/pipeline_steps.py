"""Time each step of the lossval-clean flow on the bundled example (3000 rows), for docs/benchmarks.md.

Runs the real flow in a temporary copy of the project (git + DVC + local remote, its own MLflow sqlite
store and Prefect home), then reads every task run's duration back from Prefect's API.

    python -m bench.pipeline_steps [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import machine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="flow runs (the first one also creates the stores)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lossval-steps-"))
    os.environ.update(
        PREFECT_HOME=str(work / "prefect"), MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", MLFLOW_DISABLE_TELEMETRY="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1",
    )
    from flows.cli import configure_environment

    configure_environment()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.pipeline import lossval_clean
    from tests.helpers import make_project

    root = make_project(work / "project", rows=3000, reference_rows=400, epochs=30)
    print(f"machine: {machine()}")
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        state = lossval_clean(project_dir=str(root), overrides={"quarantine.max_fraction": 0.2 + 0.01 * run}, return_state=True)
        wall = time.perf_counter() - started
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        print(f"\nrun {run}: {state.name}, {wall:.1f} s wall clock (flow run incl. Prefect overhead)")
        print("| step | seconds |\n|---|---|")
        for t in sorted(tasks, key=lambda t: t.start_time):
            print(f"| {t.task_key.rsplit('-', 1)[0] if t.task_key else t.name} | {t.total_run_time.total_seconds():.2f} |")


if __name__ == "__main__":
    main()
