"""The serving app in process (Flask test client) against a real MLflow registry."""

from __future__ import annotations

import json

import mlflow.sklearn
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.version import VERSION
from modelwatch.serving.validation import validate
from modelwatch.training.simulator import FEATURES

from tests.serving.conftest import metric_total
from tests.serving.modelkit import feature_rows

pytestmark = pytest.mark.usefixtures("registered")


@pytest.fixture
def app(make_app, registered):
    return make_app(tracking_uri=registered.url, model_name=registered.name, admin_token="s3cret")


@pytest.fixture
def client(app):
    return app.test_client()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def mlflow_error_of(response, status: int) -> dict:
    """An error of the MLflow scoring surface: MLflow's error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert {"error_code", "message"} <= set(body), body
    assert set(body) <= {"error_code", "message", "sqlstate", "error_class", "stack_trace"}
    return body


def test_predict_answers_each_record_and_logs_it(app, client, registered):
    rows = feature_rows(4)
    r = client.post("/predict", json={"records": rows})
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) == {"predictions", "probabilities", "prediction_ids", "model"}
    assert len(body["predictions"]) == len(body["probabilities"]) == 4
    assert set(body["predictions"]) <= {0, 1}
    assert all(0.0 <= p <= 1.0 for p in body["probabilities"])
    assert body["model"] == {
        "name": registered.name,
        "version": registered.versions[0],
        "alias": "production",
    }
    assert len(set(body["prediction_ids"])) == 4
    state = app.extensions["modelwatch"]
    assert state.log.flush(10)
    df = state.store.read_window()
    assert list(df["prediction_id"].sort_values()) == sorted(body["prediction_ids"])
    logged = df.set_index("prediction_id").loc[body["prediction_ids"]]
    assert logged["prediction"].tolist() == body["predictions"]
    assert logged["probability"].tolist() == pytest.approx(body["probabilities"])
    assert (logged["model_version"] == registered.versions[0]).all()
    assert (logged["model_alias"] == "production").all()
    assert (logged["latency_ms"] > 0).all()
    assert logged["age"].tolist() == [r["age"] for r in rows]
    assert logged["region"].tolist() == [r["region"] for r in rows]


def test_invocations_speaks_every_mlflow_scoring_format(client):
    rows = feature_rows(3, seed=11)
    expected = client.post("/predict", json={"records": rows}).get_json()["predictions"]
    df = pd.DataFrame(rows)
    split = json.loads(df.to_json(orient="split", index=False))
    bodies = [
        {"dataframe_split": split},
        {"dataframe_records": rows},
        {"instances": rows},
        {"inputs": rows},
        {"inputs": {c: df[c].tolist() for c in df.columns}},
    ]
    for body in bodies:
        r = client.post("/invocations", json=body)
        assert r.status_code == 200, (body, r.get_json())
        assert r.get_json() == {"predictions": expected}
    csv = df.to_csv(index=False)
    r = client.post("/invocations", data=csv, content_type="text/csv")
    assert r.get_json() == {"predictions": expected}
    one = client.post("/invocations", json={"inputs": rows[0]})
    assert one.get_json() == {"predictions": expected[:1]}


def test_unknown_columns_are_ignored_and_named_nulls_are_imputed(client):
    rows = feature_rows(2)
    rows[0]["favourite_colour"] = "teal"
    rows[1]["income"] = None
    body = client.post("/predict", json={"records": rows}).get_json()
    assert len(body["predictions"]) == 2
    assert body["warnings"][0]["columns"] == ["favourite_colour"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert metric_total(metrics, "modelwatch_input_errors_total", reason="unknown_column") == 1
    assert metric_total(metrics, "modelwatch_input_errors_total", reason="null") == 1


def test_signature_violations_name_each_column(client):
    rows = feature_rows(2)
    rows[0]["credit_score"] = "excellent"
    del rows[0]["age"], rows[1]["age"]
    rows[1]["income"] = 1e400  # parses as inf
    err = error_of(
        client.post(
            "/predict",
            data=json.dumps({"records": rows}).replace("1e400", "Infinity"),
            content_type="application/json",
        ),
        422,
    )
    assert err["code"] == "signature_violation"
    found = {p["column"]: p["problem"] for p in err["details"]["columns"]}
    assert found == {"age": "missing", "credit_score": "wrong_type", "income": "not_finite"}
    err = mlflow_error_of(client.post("/invocations", json={"dataframe_records": rows}), 400)
    assert err["error_code"] == "INVALID_PARAMETER_VALUE"
    assert all(name in err["message"] for name in ("age", "credit_score", "income"))


def test_client_errors_have_their_status_and_json_shape(make_app, registered):
    app = make_app(
        tracking_uri=registered.url, model_name=registered.name, max_body_bytes=20_000, max_rows=50
    )
    c = app.test_client()
    assert (
        error_of(c.post("/predict", data="{not json", content_type="application/json"), 400)["code"]
        == "malformed_json"
    )
    assert error_of(c.post("/predict", json={"rows": []}), 400)["code"] == "bad_request"
    assert error_of(c.post("/predict", json={"records": {"age": 1}}), 400)["code"] == "bad_request"
    assert error_of(c.post("/predict", json={"records": [1, 2]}), 400)["code"] == "bad_request"
    assert error_of(c.post("/predict", json={"records": []}), 400)["code"] == "bad_request"
    assert error_of(c.post("/predict", json=[1]), 400)["code"] == "bad_request"
    assert mlflow_error_of(c.post("/invocations", json={"inputs": [], "instances": []}), 400)
    assert (
        mlflow_error_of(
            c.post("/invocations", json={"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}),
            400,
        )["error_code"]
        == "BAD_REQUEST"
    )
    assert (
        mlflow_error_of(c.post("/invocations", data="a,b\n1", content_type="text/csv"), 400)[
            "error_code"
        ]
        == "INVALID_PARAMETER_VALUE"
    )
    assert (
        error_of(c.post("/predict", data="x", content_type="text/plain"), 415)["code"]
        == "unsupported_media_type"
    )
    r = c.post("/invocations", data="x", content_type="text/plain")
    assert r.status_code == 415 and r.mimetype == "text/plain"  # as MLflow answers it
    assert error_of(c.post("/feedback", data="x"), 415)
    err = error_of(c.post("/predict", json={"records": feature_rows(51)}), 422)
    assert err["code"] == "too_many_rows" and err["details"]["max_rows"] == 50
    big = {"records": feature_rows(40), "padding": "x" * 20_000}
    assert error_of(c.post("/predict", json=big), 413)["code"] == "payload_too_large"
    assert error_of(c.get("/nowhere"), 404)["code"] == "not_found"
    err = error_of(c.get("/predict"), 405)
    assert err["code"] == "method_not_allowed" and "POST" in err["details"]["allowed_methods"]
    metrics = c.get("/metrics").get_data(as_text=True)
    assert metric_total(metrics, "modelwatch_input_errors_total", reason="malformed_json") == 1
    assert metric_total(metrics, "modelwatch_input_errors_total", reason="too_many_rows") == 1
    assert metric_total(metrics, "modelwatch_input_errors_total", reason="too_large") == 1
    assert (
        metric_total(metrics, "modelwatch_input_errors_total", reason="unsupported_media_type") == 3
    )
    assert (
        metric_total(metrics, "modelwatch_http_requests_total", endpoint="unmatched", status="404")
        == 1
    )
    assert (
        metric_total(metrics, "modelwatch_http_requests_total", endpoint="unmatched", status="405")
        == 1
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.dictionaries(
        st.sampled_from(
            [
                "records",
                "dataframe_split",
                "dataframe_records",
                "instances",
                "inputs",
                "feedback",
                "x",
            ]
        ),
        json_values,
        max_size=2,
    ),
    path=st.sampled_from(["/predict", "/invocations", "/feedback"]),
)
def test_nothing_a_client_sends_makes_a_500(client, body, path):
    raw = json.dumps(body, allow_nan=True)
    r = client.post(path, data=raw, content_type="application/json")
    assert r.status_code < 500 or r.status_code == 503, (raw, r.get_json())
    if r.status_code >= 400:
        (mlflow_error_of if path == "/invocations" else error_of)(r, r.status_code)


def test_feedback_is_idempotent_and_lists_unknown_ids(app, client):
    ids = client.post("/predict", json={"records": feature_rows(3)}).get_json()["prediction_ids"]
    # Immediately: the predictions may still be in the writer's queue.
    r = client.post(
        "/feedback",
        json={
            "feedback": [
                {"prediction_id": ids[0], "label": 1},
                {"prediction_id": ids[1], "label": 0},
                {"prediction_id": "no-such-id", "label": 1},
            ]
        },
    )
    assert r.status_code == 200
    assert r.get_json() == {
        "accepted": 2,
        "stored": 2,
        "updated": 0,
        "unchanged": 0,
        "unknown": ["no-such-id"],
    }
    again = client.post(
        "/feedback",
        json={
            "feedback": [
                {"prediction_id": ids[0], "label": 1},
                {"prediction_id": ids[1], "label": 1},
            ]
        },
    )
    assert again.get_json() == {
        "accepted": 2,
        "stored": 0,
        "updated": 1,
        "unchanged": 1,
        "unknown": [],
    }
    store = app.extensions["modelwatch"].store
    assert store.count("feedback") == 2
    labels = store.read_window().set_index("prediction_id")["label"]
    assert labels[ids[0]] == 1 and labels[ids[1]] == 1 and pd.isna(labels[ids[2]])
    assert error_of(client.post("/feedback", json={"feedback": [{"label": 1}]}), 400)
    assert error_of(
        client.post("/feedback", json={"feedback": [{"prediction_id": ids[0], "label": None}]}), 400
    )


def test_ops_endpoints(client, registered):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert (
        ready.status_code == 200 and ready.get_json()["model"]["version"] == registered.versions[0]
    )
    assert client.get("/ping").status_code == 200  # MLflow's readiness probe
    assert client.get("/version").get_data(as_text=True) == VERSION  # as MLflow answers
    version = client.get("/model").get_json()
    assert version["name"] == registered.name and version["source"] == "registry"
    assert version["fallback"] is False and version["flavor"] == "sklearn"
    assert version["run_id"] and version["loaded_at"]
    # the registry's model (as MLflow saved it) is served compiled
    assert (version["engine"], version["engine_note"]) == ("compiled", "")
    client.post("/predict", json={"records": feature_rows(5)})
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        metric_total(text, "modelwatch_predictions_total", model_version=registered.versions[0])
        == 5
    )
    assert metric_total(text, "modelwatch_prediction_score_count") == 5
    assert metric_total(text, "modelwatch_model_predict_duration_seconds_count") == 1
    assert (
        metric_total(
            text,
            "modelwatch_model_info",
            model=registered.name,
            version=registered.versions[0],
            alias="production",
        )
        == 1
    )
    assert metric_total(text, "modelwatch_fallback_active") == 0
    assert metric_total(text, "modelwatch_model_reloads_total", result="success") == 1
    assert (
        metric_total(text, "modelwatch_http_request_duration_seconds_count", endpoint="/predict")
        == 1
    )
    assert "modelwatch_http_requests_in_flight" in text


def test_openapi_documents_every_endpoint_with_schemas(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/predict",
        "/invocations",
        "/feedback",
        "/health",
        "/ready",
        "/ping",
        "/version",
        "/model",
        "/metrics",
        "/openapi.json",
        "/admin/reload",
    }
    record = doc["components"]["schemas"]["Record"]
    assert set(record["required"]) == set(FEATURES)
    assert record["properties"]["age"]["type"] == ["number", "null"]  # null: imputed
    assert record["properties"]["region"]["type"] == ["string", "null"]
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert "200" in op["responses"], path


def test_admin_reload_needs_the_bearer_token(client):
    assert error_of(client.post("/admin/reload"), 401)["code"] == "unauthorized"
    assert (
        error_of(client.post("/admin/reload", headers={"Authorization": "Bearer nope"}), 403)[
            "code"
        ]
        == "forbidden"
    )
    r = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.get_json()["result"] == "unchanged"


def test_feedback_needs_its_bearer_token_once_set(make_app, registered):
    client = make_app(
        tracking_uri=registered.url, model_name=registered.name, feedback_token="fb-token"
    ).test_client()
    ids = client.post("/predict", json={"records": feature_rows(1)}).get_json()["prediction_ids"]
    body = {"feedback": [{"prediction_id": ids[0], "label": 1}]}
    missing = client.post("/feedback", json=body)
    assert error_of(missing, 401)["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(
        client.post("/feedback", json=body, headers={"Authorization": "Bearer s3cret"}), 403
    )
    store = client.application.extensions["modelwatch"].store
    assert store.count("feedback") == 0  # refused before anything is stored
    r = client.post("/feedback", json=body, headers={"Authorization": "Bearer fb-token"})
    assert r.status_code == 200 and r.get_json()["stored"] == 1
    # /openapi.json says so: schemathesis holds the server to it.
    doc = client.get("/openapi.json").get_json()
    operation = doc["paths"]["/feedback"]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert {"401", "403", "422"} <= set(operation["responses"])
    item = doc["components"]["schemas"]["FeedbackRequest"]["properties"]["feedback"]["items"]
    assert item["properties"]["label"]["enum"] == [0, 1, "0", "1", False, True]


def test_no_model_is_a_clear_503_and_the_fallback_answers_when_configured(make_app, tmp_path):
    dead = "http://127.0.0.1:9"  # nothing listens: the registry is down
    bare = make_app(
        wait=False,
        tracking_uri=dead,
        model_name="nothing-here",
        model_cache_dir=str(tmp_path / "c1"),
    )
    c = bare.test_client()
    err = error_of(c.post("/predict", json={"records": feature_rows(1)}), 503)
    assert err["code"] == "no_model" and "nothing-here" in err["message"]
    assert error_of(c.get("/ready"), 503)
    rules = make_app(
        tracking_uri=dead,
        model_name="nothing-here",
        fallback="default",
        model_cache_dir=str(tmp_path / "c2"),
    )
    c = rules.test_client()
    rows = feature_rows(2)
    rows[0].update(debt_to_income=0.6, credit_score=700.0)
    rows[1].update(debt_to_income=0.1, credit_score=760.0, employment_years=9.0)
    body = c.post("/predict", json={"records": rows}).get_json()
    assert body["fallback"] is True and body["predictions"] == [1, 0]
    assert body["model"]["version"] == "fallback"
    assert c.get("/ready").status_code == 200
    assert c.get("/model").get_json()["fallback"] is True
    text = c.get("/metrics").get_data(as_text=True)
    assert metric_total(text, "modelwatch_fallback_active") == 1
    inv = c.post("/invocations", json={"dataframe_records": rows}).get_json()
    assert inv == {"predictions": [1, 0], "fallback": True}


def test_shadow_challenger_scores_off_the_request_path(make_app, registered):
    from tests.serving.modelkit import set_alias

    set_alias(registered.url, registered.name, "challenger", registered.versions[1])
    app = make_app(tracking_uri=registered.url, model_name=registered.name, shadow=True)
    state = app.extensions["modelwatch"]
    c = app.test_client()
    for _ in range(50):
        if state.models.challenger is not None:
            break
        c.get("/ready")
        __import__("time").sleep(0.2)
    assert state.models.challenger.version == registered.versions[1]
    body = c.post("/predict", json={"records": feature_rows(6)}).get_json()
    assert body["model"]["version"] == registered.versions[0]
    assert c.get("/model").get_json()["challenger"]["version"] == registered.versions[1]
    state.shadow.stop()
    assert state.log.flush(10)
    shadow = state.store.read_window(shadow=True)
    assert len(shadow) == 6
    assert set(shadow["model_alias"]) == {"challenger"}
    assert set(shadow["model_version"]) == {registered.versions[1]}
    assert sorted(shadow["shadow_of"]) == sorted(body["prediction_ids"])
    served = state.store.read_window()
    assert set(served["prediction_id"]) == set(body["prediction_ids"])


def test_serves_the_model_the_training_entry_point_registers(make_app, mlflow_url, tmp_path):
    from tests.serving.modelkit import train_with_entry_point

    name = "credit-default-serving-test-trained"
    train_with_entry_point(mlflow_url, name, tmp_path / "train.log")
    app = make_app(tracking_uri=mlflow_url, model_name=name)
    c = app.test_client()
    version = c.get("/model").get_json()
    assert version["flavor"] == "sklearn" and version["source"] == "registry"
    assert version["engine"] == "compiled"  # the gbm pipeline training builds
    rows = feature_rows(50, seed=4, scenario="integrity_missing")  # web rows lack income
    rows = [{k: (None if v != v else v) for k, v in r.items()} for r in rows]  # NaN -> null
    assert any(r["income"] is None for r in rows)
    body = c.post("/predict", json={"records": rows}).get_json()
    assert len(body["predictions"]) == 50 and set(body["predictions"]) <= {0, 1}
    assert all(0.0 <= p <= 1.0 for p in body["probabilities"])
    assert body["model"]["name"] == name
    # the compiled answers are the registered pipeline's own, bit for bit
    served = app.extensions["modelwatch"].models.current
    pipeline = mlflow.sklearn.load_model(served.path)
    expected = pipeline.predict_proba(validate(rows, served.spec).frame)[:, 1]
    assert body["probabilities"] == expected.tolist()
    rows[0]["age"] = "forty"
    err = error_of(c.post("/predict", json={"records": rows}), 422)
    assert [p["column"] for p in err["details"]["columns"]] == ["age"]


def test_the_fallback_gives_way_once_the_alias_exists(make_app, mlflow_url):
    from tests.services import wait_for
    from tests.serving.modelkit import register_version

    name = "credit-default-serving-test-late"
    app = make_app(
        tracking_uri=mlflow_url, model_name=name, fallback="default", reload_interval=0.5
    )
    c = app.test_client()
    assert c.get("/model").get_json()["fallback"] is True
    version = register_version(mlflow_url, name, seed=5, alias="production")
    wait_for(
        lambda: not c.get("/model").get_json()["fallback"],
        30,
        "the registered model to replace the fallback",
    )
    body = c.post("/predict", json={"records": feature_rows(2)}).get_json()
    assert "fallback" not in body and body["model"]["version"] == version
    text = c.get("/metrics").get_data(as_text=True)
    assert metric_total(text, "modelwatch_fallback_active") == 0
    assert metric_total(text, "modelwatch_model_info", version=version) == 1
