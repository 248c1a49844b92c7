"""Fixtures of the serving suite: registered models, in-process apps, real gunicorn."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from modelwatch.serving.app import create_app, shutdown_app

from modelwatch.cli.serve import gunicorn_argv
from tests import services
from tests.serving import modelkit
from tests.serving.pgcluster import Cluster, why_unavailable

ROOT = Path(__file__).resolve().parents[2]
MODEL = "credit-default-serving-test"


@dataclass
class Registered:
    url: str
    name: str
    versions: list[str]


@pytest.fixture(scope="session")
def registered(mlflow_url) -> Registered:
    """`credit-default-serving-test`: version 1 (alias production) and version 2."""
    v1 = modelkit.register_version(mlflow_url, MODEL, seed=1, alias="production")
    v2 = modelkit.register_version(mlflow_url, MODEL, seed=2)
    return Registered(mlflow_url, MODEL, [v1, v2])


@pytest.fixture(scope="module")
def cluster():
    """A throwaway PostgreSQL cluster (initdb, pg_ctl) per test module; skips its tests
    where there can be none."""
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    pg = Cluster().init()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
def make_app(tmp_path):
    """Build in-process apps on private paths; each is shut down after the test."""
    apps = []

    def make(wait: bool = True, **overrides):
        settings = {
            "store_url": f"sqlite:///{tmp_path / 'predictions.db'}",
            "spill_dir": str(tmp_path / "spill"),
            "model_cache_dir": str(tmp_path / "cache"),
            "reload_interval": 1.0,
            "feedback_wait": 0.3,
            **overrides,
        }
        app = create_app(settings)
        apps.append(app)
        if wait:
            assert app.extensions["modelwatch"].models.ready.wait(60), app.extensions[
                "modelwatch"
            ].models.last_error
        return app

    yield make
    for app in apps:
        shutdown_app(app)


@dataclass
class Gunicorn:
    url: str
    proc: object
    log: Path

    def pids_serving(self, version: str) -> set[int]:
        """Worker pids whose log says they serve `version`."""
        text = self.log.read_text(errors="replace")
        return {
            int(p)
            for p in re.findall(
                rf"\[(\d+)\] \[INFO\] modelwatch\.serving\.model\.manager: "
                rf"serving \S+ version {re.escape(version)} ",
                text,
            )
        }

    def wait_workers(self, version: str, n: int = 2, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while len(self.pids_serving(version)) < n:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{n} workers did not load version {version}:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.2)


@contextmanager
def gunicorn(tmp: Path, env: dict, workers: int = 2, ready_version: str | None = None):
    """Real gunicorn (serving/gunicorn.conf.py, as `modelwatch serve` runs it)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = services.free_port()
    full_env = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
        "MODELWATCH_STORE_URL": f"sqlite:///{tmp / 'predictions.db'}",
        "MODELWATCH_SPILL_DIR": str(tmp / "spill"),
        "MODELWATCH_MODEL_CACHE_DIR": str(tmp / "cache"),
        "MODELWATCH_RELOAD_INTERVAL": "1",
        "MODELWATCH_GRACEFUL_TIMEOUT": "30",
        **env,
    }
    log = tmp / "gunicorn.log"
    with services.process(
        gunicorn_argv(workers, port, "127.0.0.1"), log, env=full_env, cwd=ROOT
    ) as proc:
        server = Gunicorn(f"http://127.0.0.1:{port}", proc, log)
        services.wait_http(f"{server.url}/health", timeout=120, proc=proc)
        if ready_version is not None:
            server.wait_workers(ready_version, workers)
        yield server


def predict(url: str, rows: list[dict], timeout: float = 30) -> requests.Response:
    return requests.post(f"{url}/predict", json={"records": rows}, timeout=timeout)


def metric_total(text: str, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total
