"""Real gunicorn, two workers: every endpoint over HTTP, exact metric totals across
workers, the alias moved under load, SIGTERM under load."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from modelwatch.log import open_store
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, metric_total, predict
from tests.serving.modelkit import feature_rows

MODEL = "credit-default-serving-test-gunicorn"
TOKEN = "gunicorn-admin-token"


@pytest.fixture(scope="module")
def versions(mlflow_url):
    v1 = modelkit.register_version(mlflow_url, MODEL, seed=1, alias="production")
    v2 = modelkit.register_version(mlflow_url, MODEL, seed=2)
    return v1, v2


@pytest.fixture(scope="module")
def server(mlflow_url, versions, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gunicorn")
    env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MODELWATCH_MODEL_NAME": MODEL,
        "MODELWATCH_ADMIN_TOKEN": TOKEN,
    }
    with gunicorn(tmp, env, workers=2, ready_version=versions[0]) as srv:
        srv.tmp = tmp
        yield srv


def test_every_endpoint_over_http(server, versions):
    url = server.url
    assert requests.get(f"{url}/health").json() == {"status": "ok"}
    assert requests.get(f"{url}/ready").status_code == 200
    assert requests.get(f"{url}/model").json()["version"] == versions[0]
    assert "/predict" in requests.get(f"{url}/openapi.json").json()["paths"]
    r = predict(url, feature_rows(3))
    assert r.status_code == 200 and r.json()["model"]["version"] == versions[0]
    ids = r.json()["prediction_ids"]
    inv = requests.post(f"{url}/invocations", json={"dataframe_records": feature_rows(3)})
    assert inv.json() == {"predictions": r.json()["predictions"]}
    fb = requests.post(
        f"{url}/feedback", json={"feedback": [{"prediction_id": i, "label": 1} for i in ids]}
    )
    assert fb.json()["accepted"] == 3 and fb.json()["unknown"] == []
    assert requests.post(f"{url}/admin/reload").status_code == 401
    assert (
        requests.post(
            f"{url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 200
    )
    for response, status in [
        (requests.get(f"{url}/nope"), 404),
        (requests.put(f"{url}/predict"), 405),
        (
            requests.post(f"{url}/predict", data="{", headers={"Content-Type": "application/json"}),
            400,
        ),
        (requests.post(f"{url}/predict", data="x"), 415),
        (requests.post(f"{url}/predict", json={"records": [{"age": 1}]}), 422),
    ]:
        assert response.status_code == status
        assert set(response.json()["error"]) == {"code", "message", "details"}
    metrics = requests.get(f"{url}/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")


def test_metric_totals_are_exact_across_workers(server):
    url = server.url
    before = requests.get(f"{url}/metrics").text
    rows = feature_rows(4, seed=5)
    bad = [{"age": "x"}]

    def send(i: int) -> int:
        return predict(url, bad if i % 10 == 0 else rows).status_code  # new connection each

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, range(100)))
    assert statuses.count(200) == 90 and statuses.count(422) == 10
    after = requests.get(f"{url}/metrics").text

    def delta(name, **labels):
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    assert (
        delta("modelwatch_http_requests_total", endpoint="/predict", method="POST", status="200")
        == 90
    )
    assert delta("modelwatch_http_requests_total", endpoint="/predict", status="422") == 10
    assert delta("modelwatch_http_request_duration_seconds_count", endpoint="/predict") == 100
    assert delta("modelwatch_predictions_total") == 360
    assert delta("modelwatch_prediction_score_count") == 360
    assert delta("modelwatch_input_errors_total", reason="missing_column") == 10
    assert metric_total(after, "modelwatch_http_requests_in_flight") == 1  # this /metrics
    # Both workers answered: each writes its own value files.
    pids = {
        f.split("_")[-1].split(".")[0]
        for f in os.listdir(server.tmp / "prometheus")
        if f.startswith("counter_")
    }
    assert len(pids) >= 2


def test_alias_moved_under_load_zero_failures_and_answers_switch(server, versions, mlflow_url):
    v1, v2 = versions
    stop = threading.Event()
    seen: list[str] = []
    failures: list[str] = []
    rows = feature_rows(2, seed=8)

    def client():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(f"{server.url}/predict", json={"records": rows}, timeout=10)
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                else:
                    seen.append(r.json()["model"]["version"])
            except requests.RequestException as exc:
                failures.append(repr(exc))
            time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        modelkit.set_alias(mlflow_url, MODEL, "production", v2)
        server.wait_workers(v2, n=2, timeout=60)
        time.sleep(0.3)  # requests already in flight at the swap may still answer v1
        mark = len(seen)
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert seen[0] == v1 and v1 in seen[:mark]
    assert set(seen[mark:]) == {v2} and len(seen) - mark > 10
    assert requests.get(f"{server.url}/model").json()["version"] == v2
    text = requests.get(f"{server.url}/metrics").text
    assert metric_total(text, "modelwatch_model_info", version=v2) == 1
    assert metric_total(text, "modelwatch_model_info", version=v1) == 0


def test_sigterm_under_load_stores_every_answered_prediction(server):
    answered: list[str] = []
    stop = threading.Event()
    rows = feature_rows(5, seed=9)

    def client():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(f"{server.url}/predict", json={"records": rows}, timeout=10)
            except requests.RequestException:
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                answered.extend(r.json()["prediction_ids"])

    idle = requests.Session()  # an idle keep-alive client must not hold the shutdown
    assert idle.get(f"{server.url}/health").ok
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)  # gunicorn's master: graceful shutdown
    server.proc.wait(60)
    stopped_in = time.monotonic() - start
    stop.set()
    for t in threads:
        t.join()
    assert server.proc.returncode == 0
    assert stopped_in < 15, f"graceful shutdown took {stopped_in:.1f}s"
    assert len(answered) > 100
    store = open_store(f"sqlite:///{server.tmp / 'predictions.db'}")
    stored = store.known_ids(answered)
    store.close()
    assert len(stored) == len(set(answered)), f"{len(set(answered)) - len(stored)} lost"
