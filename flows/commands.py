"""The ``lossval-clean`` commands other than ``run``: init, demo, quarantine, restore, snapshot, stage, repro,
deploy, stop, ui (the parser and ``run`` are in flows/cli.py)."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path


def _project(args: argparse.Namespace):
    from cleaning.project import Project

    # `run` takes this run's --set (none = none); every other command sees the last run's (params.overrides.yaml)
    return Project.load(args.project, params_file=args.params, overrides=(args.set or ()) if hasattr(args, "set") else None)


def cmd_init(args: argparse.Namespace) -> int:
    """Infer a complete params file for a table: params.yaml when the project has none, else --output."""
    import yaml

    from schemas.inference import SAMPLE_ROWS, header, infer_params, write_params
    from schemas.params import ParamsError
    from cleaning.project import PARAMS_FILE, find_root

    try:
        root = find_root(args.project)
    except ParamsError:
        root = Path(args.project or os.environ.get("LOSSVAL_PROJECT_DIR") or Path.cwd()).resolve()
    defaults_file = root / PARAMS_FILE if (root / PARAMS_FILE).is_file() else Path(__file__).resolve().parents[1] / PARAMS_FILE
    if args.output is None and (root / PARAMS_FILE).exists():
        raise ParamsError(f"{root / PARAMS_FILE} exists: pass --output FILE for the inferred parameters (nothing was written)")
    destination = root / (args.output or PARAMS_FILE)
    source = Path(os.path.abspath(args.path))  # not resolve(): keep the path the user gave through symlinks
    tree, left_out = infer_params(
        source, target=args.target, task=args.task, defaults=yaml.safe_load(defaults_file.read_text()),
        path_in_params=os.path.relpath(source, root), sample_rows=args.sample_rows or SAMPLE_ROWS,
    )  # fmt: skip
    write_params(tree, destination, comment=header(args.path, rows=args.sample_rows or SAMPLE_ROWS, left_out=left_out))
    kinds = [rule["kind"] for name, rule in tree["validate"]["columns"].items() if name != args.target]
    print(f"wrote {destination}: task {tree['base']['task']}, target {args.target!r}, "
          + ", ".join(f"{kinds.count(k)} {k}" for k in ("numeric", "categorical", "boolean", "ignore") if kinds.count(k)))
    for column, why in left_out.items():
        print(f"  left out: {column!r} ({why})")
    params_option = "" if destination.name == PARAMS_FILE and destination.parent == root else f" --params {os.path.relpath(destination, root)}"
    print(f"review it, then: lossval-clean{params_option} run")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    return run_demo(args)


def cmd_quarantine(args: argparse.Namespace) -> int:
    import pandas as pd

    from lossval.ledger import Ledger

    project = _project(args)
    if args.history:
        table = Ledger.load(project.ledger_path).status()
    else:
        path = project.snapshot_dir / "quarantine.parquet"
        if not path.exists():
            print("nothing quarantined yet: run `lossval-clean run` first")
            return 0
        table = pd.read_parquet(path)
        if not args.csv:  # the terminal view; the CSV export keeps every column of the rows
            table = table[["row_id", "stage", "reason", "value", "rule"]]
    if args.csv:
        from lossval.io import write_text
        from cleaning.quarantine import csv_safe

        text = csv_safe(table).to_csv(index=False)
        if args.csv == "-":  # standard output; the count goes to stderr so the CSV stays clean
            sys.stdout.write(text)
            print(f"wrote {len(table)} rows to standard output", file=sys.stderr)
            return 0
        write_text(text, args.csv)
        print(f"wrote {len(table)} rows to {args.csv}")
    else:
        with pd.option_context("display.width", 200, "display.max_rows", args.limit):
            print(table.head(args.limit).to_string(index=False))
            if len(table) > args.limit:
                print(f"... {len(table) - args.limit} more (--limit, --csv)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from cleaning.restore import restore_run
    from cleaning.transaction import project_lock

    project = _project(args)
    with project_lock(project.lock_path, wait_seconds=args.wait):
        restored, tracker, experiment = restore_run(project, args.row_ids, note=args.note)
    print(f"restored {len(restored)} row(s): {', '.join(restored)}; they are kept in every later run")
    print(f"recorded as MLflow run {tracker.run_id} (trigger=restore) and DVC experiment {experiment}")
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from cleaning.restore import checkout_run
    from cleaning.transaction import project_lock

    project = _project(args)
    destination = Path(args.output) if args.output else project.data_dir / "restored" / args.run_id
    with project_lock(project.lock_path, wait_seconds=args.wait):
        md5, experiment, path = checkout_run(project, args.run_id, destination)
    print(f"snapshot {md5} of run {args.run_id} (DVC experiment {experiment}) restored to {path}, every file checked against DVC's hashes")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from cleaning.stages import run_stage
    from cleaning.transaction import project_lock

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    project = _project(args)
    with project_lock(project.lock_path, wait_seconds=args.wait):  # the flow's lock; already held under `repro`
        run_stage(args.name, project)
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    """`dvc repro` under the project lock; when its record stage logged a new MLflow run, the result is saved
    as a DVC experiment named after it (tag dvc_experiment), like a flow run's."""
    import json

    from cleaning.transaction import HOLDER_ENV, run_lock

    project = _project(args)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           HOLDER_ENV: str(os.getpid())}  # the stages see that this process holds the project's lock
    record = project.work_file("run.json")
    last_run = lambda: json.loads(record.read_text()).get("run_id") if record.exists() else None  # noqa: E731
    with run_lock(project.lock_path, wait_seconds=args.wait):
        before = last_run()
        code = subprocess.run([sys.executable, "-m", "dvc", "repro", *args.dvc_args], cwd=project.root, env=env).returncode
        if code == 0 and (run_id := last_run()) != before:
            from mlflow.tracking import MlflowClient

            from cleaning.snapshot import version_run
            from cleaning.tracking import tracking_uri

            client = MlflowClient(tracking_uri(project))
            md5, experiment = version_run(project, run_name=client.get_run(run_id).info.run_name, run_id=run_id)
            client.set_tag(run_id, "dvc_experiment", experiment)
            print(f"saved as DVC experiment {experiment} (MLflow run {run_id})")
    return code


def cmd_deploy(args: argparse.Namespace) -> int:
    from flows.deploy import deploy

    deploy(_project(args), gpu_worker=args.gpu_worker)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from flows.deploy import stop_all

    stop_all(_project(args))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from flows.ui import serve

    return serve(_project(args), port=args.port, detach=args.detach)
