"""`modelwatch status`: a table for a person, the raw documents with `--json`; unhealthy
(exit 1) while serving answers with a version the monitor cannot judge, and says why;
a clear line when nothing runs; services found through MODELWATCH_SERVING_URL and
MODELWATCH_MONITOR_URL before the stack's pid files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.serving.app import create_app as create_serving
from modelwatch.serving.app import shutdown_app
from modelwatch.training.simulator import TARGET, generate
from werkzeug.serving import make_server

from modelwatch.cli import status
from modelwatch.cli.onboard import onboard
from modelwatch.cli.stack import DEFAULT_PORTS, Stack
from modelwatch.log import open_store
from modelwatch.settings import port_variable
from tests import services
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_monitor_real import send_through_serving
from tests.serving import modelkit

ROOT = Path(__file__).resolve().parents[2]


def _info(served, monitor):
    components = {
        "serving": {"running": True, "healthy": True, "url": "http://s"},
        "monitor": {"running": True, "healthy": True, "url": "http://m"},
    }
    info = {"components": components, "served": served, "monitor": monitor, "alerts": None}
    info["monitored"] = status._monitored(served, monitor)
    return info


def _watching(doc: dict, name: str = "wine") -> dict:
    """The monitor's /status (contract C3) watching one model."""
    return {"models": {name: {"model": name, **doc}}}


def test_a_served_version_the_monitor_cannot_judge_is_reported():
    served = {"name": "wine", "version": "3", "fallback": False}
    monitor = _watching(
        {
            "version": None,
            "monitored": False,
            "last_window": None,
            "not_monitored": {
                "version": "3",
                "reason": "not_onboarded",
                "message": "wine version 3 has no monitoring reference: run `modelwatch onboard`",
            },
        }
    )
    info = _info(served, monitor)
    assert info["monitored"] is False
    assert (
        "NOT MONITORED served version 3: wine version 3 has no monitoring reference"
        in status._text(info)
    )


def test_the_judged_version_is_monitored_and_a_fallback_is_not_asked():
    judged = _info(
        {"name": "wine", "version": "3", "fallback": False},
        _watching({"version": "3", "monitored": True}),
    )
    assert judged["monitored"] is True and "NOT MONITORED" not in status._text(judged)
    other = _info(
        {"name": "wine", "version": "4", "fallback": False},
        _watching({"version": "3", "monitored": True}),
    )
    assert other["monitored"] is False  # serving moved on; the monitor has not (yet)
    unwatched = _info(
        {"name": "credit", "version": "4", "fallback": False},
        _watching({"version": "3", "monitored": True}),
    )
    assert unwatched["monitored"] is False  # the monitor does not watch the served model
    fallback = {"name": "wine", "version": "fallback", "fallback": True}
    assert _info(fallback, _watching({"monitored": False}))["monitored"] is None
    assert _info(None, _watching({"monitored": False}))["monitored"] is None
    no_model = {"error": {"code": "no_model", "message": "no model loaded"}}  # serving's 503 body
    not_yet = _watching({"monitored": False, "not_monitored": {"reason": "no_alias"}})
    assert _info(no_model, not_yet)["monitored"] is None
    assert "None" not in status._text(_info(no_model, not_yet))


def test_a_stalled_log_and_a_retraining_waiting_for_labels_are_said():
    monitor = _watching(
        {
            "version": "3",
            "monitored": True,
            "last_window": {
                "rows": 2000,
                "new_rows": 0,
                "skipped_windows": 4,
                "evaluated_at": 1_765_000_000.0,
            },
            "retrain_pending": {
                "reason": "DataDriftDetected:builtin",
                "state": "waiting_for_labels",
                "labelled_rows": 120,
                "min_rows": 1000,
            },
        }
    )
    text = status._text(_info({"name": "wine", "version": "3", "fallback": False}, monitor))
    assert "2000 rows (0 new)" in text
    assert "no new rows in the last 4 intervals" in text
    assert (
        "pending DataDriftDetected:builtin: waiting for labels (120 of 1000 labelled rows)" in text
    )


def _quiet_stack(home: Path) -> Stack:
    """A stack of no process: an empty home, ports nothing listens on."""
    return Stack(home, {name: services.free_port() for name in DEFAULT_PORTS})


def test_nothing_running_is_one_clear_line_never_none(tmp_path):
    info = status.report(_quiet_stack(tmp_path), env={})
    assert not info["healthy"] and info["served"] is None and info["monitor"] is None
    assert "nothing is serving or monitoring: start the stack with `modelwatch up`" in info["text"]
    assert "None" not in info["text"]


def test_times_are_local_with_their_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert status.local_time(0) == "1970-01-01 05:30:00 IST"  # an epoch (the monitor's)
        # an ISO time in UTC with nanoseconds (Alertmanager's)
        assert status.local_time("1970-01-01T00:00:00.123456789Z") == "1970-01-01 05:30:00 IST"
    finally:
        monkeypatch.undo()
        time.tzset()


class Served:
    """A Flask app on a real HTTP port, in a thread."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def watched(mlflow_url, tmp_path_factory):
    """A model registered and onboarded, served and judged by a real monitor (built-in
    rules, no Alertmanager), both on HTTP ports the stack's pid files know nothing of."""
    tmp = tmp_path_factory.mktemp("status")
    name = "status-credit"
    mlflow.set_tracking_uri(mlflow_url)  # onboarding logs its run through mlflow's globals
    version = modelkit.register_version(mlflow_url, name, seed=1, alias="production")
    generate(3000, "baseline", seed=5).to_parquet(tmp / "reference.parquet")
    onboard(
        name,
        str(tmp / "reference.parquet"),
        TARGET,
        version,
        chunk_rows=1000,
        client=MlflowClient(mlflow_url),
    )
    store_url = f"sqlite:///{tmp / 'predictions.db'}"
    serving = create_serving(
        {
            "tracking_uri": mlflow_url,
            "model_name": name,
            "store_url": store_url,
            "spill_dir": str(tmp / "spill"),
            "model_cache_dir": str(tmp / "cache"),
            "reload_interval": 60.0,
            "feedback_wait": 0.3,
        }
    )
    state = serving.extensions["modelwatch"]
    assert state.models.ready.wait(120), state.models.last_error
    store = open_store(store_url)
    config = MonitorConfig.from_env(
        tracking_uri=mlflow_url,
        model_name=name,
        store_url=store_url,
        window_rows=1000,
        min_window_rows=200,
        builtin_alerts=True,
        log_to_mlflow=False,
    )
    app = create_app(config, store=store, runner=RecordingRunner(), start=False)
    send_through_serving(serving.test_client(), state, generate(1000, "baseline", seed=9))
    assert app.extensions["modelwatch"].monitor.run_once() is not None
    web, monitor = Served(serving), Served(app)
    yield name, version, web.url, monitor.url
    web.close()
    monitor.close()
    shutdown_app(serving)
    store.close()


def _status_command(home: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    ports = {port_variable(name): str(services.free_port()) for name in DEFAULT_PORTS}
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.cli", "status", *args],
        cwd=ROOT,
        env={**os.environ, "MODELWATCH_HOME": str(home), **ports, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_reads_a_real_monitor_found_through_the_variables(watched, tmp_path):
    name, version, serving_url, monitor_url = watched
    env = {"MODELWATCH_SERVING_URL": serving_url, "MODELWATCH_MONITOR_URL": monitor_url}
    done = _status_command(tmp_path, env)
    text = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"monitor       healthy               {monitor_url} (from MODELWATCH_MONITOR_URL)" in text
    )
    assert f"serving       {name} version {version}" in text
    header = next(line for line in text.splitlines() if line.startswith(f"model {name}"))
    assert f"version {version}  last window " in header and "1000 rows (1000 new)" in header
    assert header.split("last window ")[1][:4].isdigit()  # a date, not an epoch
    for verdict in ("dataset drift share", "live_accuracy", "estimated_accuracy", "integrity"):
        row = next(line for line in text.splitlines() if line.strip().startswith(verdict))
        assert " ok" in row and "ALERT" not in row and "DRIFT" not in row, row  # healthy traffic
    accuracy = next(line for line in text.splitlines() if line.strip().startswith("live_accuracy"))
    assert ">= 0." in accuracy  # its lower bound beside it
    assert "(the monitor's built-in rules)" in text and "None" not in text

    raw = json.loads(_status_command(tmp_path, env, "--json").stdout)
    doc = raw["monitor"]["models"][name]  # the monitor's own document, as it answered
    assert doc["version"] == version and doc["last_window"]["rows"] == 1000
    assert raw["served"]["version"] == version and raw["monitored"] is True
