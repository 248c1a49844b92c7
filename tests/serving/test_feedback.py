"""POST /feedback checks what it stores: a classifier's labels are its classes, a
regressor's finite numbers, text no store can hold is a 422 naming its field (SQLite and
PostgreSQL alike, and on /predict and /invocations too), a bad item stores nothing of its
batch, and a store outage's answer names no host. The wait for ids still being logged is
one thread per worker, under real gunicorn."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from modelwatch.training.simulator import FEATURES, TARGET, generate

from tests import services
from tests.serving.conftest import gunicorn, metric_total
from tests.serving.modelkit import feature_rows, register_pipeline
from tests.serving.pgcluster import why_unavailable

BAD_TEXT = {"nul": "a\u0000b", "surrogate": "\ud800"}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    return request.getfixturevalue("cluster").url


@pytest.fixture
def client(make_app, registered, store_url):
    return make_app(
        tracking_uri=registered.url, model_name=registered.name, store_url=store_url
    ).test_client()


def stored_labels(client) -> int:
    return client.application.extensions["modelwatch"].store.count("feedback")


def predicted_ids(client, n: int) -> list[str]:
    r = client.post("/predict", json={"records": feature_rows(n)})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["prediction_ids"]


def post_raw(client, path: str, body) -> object:
    # json.dumps writes lone surrogates and NUL as JSON escapes, as a client would.
    return client.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_classifiers_labels_must_be_its_classes(client):
    ids = predicted_ids(client, 9)
    before = stored_labels(client)
    bad = ["banana", 7, 0.5, float("inf"), "x" * 1_000_000, "1.5", -1]
    items = [{"prediction_id": ids[0], "label": 1}] + [
        {"prediction_id": ids[i + 1], "label": v} for i, v in enumerate(bad)
    ]
    r = client.post(
        "/feedback",
        data=json.dumps({"feedback": items}, allow_nan=True),
        content_type="application/json",
    )
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    error = r.get_json()["error"]
    assert error["code"] == "invalid_label"
    assert error["details"]["allowed"] == [0, 1] and error["details"]["field"] == "label"
    assert error["details"]["items"] == list(range(1, len(bad) + 1))
    assert "0, 1" in error["message"] and len(r.get_data()) < 2000  # no 1 MB echo
    assert stored_labels(client) == before  # nothing of the batch, not even item 0
    # The class itself or its canonical text: 1, 1.0, True and "1" are one class.
    good = [1, 1.0, True, "1", 0, 0.0, False, "0"]
    r = client.post(
        "/feedback",
        json={"feedback": [{"prediction_id": ids[i], "label": v} for i, v in enumerate(good)]},
    )
    assert r.status_code == 200 and r.get_json()["accepted"] == len(good), r.get_json()
    window = client.application.extensions["modelwatch"].store.read_window()
    labels = window.set_index("prediction_id").loc[ids[: len(good)], "label"].tolist()
    assert labels == [1, 1, 1, 1, 0, 0, 0, 0]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert metric_total(metrics, "modelwatch_input_errors_total", reason="invalid_label") == 1


@pytest.mark.parametrize("field", ["prediction_id", "label"])
@pytest.mark.parametrize("text", list(BAD_TEXT))
def test_text_no_store_holds_is_a_422_naming_its_field(client, field, text):
    ids = predicted_ids(client, 2)
    before = stored_labels(client)
    items = [{"prediction_id": ids[0], "label": 1}, {"prediction_id": ids[1], "label": 0}]
    items[1][field] = BAD_TEXT[text] if field == "label" else ids[1] + BAD_TEXT[text]
    r = post_raw(client, "/feedback", {"feedback": items})
    assert r.status_code == 422, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert (error["code"], error["details"]["field"], error["details"]["items"]) == (
        "unstorable_text",
        field,
        [1],
    )
    assert field in error["message"]
    assert stored_labels(client) == before


@pytest.mark.parametrize("text", list(BAD_TEXT))
def test_text_no_store_holds_in_a_feature_is_a_422_before_it_is_logged(client, text):
    state = client.application.extensions["modelwatch"]
    assert state.log.flush(10)
    logged = state.store.count()
    rows = feature_rows(3)
    rows[2]["region"] = "north" + BAD_TEXT[text]
    r = post_raw(client, "/predict", {"records": rows})
    assert r.status_code == 422, r.get_data(as_text=True)
    (problem,) = r.get_json()["error"]["details"]["columns"]
    assert problem == {"column": "region", "problem": "unstorable_text", "rows": [2], "count": 1}
    r = post_raw(client, "/invocations", {"dataframe_records": rows})
    assert r.status_code == 400 and "region" in r.get_json()["message"], r.get_json()
    # A string the store holds is logged as sent, and nothing was lost on the way.
    rows[2]["region"] = "nörth\u2603"
    assert post_raw(client, "/predict", {"records": rows}).status_code == 200
    assert state.log.flush(10)
    assert state.store.count() == logged + 3
    assert "nörth\u2603" in state.store.read_window()["region"].tolist()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert metric_total(metrics, "modelwatch_prediction_log_records_total", outcome="lost") == 0


@pytest.fixture
def regressor(registered):
    """A regression model of the simulator's features, registered as `<name>-regressor`."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    df = generate(500, seed=5)
    X, y = df[FEATURES], df["income"] / 1000.0 + df[TARGET]
    pre = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), X.select_dtypes(object).columns.tolist()),
        remainder="passthrough",
    )
    pipe = make_pipeline(pre, Ridge()).fit(X, y)
    name = f"{registered.name}-regressor"
    register_pipeline(registered.url, name, pipe, X, pipe.predict(X), alias="production")
    return name


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_regressors_labels_must_be_finite_numbers(make_app, registered, regressor, store_url):
    app = make_app(tracking_uri=registered.url, model_name=regressor, store_url=store_url)
    client = app.test_client()
    assert app.extensions["modelwatch"].models.current.task == "regression"
    r = client.post("/predict", json={"records": feature_rows(8)})
    assert r.status_code == 200, r.get_data(as_text=True)
    ids = r.get_json()["prediction_ids"]
    bad = [True, "banana", float("inf"), "NaN", "1_000", " 3"]
    r = client.post(
        "/feedback",
        data=json.dumps(
            {"feedback": [{"prediction_id": i, "label": v} for i, v in zip(ids, bad)]},
            allow_nan=True,
        ),
        content_type="application/json",
    )
    assert r.status_code == 422, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert error["details"]["allowed"] == "a finite number"
    assert error["details"]["items"] == list(range(len(bad)))
    assert stored_labels(client) == 0
    good = [3, 2.5, "41.25", -1e-3]
    r = client.post(
        "/feedback",
        json={"feedback": [{"prediction_id": i, "label": v} for i, v in zip(ids, good)]},
    )
    assert r.status_code == 200 and r.get_json()["accepted"] == 4, r.get_json()
    labels = (
        app.extensions["modelwatch"]
        .store.read_window()
        .set_index("prediction_id")
        .loc[ids[:4], "label"]
        .tolist()
    )
    assert labels == [3.0, 2.5, 41.25, -1e-3]  # numbers again, ready to train on


def test_a_store_outage_answers_503_naming_no_host(make_app, registered):
    port = services.free_port()  # nothing listens there
    url = f"postgresql://modelwatch:pw-9c1e@127.0.0.1:{port}/predictions"
    client = make_app(
        tracking_uri=registered.url,
        model_name=registered.name,
        store_url=url,
        store_retry_interval=0.2,
    ).test_client()
    ids = predicted_ids(client, 1)
    r = client.post("/feedback", json={"feedback": [{"prediction_id": ids[0], "label": 1}]})
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    text = r.get_data(as_text=True)
    assert r.get_json()["error"]["code"] == "store_unavailable"
    for secret in (str(port), "127.0.0.1", "pw-9c1e", "modelwatch:"):
        assert secret not in text, text


# -- the wait for ids still being logged: one thread per worker ----------------------------


@pytest.mark.slow
def test_one_request_thread_of_a_worker_waits_for_unknown_ids(registered, tmp_path):
    """One worker of 4 threads, FEEDBACK_WAIT 20 s: of 6 requests with unknown ids sent at
    once, one waits the budget and the others answer long before it, listing them unknown,
    while /predict answers before the waiter is done (a thread per waiting request held all
    4 threads for the budget); a label sent right after its prediction is still accepted.
    Orderings, not timings: a busy machine slows every answer, not the waiter's budget."""
    budget = 20.0
    env = {
        "MLFLOW_TRACKING_URI": registered.url,
        "MODELWATCH_MODEL_NAME": registered.name,
        "MODELWATCH_FEEDBACK_WAIT": str(budget),
        "MODELWATCH_THREADS": "4",
    }
    with gunicorn(tmp_path, env, workers=1, ready_version=registered.versions[0]) as srv:
        started = time.monotonic()

        def unknown(i: int) -> tuple[float, dict]:
            r = requests.post(
                f"{srv.url}/feedback",
                timeout=120,
                json={"feedback": [{"prediction_id": f"no-such-id-{i}", "label": 1}]},
            )
            assert r.status_code == 200, r.text
            return time.monotonic() - started, r.json()

        with ThreadPoolExecutor(6) as pool:
            flood = [pool.submit(unknown, i) for i in range(6)]
            r = requests.post(f"{srv.url}/predict", json={"records": feature_rows(1)}, timeout=120)
            predicted_at = time.monotonic() - started
            results = [f.result() for f in flood]
        seconds = sorted(s for s, _ in results)
        assert r.status_code == 200 and predicted_at < seconds[-1], (predicted_at, seconds)
        assert all(
            body["unknown"] == [f"no-such-id-{i}"] and body["accepted"] == 0
            for i, (_, body) in enumerate(results)
        )
        assert seconds[-1] >= budget - 0.1, seconds  # the one waiter used the budget
        assert seconds[-2] < seconds[-1] - budget / 2, seconds  # nobody else waited for it
        ids = requests.post(
            f"{srv.url}/predict", json={"records": feature_rows(2)}, timeout=30
        ).json()["prediction_ids"]
        fb = requests.post(
            f"{srv.url}/feedback",
            timeout=30,
            json={"feedback": [{"prediction_id": i, "label": 1} for i in ids]},
        )
        assert fb.json()["accepted"] == 2 and fb.json()["unknown"] == []
