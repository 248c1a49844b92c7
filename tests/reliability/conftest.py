"""Fixtures of the reliability suite: one registered model, one shared real gunicorn
server (admin token and MLflow password set, so that the security tests can look for
them in its log), and helpers. Fault tests start servers of their own, since they break
them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import requests

from tests.serving import modelkit
from tests.serving.conftest import gunicorn

MODEL = "credit-default-reliability"
ADMIN_TOKEN = "adm-7f3c9e1b2d4a6058-reliability"
MLFLOW_PASSWORD = "mlflow-pw-5b8d0e2f4a6c1397"
MAX_ROWS = 50
MAX_BODY = 64 * 1024


@dataclass
class Model:
    tracking_uri: str
    name: str
    version: str


@pytest.fixture(scope="package")
def model(mlflow_url) -> Model:
    version = modelkit.register_version(mlflow_url, MODEL, seed=1, alias="production", n_rows=1500)
    return Model(mlflow_url, MODEL, version)


def serving_env(model: Model, **extra) -> dict:
    return {"MLFLOW_TRACKING_URI": model.tracking_uri, "MODELWATCH_MODEL_NAME": model.name, **extra}


@pytest.fixture(scope="package")
def server(model, tmp_path_factory):
    """Real gunicorn, 2 workers, with small request limits, an admin token, MLflow basic
    auth credentials in the environment, debug logging and the access log on, and a
    2-second read timeout for stalled clients."""
    tmp = tmp_path_factory.mktemp("reliability-gunicorn")
    env = serving_env(
        model,
        MODELWATCH_ADMIN_TOKEN=ADMIN_TOKEN,
        MLFLOW_TRACKING_USERNAME="modelwatch",
        MLFLOW_TRACKING_PASSWORD=MLFLOW_PASSWORD,
        MODELWATCH_MAX_ROWS=str(MAX_ROWS),
        MODELWATCH_MAX_BODY_BYTES=str(MAX_BODY),
        MODELWATCH_FEEDBACK_WAIT="0.2",
        MODELWATCH_LOG_LEVEL="debug",
        MODELWATCH_ACCESS_LOG="-",
        MODELWATCH_READ_TIMEOUT="2",
    )
    with gunicorn(tmp, env, workers=2, ready_version=model.version) as srv:
        srv.tmp = tmp
        yield srv


def assert_error_shape(response: requests.Response, context="") -> dict:
    """A JSON error answer: {"error": {"code", "message", "details"}} and nothing else."""
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.status_code,
        response.headers.get("Content-Type"),
        response.text[:300],
        context,
    )
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, (body, context)
    err = body["error"]
    assert isinstance(err, dict) and set(err) == {"code", "message", "details"}, (err, context)
    assert isinstance(err["code"], str) and err["code"], (err, context)
    assert isinstance(err["message"], str) and err["message"], (err, context)
    assert isinstance(err["details"], (dict, list)), (err, context)
    return err


MLFLOW_ERROR = {"error_code", "message", "sqlstate", "error_class", "stack_trace"}


def assert_mlflow_error_shape(response: requests.Response, context="") -> str:
    """An error of the MLflow scoring surface, as `mlflow models serve` answers it:
    MLflow's error object ({"error_code", "message"}, and "sqlstate", "error_class",
    "stack_trace"), a 415 in plain text, or FastAPI's 405. Returns the error_code (or "")."""
    content_type = response.headers.get("Content-Type", "")
    if response.status_code == 405:
        body = response.json() if callable(response.json) else response.json
        assert body == {"detail": "Method Not Allowed"}, (body, context)
        return ""
    if response.status_code == 415:
        assert content_type.startswith("text/plain") and response.text, (content_type, context)
        return ""
    assert content_type.startswith("application/json"), (
        response.status_code,
        content_type,
        response.text[:300],
        context,
    )
    # requests' Response has json(); Flask's test client's has the parsed body as .json
    body = response.json() if callable(response.json) else response.json
    assert isinstance(body, dict) and {"error_code", "message"} <= set(body) <= MLFLOW_ERROR, (
        body,
        context,
    )
    assert isinstance(body["error_code"], str) and body["error_code"], (body, context)
    assert isinstance(body["message"], str) and body["message"], (body, context)
    return body["error_code"]


def short(body) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text[:400]
