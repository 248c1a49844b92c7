"""POST /webhooks/mlflow: MLflow 3's registry webhooks reload serving at once.

The deliveries here are built and signed by MLflow's own code (mlflow/webhooks/delivery.py,
mlflow 3.17): the end-to-end test has a real MLflow server deliver them to real gunicorn;
the others sign with `_generate_hmac_signature`, the function that server calls."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from mlflow import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature

from tests import services
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, predict
from tests.serving.modelkit import feature_rows

SECRET = "webhook-test-secret"
NAME = "credit-default-serving-test-webhooks"
POLL = 30.0  # the poll interval the webhook is raced against


def delivery(
    entity="model_version_alias", action="created", secret=SECRET, age=0.0, **data
) -> dict:
    """Body and headers as MLflow's _send_webhook_request builds them."""
    body = json.dumps(
        {"entity": entity, "action": action, "timestamp": "2026-01-01T00:00:00+00:00", "data": data}
    )
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time() - age))
    return {
        "data": body,
        "content_type": "application/json",
        "headers": {
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": timestamp,
            "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, timestamp, body),
        },
    }


def moved(name="credit-default", alias="production", version="2", **kw) -> dict:
    return delivery(name=name, alias=alias, version=version, **kw)


@pytest.fixture
def app(make_app):
    # Nothing listens on the registry: a reload is asked for, and its outcome does not matter.
    return make_app(
        wait=False,
        background=False,
        tracking_uri="http://127.0.0.1:9",
        mlflow_webhook_secret=SECRET,
    )


def stamped(app) -> bool:
    """The reload stamp was touched: what makes every gunicorn worker reload."""
    return app.extensions["modelwatch"].models._stamp.exists()


def test_an_alias_move_of_the_served_model_reloads_at_once(app):
    r = app.test_client().post("/webhooks/mlflow", **moved())
    assert r.status_code == 202 and r.get_json() == {"result": "reloading"}
    services.wait_for(lambda: stamped(app), 10, "the reload stamp")


@pytest.mark.parametrize(
    "kind",
    [
        {"entity": "model_version", "action": "created"},
        {"entity": "model_version_alias", "action": "deleted"},
        {"entity": "no_such_entity", "action": "exploded"},
    ],
)
def test_other_events_are_acknowledged_and_ignored(app, kind):
    r = app.test_client().post(
        "/webhooks/mlflow", **delivery(**kind, name="credit-default", alias="production")
    )
    assert r.status_code == 200 and r.get_json()["result"] == "ignored"
    assert not stamped(app)


@pytest.mark.parametrize("data", [{"name": "another-model"}, {"alias": "staging"}])
def test_other_models_and_aliases_are_ignored(app, data):
    r = app.test_client().post("/webhooks/mlflow", **moved(**data))
    assert r.status_code == 200 and r.get_json()["result"] == "ignored"
    assert not stamped(app)


@pytest.mark.parametrize(
    "change, status",
    [
        (lambda d: d["headers"].pop("X-MLflow-Signature"), 401),
        (lambda d: d["headers"].pop("X-MLflow-Timestamp"), 401),
        (lambda d: d["headers"].update({"X-MLflow-Signature": "v1,AAAA"}), 403),
        (lambda d: d.update(data=d["data"].replace('"2"', '"3"')), 403),  # body tampered
        (lambda d: d["headers"].update({"X-MLflow-Delivery-Id": "another"}), 403),
    ],
)
def test_unsigned_or_forged_deliveries_are_refused(app, change, status):
    sent = moved()
    change(sent)
    r = app.test_client().post("/webhooks/mlflow", **sent)
    assert r.status_code == status, r.get_data(as_text=True)
    assert not stamped(app)


def test_a_wrong_secret_and_a_stale_delivery_are_refused(app):
    client = app.test_client()
    assert client.post("/webhooks/mlflow", **moved(secret="not-it")).status_code == 403
    assert client.post("/webhooks/mlflow", **moved(age=3600)).status_code == 403
    assert not stamped(app)


def test_without_a_secret_every_delivery_is_refused(make_app):
    app = make_app(wait=False, background=False, tracking_uri="http://127.0.0.1:9")
    r = app.test_client().post("/webhooks/mlflow", **moved())
    assert (
        r.status_code == 403
        and "MODELWATCH_MLFLOW_WEBHOOK_SECRET" in r.get_json()["error"]["message"]
    )
    assert not stamped(app)


def test_a_signed_body_that_is_not_a_payload_is_a_400(app):
    sent = moved()
    body = "not json"
    headers = sent["headers"]
    headers["X-MLflow-Signature"] = _generate_hmac_signature(
        SECRET, headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body
    )
    r = app.test_client().post("/webhooks/mlflow", data=body, headers=headers)
    assert r.status_code == 400


@pytest.fixture(scope="module")
def webhook_mlflow(tmp_path_factory):
    """A real MLflow server (SQLite: a file store delivers nothing) that may deliver here.
    By default it refuses http:// URLs and private addresses (MLFLOW_WEBHOOK_ALLOWED_SCHEMES,
    MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS) and caches each event's webhooks for 60 s
    (MLFLOW_WEBHOOK_CACHE_TTL), which would hide a webhook created after an alias was set."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
        mp.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
        mp.setenv("MLFLOW_WEBHOOK_CACHE_TTL", "0")
        with services.mlflow_server(tmp_path_factory.mktemp("mlflow-webhooks")) as url:
            yield url


def time_to_serve(client: MlflowClient, server, version: str) -> float:
    """Seconds from moving the alias to every worker answering `version`."""
    start = time.monotonic()
    client.set_registered_model_alias(NAME, "production", version)
    server.wait_workers(version, n=2, timeout=POLL * 3)
    delay = time.monotonic() - start
    answered = {predict(server.url, feature_rows(1)).json()["model"]["version"] for _ in range(10)}
    assert answered == {version}
    return delay


@pytest.mark.slow
def test_the_webhook_serves_a_moved_alias_long_before_the_poll(webhook_mlflow, tmp_path):
    url = webhook_mlflow
    v1 = modelkit.register_version(url, NAME, seed=1, alias="production")
    v2 = modelkit.register_version(url, NAME, seed=2)
    v3 = modelkit.register_version(url, NAME, seed=3)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    env = {
        "MLFLOW_TRACKING_URI": url,
        "MODELWATCH_MODEL_NAME": NAME,
        "MODELWATCH_RELOAD_INTERVAL": str(POLL),
        "MODELWATCH_MLFLOW_WEBHOOK_SECRET": SECRET,
    }
    with gunicorn(tmp_path / "serve", env, ready_version=v1) as server:
        # The poll alone first: the workers have just loaded, their next poll is one
        # interval away.
        polled = time_to_serve(client, server, v2)
        hook = client.create_webhook(
            name="modelwatch",
            url=f"{server.url}/webhooks/mlflow",
            events=["model_version_alias.created"],
            secret=SECRET,
        )
        # MLflow's own test delivery (example_model) is verified and ignored: a 2xx.
        assert client.test_webhook(hook.webhook_id).success
        pushed = time_to_serve(client, server, v3)
        log = server.log.read_text()
    print(
        f"\nalias moved -> both workers answer: webhook {pushed:.2f} s, "
        f"poll alone (MODELWATCH_RELOAD_INTERVAL={POLL:g}) {polled:.2f} s"
    )
    assert f"webhook: {NAME}@production moved to version {v3}, reloading" in log
    assert pushed < 5 and pushed * 4 < polled
