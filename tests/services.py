"""Start and stop the real processes the tests run against."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent
# Whether the running test is marked slow (set by tests/conftest.py): only slow tests may
# start real processes.
slow_test = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, poll: float = 0.1
):
    """Wait until `predicate()` is true and return its value; fail after `timeout`
    seconds, or at once if `proc` exited (its event will not come)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {what}")
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def answers(url: str) -> bool:
    """`url` answers 2xx (a refused or failed connection is a no)."""
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until `url` answers 2xx; fail early if `proc` died."""
    wait_for(lambda: answers(url), timeout, f"{url} to answer", proc, poll=0.25)


@contextmanager
def process(args: list[str], log: Path, env: dict | None = None, cwd: Path | None = None):
    """Run `args` in its own process group, its output in `log`; stop the group at exit."""
    if not slow_test:
        raise RuntimeError(
            f"a test that starts {Path(args[0]).name} must be marked slow (pytest.mark.slow)"
        )
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@contextmanager
def mlflow_server(root: Path, port: int | None = None):
    """A real `mlflow server` on SQLite with served artifacts under `root`; yields its URL."""
    with mlflow_server_process(root, port) as (url, _):
        yield url


@contextmanager
def mlflow_server_process(root: Path, port: int | None = None):
    """As `mlflow_server`, yielding (url, process) for tests that stop or restart it."""
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with process(args, root / "mlflow-server.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", timeout=120, proc=proc)
        yield url, proc
