"""The PostgreSQL prediction log against a throwaway local cluster, and a store outage
under real gunicorn: serving goes on, records spill, every one arrives on restart."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from modelwatch.log import open_store
from tests.services import wait_for
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, metric_total, predict
from tests.serving.modelkit import feature_rows, log_batch
from tests.serving.pgcluster import why_unavailable

MODEL = "credit-default-serving-test-postgres"

reason = why_unavailable()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def test_postgres_store_speaks_the_same_interface_as_sqlite(cluster, tmp_path):
    pg = open_store(cluster.url)
    lite = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    for store in (pg, lite):
        store.insert_predictions(log_batch(4, "1", seed=21).rows())
        store.insert_predictions(log_batch(4, "1", seed=21).rows())  # replay: no duplicates
        store.insert_predictions(log_batch(2, "2", seed=22).rows())
        assert store.store_feedback({"id-21-0": 1, "id-21-1": 0})["stored"] == 2
        assert store.store_feedback({"id-21-0": 1, "id-21-1": 1}) == {
            "stored": 0,
            "updated": 1,
            "unchanged": 1,
        }
        assert store.known_ids(["id-21-0", "id-22-1", "zzz"]) == {"id-21-0", "id-22-1"}
    a = pg.read_window(since=1_700_000_000).reset_index(drop=True)
    b = lite.read_window(since=1_700_000_000).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[sorted(a.columns)], b[sorted(b.columns)])
    assert len(pg.read_window(model_version="2")) == 2
    pg.close()
    lite.close()


def test_store_stopped_and_restarted_every_record_arrives(cluster, mlflow_url, tmp_path):
    version = modelkit.register_version(mlflow_url, MODEL, seed=3, alias="production")
    env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MODELWATCH_MODEL_NAME": MODEL,
        "MODELWATCH_STORE_URL": cluster.url,
        "MODELWATCH_STORE_RETRY": "0.5",
    }
    answered: list[str] = []
    with gunicorn(tmp_path, env, workers=2, ready_version=version) as srv:
        for _ in range(10):
            r = predict(srv.url, feature_rows(3))
            assert r.status_code == 200
            answered.extend(r.json()["prediction_ids"])
        cluster.stop()
        during: list[str] = []
        for _ in range(30):  # the store is down: serving goes on
            r = predict(srv.url, feature_rows(3))
            assert r.status_code == 200
            during.extend(r.json()["prediction_ids"])
        answered.extend(during)
        fb = requests.post(
            f"{srv.url}/feedback", json={"feedback": [{"prediction_id": during[0], "label": 1}]}
        )
        assert fb.status_code == 503 and fb.json()["error"]["code"] == "store_unavailable"
        wait_for(lambda: list((tmp_path / "spill").glob("*.jsonl")), 30, "a spill file")
        cluster.start()
        store = open_store(cluster.url)
        wait_for(
            lambda: len(store.known_ids(answered)) == len(answered), 60, "every record replayed"
        )
        fb = requests.post(
            f"{srv.url}/feedback", json={"feedback": [{"prediction_id": during[0], "label": 1}]}
        )
        assert fb.json()["accepted"] == 1
        metrics = requests.get(f"{srv.url}/metrics").text
        assert (
            metric_total(metrics, "modelwatch_prediction_log_records_total", outcome="spilled")
            == metric_total(metrics, "modelwatch_prediction_log_records_total", outcome="replayed")
            > 0
        )
    assert not list((tmp_path / "spill").glob("*.jsonl"))
    window = store.read_window()
    assert window["prediction_id"].isin(answered).sum() == len(answered)
    assert window.set_index("prediction_id").loc[during[0], "label"] == 1
    store.close()
