"""Keeping credentials out of every output: URLs' user:password parts redacted in messages and logs.

Credentials belong in ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` or DVC's
``.dvc/config.local``; a tracking URI may still carry them
(``http://user:secret@host``). :func:`redact` removes them from any text, and
:func:`install_log_redaction` puts a filter on every logging handler (Prefect's
console and API handlers included), so a library's error message that repeats
the URL, or a traceback that quotes it, reaches no log with the secret in it.
"""

from __future__ import annotations

import logging
import re

# After "://", everything up to the last "@" before the host: user, password (even with "/" or "@"
# in it, as in user:pa/ss@ or user:p@ss@), never crossing whitespace or another "://".
_CREDENTIALS = re.compile(r"(?<=://)(?:(?!://)\S)*@")


def redact(text: str) -> str:
    """``text`` with the user:password part of every URL in it replaced by ``***``, for logs and messages."""
    return _CREDENTIALS.sub("***@", text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts credentials in the message and in the formatted traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Add the redacting filter to every handler of every logger configured so far (idempotent)."""
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
