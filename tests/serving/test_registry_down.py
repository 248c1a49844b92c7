"""The registry is stopped: serving goes on, and a cold start serves from the cache.

This module runs its own MLflow server, since it stops it."""

from __future__ import annotations

import time

import pytest
import requests

from tests import services
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, predict
from tests.serving.modelkit import feature_rows

pytestmark = pytest.mark.slow
MODEL = "credit-default-serving-test-registry"
TOKEN = "registry-admin-token"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """An MLflow server of this module's own (it gets stopped), as services starts one."""
    root = tmp_path_factory.mktemp("own-mlflow")
    port = services.free_port()
    with services.mlflow_server_process(root, port) as (url, proc):
        v1 = modelkit.register_version(url, MODEL, seed=1, alias="production")
        yield url, v1, proc


def test_admin_reload_reaches_every_worker_then_registry_down_serving_continues(
    registry, tmp_path_factory
):
    url, v1, registry_proc = registry
    tmp = tmp_path_factory.mktemp("serve-registry")
    env = {
        "MLFLOW_TRACKING_URI": url,
        "MODELWATCH_MODEL_NAME": MODEL,
        "MODELWATCH_ADMIN_TOKEN": TOKEN,
        "MODELWATCH_RELOAD_INTERVAL": "3600",
    }  # only the admin endpoint reloads here
    with gunicorn(tmp, env, workers=2, ready_version=v1) as srv:
        v2 = modelkit.register_version(url, MODEL, seed=2, alias="production")
        r = requests.post(
            f"{srv.url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        assert r.status_code == 200 and r.json()["current"]["version"] == v2
        srv.wait_workers(v2, n=2, timeout=15)  # the other worker follows within a second

        # Stop the registry: predictions go on, the reload says why it cannot.
        services.stop(registry_proc)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/health", timeout=2)
        for _ in range(30):
            r = predict(srv.url, feature_rows(2))
            assert r.status_code == 200 and r.json()["model"]["version"] == v2
        r = requests.post(
            f"{srv.url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "registry_unavailable"
        assert predict(srv.url, feature_rows(1)).status_code == 200

    # A cold start with the registry still down serves the cached last good version.
    env["MODELWATCH_RELOAD_INTERVAL"] = "1"
    with gunicorn(tmp, env, workers=2) as cold:
        services.wait_http(f"{cold.url}/ready", timeout=60, proc=cold.proc)
        deadline = time.monotonic() + 30
        while True:  # every worker is ready once all answer from the cache
            versions = [requests.get(f"{cold.url}/model").json() for _ in range(6)]
            if all(v.get("source") == "cache" for v in versions) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert {v["source"] for v in versions} == {"cache"}
        assert {v["version"] for v in versions} == {v2}
        r = predict(cold.url, feature_rows(3))
        assert r.status_code == 200 and r.json()["model"]["version"] == v2
