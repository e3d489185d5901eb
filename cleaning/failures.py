"""Expected failures: one clear message and a documented exit code, never a traceback.

A failure the operator can act on (a bad file, bad parameters, a locked
project, a service that does not answer, a full disk) is reported as one line
naming the problem, in the CLI (``lossval-clean CMD: error: ...``) and in
Prefect (the run's Failed state message, and its logs without a traceback).
Anything else is a bug: it keeps its traceback and exit code 1.

Exit codes (docs/operations.md):

==  ============================================================================
0   success
1   a bug (unexpected exception; traceback printed)
2   usage: bad command line or parameters (``params.yaml``, ``--set``, ``value.options``)
3   bad data: the input or reference file, the schema, the ledger, a diverging training
4   the project is locked by another run (``--wait SECONDS`` to wait for it)
5   a service does not answer or fails: MLflow, the DVC remote, a DVC timeout
6   the machine: disk full, permission denied, read-only file system
7   valuation unreliable: results published, but the canary self-test failed (nothing quarantined by value)
==  ============================================================================
"""

from __future__ import annotations

import errno
import logging
import subprocess

from cleaning.secrets import redact

EXIT_BUG, EXIT_USAGE, EXIT_DATA, EXIT_LOCKED, EXIT_SERVICE, EXIT_MACHINE, EXIT_UNRELIABLE = 1, 2, 3, 4, 5, 6, 7
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def exit_code(error: BaseException) -> int:
    """The exit code for ``error``: one of the expected kinds, else :data:`EXIT_BUG`."""
    from lossval.errors import TrainingDivergedError
    from lossval.ledger import LedgerError
    from lossval.rows import TableError
    from schemas.dataset import DatasetError
    from schemas.params import ParamsError
    from cleaning.transaction import RunLockedError
    from cleaning.snapshot import DestinationError, SnapshotError
    from cleaning.tracking import TrackingError, TrackingUnavailableError

    kinds: list[tuple[tuple[type[BaseException], ...], int]] = [
        ((ParamsError, DestinationError), EXIT_USAGE),
        ((TableError, DatasetError, LedgerError, TrainingDivergedError), EXIT_DATA),
        ((RunLockedError,), EXIT_LOCKED),
        ((TrackingUnavailableError, TrackingError, SnapshotError, subprocess.TimeoutExpired, ConnectionError), EXIT_SERVICE),
    ]
    for types, code in kinds:
        if isinstance(error, types):
            return code
    if type(error).__name__ == "MlflowException" or type(error).__module__.startswith(("requests.", "urllib3.")):
        return EXIT_SERVICE
    if isinstance(error, OSError) and error.errno in _MACHINE_ERRNOS:
        return EXIT_MACHINE
    return EXIT_BUG


def message(error: BaseException) -> str:
    """One line (or a few) naming the problem, credentials redacted."""
    if isinstance(error, subprocess.TimeoutExpired):
        text = f"`{' '.join(map(str, error.cmd[-3:]))}` did not finish within {error.timeout:g} s"
    elif isinstance(error, OSError) and error.errno in _MACHINE_ERRNOS:
        text = f"{error.strerror}: {error.filename}" if error.filename else str(error)
    else:
        text = str(error)
    return redact(text)


class CleanLogFilter(logging.Filter):
    """A handler filter: credentials redacted from every message and traceback, and no traceback for an
    expected failure (Prefect's task and flow engines log one for every exception)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "://" in text:
            record.msg, record.args = redact(text), None
        if record.exc_info and record.exc_info[1] is not None:
            if exit_code(record.exc_info[1]) != EXIT_BUG:
                record.exc_info, record.exc_text = None, None
            else:
                record.exc_text, record.exc_info = redact(logging.Formatter().formatException(record.exc_info)), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = CleanLogFilter()


def install_logging() -> None:
    """Add :class:`CleanLogFilter` to every handler of every logger configured so far, and let the pipeline's
    own INFO lines (logger ``lossval_clean``: rows in, values, epochs, models) through to the console and to the
    flow run's logs; unset, the logger inherits the root's WARNING and Prefect's handlers never see them (idempotent)."""
    logging.getLogger("lossval_clean").setLevel(logging.INFO)
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
