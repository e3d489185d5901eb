"""The ``lossval-clean`` command line.

    lossval-clean init PATH --target COLUMN    # a params file for your table, inferred from a sample of it
    lossval-clean demo                         # the whole flow on a noised copy of the bundled example
    lossval-clean run [--set key=value ...]    # the flow on params.yaml
    lossval-clean quarantine [--history]       # what is quarantined now / ever
    lossval-clean restore ROW_ID ... [--note]  # take rows off quarantine, keep them in later runs
    lossval-clean snapshot checkout RUN_ID     # bring back a past run's cleaned data, verified by hash
    lossval-clean repro                        # `dvc repro` with this environment on PATH
    lossval-clean stage NAME                   # one DVC stage (called by dvc.yaml)
    lossval-clean deploy [--gpu-worker]        # Prefect server, work pools, deployments, workers (nightly runs)
    lossval-clean ui [--port N] [--detach]     # the MLflow UI on 127.0.0.1, to compare runs
    lossval-clean stop                         # stop what deploy and ui started

Exit codes: 0 success, 1 a bug (with its traceback), 2 usage (command line, parameters), 3 bad data,
4 the project is locked by another run, 5 a service (MLflow, DVC remote) fails, 6 disk full or permission denied,
7 valuation unreliable (results published, the canary self-test failed, nothing quarantined by value).
"""

from __future__ import annotations

import argparse
import os
import sys

from flows.commands import (
    _project, cmd_init, cmd_demo, cmd_quarantine, cmd_restore, cmd_snapshot, cmd_stage, cmd_repro, cmd_deploy, cmd_stop, cmd_ui,
)
from cleaning.failures import EXIT_UNRELIABLE  # a run whose results are published but whose canary self-test failed


def cmd_run(args: argparse.Namespace) -> int:
    project = _project(args)  # fail fast on bad params, before Prefect starts
    summary, code = _run_flow(
        params_file=args.params, overrides=project.overrides, project_dir=str(project.root), trigger=args.trigger, wait_for_lock=args.wait
    )
    _print_summary(project, summary)
    return code


def _run_flow(**kwargs) -> tuple[dict, int]:
    """The flow's summary and the exit code: 0, or EXIT_UNRELIABLE when the flow run ended Failed on the self-test."""
    from flows.pipeline import ValuationUnreliable, lossval_clean

    try:
        return lossval_clean(**kwargs), 0
    except ValuationUnreliable as e:
        return e.summary, EXIT_UNRELIABLE


def _print_summary(project, summary: dict) -> None:
    from cleaning.report import summary_lines
    from cleaning.retrain import Retrained, describe
    from cleaning.secrets import redact
    from cleaning.tracking import tracking_uri

    print(f"\nlossval-clean run {summary['run_name']}: tonight's health")
    print(summary_lines(summary["health"]))
    print(f"\nrows in: {summary['rows_in']}  quarantined by schema: {summary['rows_quarantined_schema']}  "
          f"by value: {summary['rows_quarantined_value']}  clean: {summary['rows_clean']}   ({summary['rule']})")
    print(describe(Retrained(scores={}, models={}, gate=summary["gate"])))
    print(f"snapshot {summary['snapshot']}, DVC experiment {summary['dvc_experiment']}  (dvc exp show; lossval-clean snapshot checkout {summary['run_id']})")
    print(f"report: {project.reports_dir / 'report.html'}")
    print(f"MLflow run {summary['run_id']} in {redact(tracking_uri(project))}: {summary['mlflow_run']} (lossval-clean ui)")
    if summary["valuation_unreliable"]:
        from flows.pipeline import UNRELIABLE

        print(f"\nFAILED: {UNRELIABLE}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossval-clean", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default=None, help="project root (default: LOSSVAL_PROJECT_DIR or the nearest folder with params.yaml)")
    parser.add_argument("--params", default="params.yaml", help="parameters file, relative to the project root")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the cleaning flow")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter, e.g. quarantine.strategy=quantile")
    p.add_argument("--trigger", default="manual", choices=["manual", "scheduled", "dvc"], help=argparse.SUPPRESS)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait if another run holds the project (default: fail at once)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("init", help="write a params file for a table, inferred from a sample of it (pandera.infer_schema)")
    p.add_argument("path", help="the table, CSV or Parquet")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--task", choices=["classification", "regression"], default=None, help="default: inferred from the target")
    p.add_argument("--output", default=None, help="file to write, relative to the project (default params.yaml, only when none exists)")
    p.add_argument("--sample-rows", type=int, default=None, help="rows read for the inference (default 100000)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="the whole flow on a noised copy of the bundled example")
    p.add_argument("--rate", type=float, default=0.1, help="share of rows to corrupt (half labels, half features; default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("quarantine", help="list quarantined rows")
    p.add_argument("--history", action="store_true", help="every row ever quarantined, with counts and dates, from the ledger")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--csv", help="write the table, with the rows' columns, to this CSV file (spreadsheet-safe; - = standard output)")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("restore", help="take rows off quarantine and keep them in later runs")
    p.add_argument("row_ids", nargs="+", metavar="ROW_ID")
    p.add_argument("--note", default="", help="why (kept in the ledger)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a running pipeline to finish")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("snapshot", help="DVC snapshots")
    snap = p.add_subparsers(dest="action", required=True)
    c = snap.add_parser("checkout", help="bring back the cleaned data of a past run, verified by hash")
    c.add_argument("run_id", help="an MLflow run id of the lossval-clean experiment")
    c.add_argument("--output", help="folder to restore into (default data_dir/restored/RUN_ID)")
    c.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a running pipeline to finish")
    c.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("stage", help="run one DVC stage (used by dvc.yaml)")
    p.add_argument("name", choices=["ingest", "validate", "reference", "value", "quarantine", "retrain", "record"])
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a running pipeline to finish")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("repro", help="dvc repro, with this environment's executables on PATH")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a running pipeline to finish")
    p.add_argument("dvc_args", nargs=argparse.REMAINDER, help="passed on to dvc repro")
    p.set_defaults(func=cmd_repro)

    p = sub.add_parser("deploy", help="start or reuse the Prefect server, create the work pools, deploy prefect.yaml, start the workers")
    p.add_argument("--gpu-worker", action="store_true", help="also start a worker on the valuation deployment's pool (lossval-gpu) here")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("stop", help="stop the workers, the MLflow UI and the Prefect server that deploy and ui started")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("ui", help="the MLflow UI on 127.0.0.1 on the project's tracking store")
    p.add_argument("--port", type=int, default=None, help="default 5000, or a free port when 5000 is taken")
    p.add_argument("--detach", action="store_true", help="run it in the background (lossval-clean stop ends it)")
    p.set_defaults(func=cmd_ui)
    return parser


def configure_environment() -> None:
    """Defaults for a local run (a user's own settings win): no telemetry, and a patient start of
    Prefect's temporary local server on a busy machine (its own default is 20 s)."""
    for name, value in {
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "lossval_clean",  # the stages' log lines in the flow run's logs
    }.items():
        os.environ.setdefault(name, value)


def main(argv: list[str] | None = None) -> int:
    configure_environment()
    args = build_parser().parse_args(argv)
    from cleaning.failures import EXIT_BUG, EXIT_USAGE, exit_code, install_logging, message

    install_logging()
    try:
        return args.func(args)
    except Exception as e:  # expected failures: one line and their exit code (cleaning/failures.py); bugs: the traceback
        code = exit_code(e)
        if code == EXIT_BUG:
            if not isinstance(e, (ValueError, RuntimeError, FileNotFoundError)):
                raise
            code = EXIT_USAGE  # a command's own refusal (an unknown row id, a port in use...)
        print(f"lossval-clean {args.command}: error: {message(e)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
