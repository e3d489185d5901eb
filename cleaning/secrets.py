"""Keeping credentials out of every output: URLs' user:password parts redacted in messages and logs.

Credentials belong in ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` or DVC's
``.dvc/config.local``; a tracking URI may still carry them
(``http://user:secret@host``). :func:`redact` removes them from any text, so a library's error message that repeats
the URL, or a traceback that quotes it, reaches no log with the secret in it
(:class:`cleaning.failures.CleanLogFilter` applies it to every log handler during a run).
"""

from __future__ import annotations

import re

# After "://", everything up to the last "@" before the host: user, password (even with "/" or "@"
# in it, as in user:pa/ss@ or user:p@ss@), never crossing whitespace or another "://".
_CREDENTIALS = re.compile(r"(?<=://)(?:(?!://)\S)*@")


def redact(text: str) -> str:
    """``text`` with the user:password part of every URL in it replaced by ``***``, for logs and messages."""
    return _CREDENTIALS.sub("***@", text)


def without_credentials(url: str) -> str:
    """``url`` with its user:password part removed (not masked): for links a person opens, where ``***@``
    would only make the browser ask for a login (the server's own login still applies)."""
    return _CREDENTIALS.sub("", url)
