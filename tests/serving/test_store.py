"""The SQLite prediction log: predictions, feedback and the monitor's window."""

from __future__ import annotations

import numpy as np
from modelwatch.training.simulator import CATEGORICAL_FEATURES, NUMERIC_FEATURES

from modelwatch.log import open_store
from tests.serving.modelkit import log_batch


def test_sqlite_store_round_trip_feedback_and_window(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    store.insert_predictions(log_batch(4, "1", seed=1).rows())
    store.insert_predictions(log_batch(3, "2", seed=2).rows())
    store.insert_predictions(log_batch(3, "2", seed=2).rows())  # a replay stores nothing twice
    assert store.count() == 7
    assert store.known_ids(["id-1-0", "nope"]) == {"id-1-0"}
    assert store.store_feedback({"id-1-0": 1, "id-1-1": 0}) == {
        "stored": 2,
        "updated": 0,
        "unchanged": 0,
    }
    assert store.store_feedback({"id-1-0": 1.0, "id-1-1": 1}) == {
        "stored": 0,
        "updated": 1,
        "unchanged": 1,
    }
    df = store.read_window()
    assert len(df) == 7 and df["ts"].is_monotonic_increasing
    assert str(df["ts"].dt.tz) == "UTC"
    labelled = df.set_index("prediction_id")["label"]
    assert labelled["id-1-0"] == 1 and labelled["id-1-1"] == 1
    assert labelled.isna().sum() == 5
    assert set(NUMERIC_FEATURES + CATEGORICAL_FEATURES) <= set(df.columns)
    assert df["income"].dtype == np.float64
    v2 = store.read_window(model_version="2")
    assert len(v2) == 3 and set(v2["model_version"]) == {"2"}
    assert len(store.read_window(limit=2)) == 2
    assert len(store.read_window(since=1_700_000_002.0)) == 3
    assert len(store.read_window(until=1_700_000_002.0)) == 4
    store.close()
