"""`modelwatch serve`: serving under gunicorn."""

from __future__ import annotations

import os
import sys
from importlib.resources import files

from modelwatch import serving  # its __init__ is a docstring: no app is built here

# Serving's own config file (package data of modelwatch.serving), wherever it is installed.
GUNICORN_CONF = files(serving) / "gunicorn.conf.py"
APP = "modelwatch.serving.app:create_app()"


def gunicorn_argv(workers: int, port: int, host: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--workers",
        str(int(workers)),
        "--bind",
        f"{host}:{int(port)}",
        APP,
    ]


def serve(workers: int, port: int, host: str) -> None:
    """Replace this process with gunicorn serving the app (never returns)."""
    argv = gunicorn_argv(workers, port, host)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
