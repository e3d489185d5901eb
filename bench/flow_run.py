"""The whole flow, as a user runs it, on a generated input of N rows: wall time per step and peak memory.

Makes a project (a ``git clone`` of this repository into ``--work``), puts the generated input of
:func:`bench.flow_input.make_input` (resampled Elec2, 10 % labels flipped, a few broken rows) and its
2000-row trusted reference into it, and runs ``lossval-clean run`` with the default parameters under
``/usr/bin/time -v``. The per-step times are read from Prefect's task log lines (each task's finish
time minus the previous one's); the peak memory is the process tree's maximum resident set.

    python -m bench.flow_run --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.common import REPO
from bench.flow_input import make_input

FINISHED = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) \| INFO\s+\| Task run '([a-z]+)-[0-9a-f]+' - Finished in state Completed")
STARTED = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) \| INFO\s+\| Flow run '[^']+' - Beginning flow run")
COLUMNS = ["rows", "step", "seconds", "peak_rss_mib", "wall_seconds", "exit", "when"]


def make_project(folder: Path, rows: int) -> Path:
    """A clone of this repository's HEAD with the generated input and reference under data/."""
    project = folder / f"project-{rows}"
    if not project.exists():
        subprocess.run(["git", "clone", "-q", str(REPO), str(project)], check=True)
    raw, ref = make_input(rows, folder / "inputs")
    for source, name in ((raw, "input.csv"), (ref, "reference.csv")):
        target = project / "data" / name
        if not target.exists():
            os.link(source, target)
    return project


def step_seconds(log: str) -> dict[str, float]:
    """Seconds per task from Prefect's log: a task's finish time minus the previous finish (or the flow's start)."""
    stamps: list[tuple[str, datetime]] = []
    for line in log.splitlines():
        if m := STARTED.match(line):
            stamps.append(("start", datetime.strptime(m.group(1), "%H:%M:%S.%f")))
        elif m := FINISHED.match(line):
            stamps.append((m.group(2), datetime.strptime(m.group(1), "%H:%M:%S.%f")))
    steps: dict[str, float] = {}
    for (_, before), (name, after) in zip(stamps, stamps[1:]):
        steps[name] = steps.get(name, 0.0) + (after - before).total_seconds() % 86400
    return steps


def run(project: Path, log_path: Path) -> tuple[int, float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(project), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           "PREFECT_HOME": str(project.parent / "prefect-home"), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    command = ["/usr/bin/time", "-v", str(Path(sys.executable).parent / "lossval-clean"), "run",
               "--set", "ingest.path=data/input.csv", "--set", "reference.path=data/reference.csv"]
    started = time.perf_counter()
    with log_path.open("w") as log:
        code = subprocess.run(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    text = log_path.read_text()
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return code, wall, int(peak.group(1)) / 1024 if peak else float("nan"), text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lossval-flow-run"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "flow_run.csv")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with args.out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for rows in args.rows:
            project = make_project(args.work, rows)
            code, wall, peak, log = run(project, args.work / f"run-{rows}.log")
            when = datetime.now().isoformat(timespec="seconds")
            steps = step_seconds(log)
            for step, seconds in steps.items():
                writer.writerow({"rows": rows, "step": step, "seconds": round(seconds, 1), "peak_rss_mib": round(peak), "wall_seconds": round(wall, 1),
                                 "exit": code, "when": when})
            fh.flush()
            print(f"{rows} rows: exit {code}, {wall:.0f} s wall, peak RSS {peak:.0f} MiB; " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items()))


if __name__ == "__main__":
    main()
