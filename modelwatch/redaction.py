"""Credentials out of what a process reports: error messages, logs, status answers.

Serving and the monitor both import this (neither imports the other): a tracking URI
such as https://user:token@mlflow.example or a store URL such as
postgresql://user:password@db/log reaches error messages (MLflow's own name the full
request URL), and from there logs and answers.

>>> redact_credentials("API request to http://me:s3cret@mlflow:5000/api failed")
'API request to http://***@mlflow:5000/api failed'
>>> masked({"error": "postgresql://u:p@db/log is down", "at": 1.0})
{'error': 'postgresql://***@db/log is down', 'at': 1.0}
"""

from __future__ import annotations

import logging
import re

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


def redact_credentials(text):
    """`text` with the user:password of every URL in it masked; anything else as it is."""
    if not isinstance(text, str):
        return text
    return _USERINFO.sub(r"\1***@", text)


def masked(value):
    """`value` (JSON-like: dicts, lists, strings) with every string's credentials masked."""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return redact_credentials(value)


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and traceback before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_credentials(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = redact_credentials(
                logging.Formatter().formatException(record.exc_info)
            )
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


def redact_logs(package: str) -> None:
    """Mask credentials in every record logged on `package`'s loggers that exist now (a
    logger's filter sees only the records logged on that logger, not its children's)."""
    for name in list(logging.root.manager.loggerDict):
        if name == package or name.startswith(package + "."):
            logging.getLogger(name).addFilter(_FILTER)


class RedactingFormatter(logging.Formatter):
    """For a process's own handlers: every line it writes, whoever logged it, masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_credentials(super().format(record))
