"""An alert storm on the monitor's webhook, over real HTTP: the monitor app (as
`modelwatch monitor` serves it: werkzeug's threaded server) with a webhook token, a
real SQLite prediction store, and a recording stand-in for the retraining subprocess.

tests/monitor_service covers the trigger's rules in process; here the storm arrives as
Alertmanager sends it: 100 identical webhook calls at once on separate connections.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from werkzeug.serving import make_server

from modelwatch.log import open_store
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_webhook import alert, payload
from tests.serving.conftest import metric_total

TOKEN = "webhook-7c1e5a9f3b2d4608-reliability"


@contextmanager
def monitor_over_http(tmp_path, runner, **config):
    store = open_store(f"sqlite:///{tmp_path / 'predictions.db'}")
    settings = {
        "tracking_uri": "http://127.0.0.1:1",
        "log_to_mlflow": False,
        "webhook_token": TOKEN,
        "retrain_cooldown_seconds": 600,
        "retrain_min_rows": 0,
        **config,
    }  # an empty log: the labels' wait is tested on its own
    app = create_app(MonitorConfig.from_env(**settings), store=store, runner=runner, start=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        runner.release()
        server.shutdown()
        thread.join(10)
        app.extensions["modelwatch"].trigger.wait_idle(10)
        store.close()


COOLDOWN = 2.0


def post_alerts(url: str, body: dict, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{url}/alerts", json=body, headers=headers, timeout=10)


def results(response: requests.Response) -> list[str]:
    assert response.status_code == 202, response.text
    return [r["result"] for r in response.json()["results"]]


@pytest.fixture
def runner():
    return RecordingRunner(hold=True)


def test_storm_of_100_identical_webhooks_then_two_new_alerts_make_two_runs(tmp_path, runner):
    with monitor_over_http(
        tmp_path, runner, retrain_cooldown_seconds=COOLDOWN, interval_seconds=0.1
    ) as (url, app):
        trigger = app.extensions["modelwatch"].trigger
        body = payload(alert("DataDriftDetected", fingerprint="d1f7"))
        barrier = threading.Barrier(25)

        def send(i: int) -> tuple[list[str], float]:
            if i < 25:
                barrier.wait(10)  # the first 25 leave at the same instant
            started = time.perf_counter()
            r = post_alerts(url, body)
            return results(r), time.perf_counter() - started

        with ThreadPoolExecutor(25) as pool:
            answers = list(pool.map(send, range(100)))
        runner.wait_started()
        flat = [r for rs, _ in answers for r in rs]
        assert flat.count("started") == 1 and flat.count("duplicate") == 99, flat
        assert max(t for _, t in answers) < 2.0, "the webhook waited for the retraining"
        assert runner.calls == ["DataDriftDetected:d1f7"]

        # While it runs, two different alerts arrive: exactly one more run is queued.
        r1 = post_alerts(url, payload(alert("ModelAccuracyDegraded", fingerprint="a1")))
        r2 = post_alerts(url, payload(alert("ConceptDriftDetected", fingerprint="c1")))
        assert results(r1) == ["queued"] and results(r2) == ["duplicate"]
        # ... and the storm of the first goes on: still nothing new
        assert results(post_alerts(url, body)) == ["duplicate"]
        time.sleep(0.2)
        assert len(runner.calls) == 1

        # The first run ends rejected (the same version still serves, so the queued alert
        # still applies: a promotion would drop it). The cooldown holds after a rejection
        # as after a promotion: the queued one waits for it (run at once, alternating
        # alerts made a rejected version every 10 s), then starts and ends.
        runner.result = "rejected"
        runner.release()
        assert trigger.wait_idle(10)
        finished = time.monotonic()
        assert trigger.pending["state"] == "cooling_down" and len(runner.calls) == 1
        assert results(post_alerts(url, body)) == ["duplicate"]
        runner.wait_started(timeout=COOLDOWN + 30)
        assert time.monotonic() - finished >= COOLDOWN
        assert trigger.wait_idle(10)
        assert runner.calls == ["DataDriftDetected:d1f7", "ModelAccuracyDegraded:a1"]
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert metric_total(metrics, "modelwatch_retrains_total", result="rejected") == 2
        assert metric_total(metrics, "modelwatch_retrain_in_progress") == 0

        # After the runs, within the cooldown: every alert is dropped.
        again = post_alerts(
            url,
            payload(
                alert("DataDriftDetected", fingerprint="d1f7"),
                alert("ConceptDriftDetected", fingerprint="c1"),
            ),
        )
        assert results(again) == ["cooling_down", "cooling_down"]
        time.sleep(0.2)
        assert len(runner.calls) == 2


def test_storm_with_wrong_and_missing_tokens_starts_nothing(tmp_path, runner):
    """Half the storm has no token, half a wrong one: all refused, no run, and the
    answers never echo the token that was sent."""
    with monitor_over_http(tmp_path, runner) as (url, app):
        body = payload(alert("DataDriftDetected"))
        wrong = TOKEN[:-1] + "x"

        def send(i: int) -> requests.Response:
            return post_alerts(url, body, token=None if i % 2 else wrong)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(send, range(60)))
        assert sorted({r.status_code for r in answers}) == [401, 403]
        for r in answers:
            assert set(r.json()["error"]) == {"code", "message", "details"}
            assert wrong not in r.text and TOKEN not in r.text
        time.sleep(0.2)
        assert runner.calls == []
        assert app.extensions["modelwatch"].trigger.running is None
