"""Security of the serving API and the monitor's webhook, against real processes:
bearer tokens (compared in constant time; none 401, wrong 403, right 2xx), no secret in
any log line or answer, body size (413) and row limits (422), and request time limits (the
gunicorn timeouts are set, and clients that stall mid-request cannot hold every worker
thread)."""

from __future__ import annotations

import ast
import base64
import inspect
import logging
import re
import socket
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from modelwatch.monitoring.service.routes import alerts
from modelwatch.serving.routes import admin, feedback

from modelwatch.web.auth import require_token
from tests import services
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_webhook import alert, payload
from tests.reliability.conftest import (
    ADMIN_TOKEN,
    MAX_BODY,
    MAX_ROWS,
    MLFLOW_PASSWORD,
    assert_error_shape,
    assert_mlflow_error_shape,
)
from tests.reliability.test_alert_storm import TOKEN as WEBHOOK_TOKEN
from tests.reliability.test_alert_storm import monitor_over_http
from tests.services import free_port, wait_for
from tests.serving.modelkit import feature_rows

ROWS = feature_rows(2, seed=31)


# -- tokens --------------------------------------------------------------------------------


def _token_comparisons(func) -> tuple[list[str], list[str]]:
    """(calls of hmac.compare_digest, == / != / `in` comparisons) in `func`'s source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    digests, plain = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "hmac.compare_digest":
            digests.append(ast.unparse(node))
        if isinstance(node, ast.Compare) and any(
            isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops
        ):
            plain.append(ast.unparse(node))
    return digests, plain


def test_tokens_are_compared_in_constant_time():
    digests, plain = _token_comparisons(require_token)
    assert len(digests) == 1 and "expected" in digests[0], digests
    # No == (or startswith-style early exit) between the given and the expected token.
    assert not [c for c in plain if re.search(r"\bexpected\b", c)], plain
    # ... and it is the one check of every write path: serving's and the monitor's.
    for view in (admin.reload, feedback.feedback, alerts.receive_alerts):
        assert "require_token(" in inspect.getsource(view), view.__name__


def test_admin_reload_tokens_over_http(server):
    url = f"{server.url}/admin/reload"
    cases = [
        ({}, 401),
        ({"Authorization": ""}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer   "}, 401),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, 401),
        ({"Authorization": f"Token {ADMIN_TOKEN}"}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}, 403),  # a prefix
        ({"Authorization": f"Bearer {ADMIN_TOKEN}x"}, 403),  # an extension
        ({"Authorization": f"Bearer {ADMIN_TOKEN.upper()}"}, 403),
        ({"Authorization": f"Bearer {ADMIN_TOKEN[:8]}\u00e9\u00e9"}, 403),  # not ASCII
        ({"Authorization": f"Bearer {ADMIN_TOKEN} {ADMIN_TOKEN}"}, 403),
    ]
    for headers, status in cases:
        r = requests.post(url, headers=headers, timeout=30)
        err = assert_error_shape(r, headers)
        assert r.status_code == status, (headers, r.status_code, r.text)
        assert err["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        if status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert ADMIN_TOKEN not in r.text and ADMIN_TOKEN[:-1] not in r.text
    for scheme in ("Bearer", "bearer", "BEARER"):
        r = requests.post(url, headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"}, timeout=60)
        assert r.status_code == 200 and r.json()["result"] in ("unchanged", "success")
    # The token guards the admin endpoint only: the API itself needs none.
    assert (
        requests.post(f"{server.url}/predict", json={"records": ROWS}, timeout=30).status_code
        == 200
    )


def test_webhook_tokens_over_http(tmp_path):
    runner = RecordingRunner()
    with monitor_over_http(tmp_path, runner) as (url, app):
        body = payload(alert("DataDriftDetected"))
        for headers, status in [
            ({}, 401),
            ({"Authorization": f"Basic {WEBHOOK_TOKEN}"}, 401),
            ({"Authorization": "Bearer nope"}, 403),
            ({"Authorization": f"Bearer {WEBHOOK_TOKEN[:-1]}"}, 403),
            ({"Authorization": f"Bearer {WEBHOOK_TOKEN} "}, 403),
        ]:
            r = requests.post(f"{url}/alerts", json=body, headers=headers, timeout=10)
            assert r.status_code == status, (headers, r.text)
            assert set(r.json()["error"]) == {"code", "message", "details"}
        assert runner.calls == []
        r = requests.post(
            f"{url}/alerts",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
        )
        assert r.status_code == 202 and r.json()["results"][0]["result"] == "started"
        assert app.extensions["modelwatch"].trigger.wait_idle(10)
        assert len(runner.calls) == 1


def test_webhook_bodies_over_http(tmp_path):
    """The monitor's body limit and JSON errors on a real server: a 12 MB body (with a
    Content-Length, and chunked) is a 413 and JSON nested 100,000 deep a 400, both JSON
    (the deep one was a 500 HTML page); the server answers the next webhook."""
    runner = RecordingRunner()
    big = b'{"alerts": [], "padding": "' + b"x" * 12_000_000 + b'"}'
    mib = 1 << 20

    def chunked():
        yield from (big[i : i + mib] for i in range(0, len(big), mib))

    with monitor_over_http(tmp_path, runner) as (url, app):
        headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
        for body, status, code in [
            (big, 413, "payload_too_large"),
            (chunked(), 413, "payload_too_large"),
            (b"[" * 100_000 + b"]" * 100_000, 400, "bad_payload"),
        ]:
            r = requests.post(f"{url}/alerts", data=body, headers=headers, timeout=30)
            assert r.status_code == status and r.headers["Content-Type"] == "application/json", (
                r.text[:300]
            )
            assert r.json()["error"]["code"] == code
        assert runner.calls == []
        r = requests.post(f"{url}/alerts", json=payload(alert()), headers=headers, timeout=10)
        assert r.status_code == 202 and r.json()["results"][0]["result"] == "started"


# -- secrets in logs and answers -----------------------------------------------------------


def test_no_secret_in_the_server_log_or_any_answer(server):
    """The shared server runs with MODELWATCH_ADMIN_TOKEN and MLFLOW_TRACKING_PASSWORD set,
    debug logging and the access log on. After right and wrong tokens, reloads that call
    the registry with basic auth, and every read endpoint, neither secret (nor the basic
    auth header MLflow's client builds from the password) is in its output."""
    url = server.url
    wrong = "wrong-" + ADMIN_TOKEN[::-1]
    for token in (ADMIN_TOKEN, wrong, ADMIN_TOKEN, None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        requests.post(f"{url}/admin/reload", headers=headers, timeout=60)
    requests.post(
        f"{url}/predict",
        json={"records": ROWS},
        timeout=30,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )  # sent where unused
    answers = [
        requests.get(f"{url}{path}", timeout=30).text
        for path in ("/health", "/ready", "/model", "/metrics", "/openapi.json")
    ]
    time.sleep(1.5)  # a poll of the registry (with the password) by each worker
    log = server.log.read_text(errors="replace")
    assert "GET /api/2.0/mlflow/registered-models/alias" in log, (
        "the workers' registry calls should be in the debug log"
    )
    assert "POST /admin/reload" in log  # the access log is on
    basic = base64.b64encode(f"modelwatch:{MLFLOW_PASSWORD}".encode()).decode()
    for secret in (ADMIN_TOKEN, MLFLOW_PASSWORD, basic, wrong):
        assert secret not in log, f"a secret is in the server's log: {secret[:6]}..."
        for text in answers:
            assert secret not in text


def test_no_webhook_token_in_the_monitor_log(tmp_path, caplog):
    runner = RecordingRunner()
    caplog.set_level(logging.DEBUG)
    with monitor_over_http(tmp_path, runner) as (url, app):
        for token in (WEBHOOK_TOKEN, "x" + WEBHOOK_TOKEN, None):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            requests.post(f"{url}/alerts", json=payload(alert()), headers=headers, timeout=10)
        app.extensions["modelwatch"].trigger.wait_idle(10)
        status = requests.get(f"{url}/status", timeout=10).text
        metrics = requests.get(f"{url}/metrics", timeout=10).text
    assert caplog.records, "nothing was logged: the check would prove nothing"
    for text in (caplog.text, status, metrics):
        assert WEBHOOK_TOKEN not in text


def test_credentials_in_the_tracking_uri_are_masked_in_answers_and_logs(tmp_path, caplog):
    """MLflow's errors name the full request URL, user:password included: with the
    registry down, /ready, /model, /predict and /admin/reload say why, masked; so does the
    monitor's /status (last_error, last_failure, last_retrain) and its log."""
    from modelwatch.serving.app import create_app, shutdown_app

    secret = "uri-secret-8d2f61"
    caplog.set_level(logging.INFO)
    app = create_app(
        {
            "tracking_uri": f"http://modelwatch:{secret}@127.0.0.1:{free_port()}",
            "store_url": f"sqlite:///{tmp_path / 'p.db'}",
            "spill_dir": str(tmp_path / "s"),
            "model_cache_dir": str(tmp_path / "c"),
            "model_name": "no-such-model",
        }
    )
    try:
        models = app.extensions["modelwatch"].models
        wait_for(lambda: models.last_error, 30, "the registry error")
        assert "http://***@127.0.0.1" in models.last_error
        client = app.test_client()
        answers = [
            client.get("/ready"),
            client.get("/model"),
            client.post("/predict", json={"records": ROWS}),
            client.post("/admin/reload"),
        ]
        assert [r.status_code for r in answers] == [503, 503, 503, 503]
        for r in answers:
            assert secret not in r.get_data(as_text=True)
        assert "***@127.0.0.1" in answers[0].get_data(as_text=True)
    finally:
        shutdown_app(app)
    assert caplog.records and secret not in caplog.text

    caplog.clear()
    status = _monitor_status_with_the_registry_down(tmp_path, secret)
    assert (
        "mlflow unavailable" in status["last_error"]
        and "http://***@127.0.0.1" in status["last_error"]
    )
    assert status["last_failure"]["error"] == status["last_error"]
    assert (
        status["last_retrain"]["result"] == "failed"
        and "***@127.0.0.1" in status["last_retrain"]["detail"]
    )
    assert secret not in str(status)
    assert "mlflow unavailable" in caplog.text and secret not in caplog.text


def _monitor_status_with_the_registry_down(tmp_path, secret: str) -> dict:
    """The monitor's /status after a window that could not reach MLflow and a retraining
    that failed naming the URI, both with credentials in the URI and the store URL."""
    from modelwatch.monitoring.service.app import create_app
    from modelwatch.monitoring.service.config import MonitorConfig

    uri = f"http://modelwatch:{secret}@127.0.0.1:{free_port()}"

    def retraining(reason: str) -> str:
        raise RuntimeError(f"mlflow run failed: cannot reach {uri}")

    config = MonitorConfig.from_env(
        tracking_uri=uri,
        store_url=f"postgresql://modelwatch:{secret}@127.0.0.1:{free_port()}/log",
        log_to_mlflow=False,
        webhook_token=None,
        retrain_cooldown_seconds=0,
        retrain_min_rows=0,
    )
    app = create_app(config, runner=retraining, start=False)
    app.extensions["modelwatch"].monitor.run_once()
    client = app.test_client()
    assert client.post("/alerts", json=payload(alert())).status_code == 202
    assert app.extensions["modelwatch"].trigger.wait_idle(10)
    return client.get(f"/status?model={config.model_name}").json


@pytest.mark.slow  # starts `modelwatch monitor`
def test_the_monitor_process_masks_credentials_in_status_and_log(tmp_path):
    """A real `modelwatch monitor`: everything its log holds, MLflow's own lines too, masked."""
    secret = "monitor-secret-41c9"
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": f"http://modelwatch:{secret}@127.0.0.1:{free_port()}",
        "MODELWATCH_STORE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "MODELWATCH_MONITOR_MLFLOW": "0",
        "MODELWATCH_MONITOR_INTERVAL": "1",
    }
    log = tmp_path / "monitor.log"
    argv = [
        str(services.VENV_BIN / "modelwatch"),
        "monitor",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with services.process(argv, log, env=env, cwd=tmp_path) as proc:
        url = f"http://127.0.0.1:{port}"
        services.wait_http(f"{url}/health", 120, proc)
        wait_for(
            lambda: [
                m["last_failure"]
                for m in requests.get(f"{url}/status", timeout=5).json()["models"].values()
            ][0],
            60,
            "a failed window",
            proc,
        )
        status = requests.get(f"{url}/status", timeout=5).text
    assert "***@127.0.0.1" in status and secret not in status
    text = log.read_text()
    assert "mlflow unavailable" in text and "***@127.0.0.1" in text and secret not in text


# -- limits ---------------------------------------------------------------------------------


def test_body_size_is_413_and_rows_over_the_limit_break_the_schema(server):
    """Rows over MODELWATCH_MAX_ROWS break the published schema (maxItems): a 422, and on
    /invocations the 400 MLflow answers for any input error."""
    url = server.url
    session = requests.Session()
    cases = [
        ("/predict", {"records": feature_rows(MAX_ROWS + 1)}, 422, "too_many_rows"),
        (
            "/invocations",
            {"dataframe_records": feature_rows(MAX_ROWS + 1)},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "/invocations",
            {
                "dataframe_split": {
                    "columns": list(ROWS[0]),
                    "data": [list(r.values()) for r in feature_rows(MAX_ROWS + 1)],
                }
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "/invocations",
            {"inputs": {k: [v] * (MAX_ROWS + 1) for k, v in ROWS[0].items()}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "/feedback",
            {"feedback": [{"prediction_id": str(i), "label": 1} for i in range(MAX_ROWS + 1)]},
            422,
            "too_many_rows",
        ),
        ("/predict", {"records": ROWS, "pad": "x" * MAX_BODY}, 413, "payload_too_large"),
        ("/feedback", {"feedback": [], "pad": "x" * MAX_BODY}, 413, "payload_too_large"),
        ("/invocations", {"inputs": ROWS, "pad": "x" * MAX_BODY}, 413, "REQUEST_LIMIT_EXCEEDED"),
    ]
    for path, body, status, code in cases:
        # A new connection each: after a body over the limit that it did not read,
        # gunicorn closes the connection (it cannot say so in the answer's headers).
        r = requests.post(f"{url}{path}", json=body, timeout=30)
        got = (
            assert_mlflow_error_shape(r, path)
            if path == "/invocations"
            else assert_error_shape(r, path)["code"]
        )
        assert (r.status_code, got) == (status, code), (path, r.text[:300])
        assert "rows is more than the limit" in r.text or status == 413
    # CSV rows count too, and exactly the limit passes.
    head = ",".join(ROWS[0])
    line = ",".join(str(v) for v in ROWS[0].values())
    r = session.post(
        f"{url}/invocations",
        data="\n".join([head] + [line] * (MAX_ROWS + 1)),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert r.status_code == 400 and "rows is more than the limit" in r.json()["message"]
    r = session.post(f"{url}/predict", json={"records": feature_rows(MAX_ROWS)}, timeout=30)
    assert r.status_code == 200 and len(r.json()["predictions"]) == MAX_ROWS

    # A body without Content-Length (chunked) is held to the same limit as it streams.
    def chunks():
        yield b'{"records": ['
        for _ in range(MAX_BODY // 1000 + 5):
            yield b'{"age": 1, "pad": "' + b"x" * 1000 + b'"},'
        yield b"{}]}"

    r = requests.post(
        f"{url}/predict", data=chunks(), timeout=30, headers={"Content-Type": "application/json"}
    )
    err = assert_error_shape(r)
    assert r.status_code == 413 and err["code"] == "payload_too_large"
    text = session.get(f"{url}/metrics", timeout=10).text
    assert re.search(r'modelwatch_input_errors_total\{model="[^"]+",reason="too_large"\}', text)
    assert re.search(r'modelwatch_input_errors_total\{model="[^"]+",reason="too_many_rows"\}', text)
    # The server is fine afterwards.
    assert session.post(f"{url}/predict", json={"records": ROWS}, timeout=30).status_code == 200


def test_request_time_limits_are_set(server):
    """gunicorn's own settings, as the running master printed them (debug log)."""
    log = server.log.read_text(errors="replace")
    settings = dict(re.findall(r"^  (\w+): (.*)$", log, flags=re.M))
    assert 0 < int(settings["timeout"]) <= 120  # a stuck worker is replaced
    assert 0 < int(settings["graceful_timeout"]) <= 60
    assert 0 < int(settings["keepalive"]) <= 10  # idle connections are closed
    assert settings["worker_class"] == "gthread"
    assert 0 < int(settings["limit_request_line"]) <= 8190
    assert 0 < int(settings["limit_request_field_size"]) <= 16384


def test_clients_that_stall_mid_request_do_not_hold_the_server(server):
    """As many connections as there are worker threads each send headers and part of a
    body, then stall. Every thread is stuck reading until MODELWATCH_READ_TIMEOUT (2 s
    here) ends it; the server then answers the stalled clients (400) and serves others.
    Without a read timeout they would hold every thread for as long as they like."""
    host, port = server.url.split("//")[1].split(":")
    stalled = []
    for _ in range(2 * 4):  # 2 workers x 4 threads
        s = socket.create_connection((host, int(port)))
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{\"records\": ["
        )
        stalled.append(s)
    partial = socket.create_connection((host, int(port)))
    partial.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    try:
        time.sleep(0.5)
        started = time.monotonic()
        r = requests.post(f"{server.url}/predict", json={"records": ROWS}, timeout=60)
        waited = time.monotonic() - started
        assert r.status_code == 200
        assert waited < 30, f"a fresh request waited {waited:.1f}s"
        for s in stalled + [partial]:
            s.settimeout(30)
            data = s.recv(200)
            assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
    finally:
        for s in stalled + [partial]:
            s.close()


def test_oversized_headers_are_refused_and_the_server_goes_on(server):
    r = requests.get(f"{server.url}/health", headers={"X-Big": "x" * 20000}, timeout=10)
    assert 400 <= r.status_code < 500
    r = requests.get(f"{server.url}/health?" + "a" * 10000, timeout=10)
    assert 400 <= r.status_code < 500
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_many_concurrent_clients_get_answers(server):
    """A burst of 64 concurrent clients on fresh connections: everyone is answered."""

    def one(_):
        return requests.post(
            f"{server.url}/predict", json={"records": ROWS}, timeout=60
        ).status_code

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(one, range(64)))
    assert statuses == [200] * 64
