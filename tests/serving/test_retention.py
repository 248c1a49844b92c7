"""Retention of the prediction log, on SQLite and on a throwaway PostgreSQL cluster:
expired predictions go with their feedback and shadow rows, recent ones stay, a backlog
goes in bounded chunks, concurrent pruners are harmless, and retention 0 keeps all."""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg
import pytest
from modelwatch.serving.app import create_app, shutdown_app
from modelwatch.serving.config import DAY, Config
from modelwatch.serving.logwriter.writer import PredictionLog

from modelwatch.log import open_store
from tests.services import wait_for
from tests.serving.conftest import metric_total

RETENTION = 30 * DAY


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """An empty prediction log: a SQLite file, or a fresh database on the cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    cluster = request.getfixturevalue("cluster")
    name = f"retention_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{cluster.url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def store(store_url):
    store = open_store(store_url)
    yield store
    store.close()


def rows(prefix: str, n: int, ts: float, shadow: bool = False) -> list[tuple]:
    """n predictions in PREDICTION_COLUMNS order, one second apart from `ts`; shadow rows
    shadow `{prefix}-{i}` under the champion's ts, as the shadow scorer writes them."""
    return [
        (
            f"{prefix}-{i}{'-shadow' if shadow else ''}",
            ts + i,
            "m",
            "2" if shadow else "1",
            "challenger" if shadow else "production",
            json.dumps({"x": i}),
            str(i % 2),
            0.5,
            2.0,
            f"{prefix}-{i}" if shadow else None,
            None,
        )
        for i in range(n)
    ]


def fill(store, old: int, recent: int) -> float:
    """`old` expired predictions (each with a shadow row, every other one labelled) and
    `recent` ones (all labelled); answers the cutoff between them."""
    now = time.time()
    store.insert_predictions(rows("old", old, now - 40 * DAY))
    store.insert_predictions(rows("old", old, now - 40 * DAY, shadow=True))
    store.insert_predictions(rows("new", recent, now - RETENTION + 60))
    store.store_feedback({f"old-{i}": 1 for i in range(0, old, 2)})
    store.store_feedback({f"new-{i}": 0 for i in range(recent)})
    return now - RETENTION


def assert_only_recent_left(store, recent: int) -> None:
    assert store.count() == recent
    assert store.count("feedback") == recent
    window = store.read_window()
    assert sorted(window["prediction_id"]) == sorted(f"new-{i}" for i in range(recent))
    assert (window["label"] == 0).all()
    assert store.read_window(shadow=True).empty


def test_expired_rows_go_with_their_feedback_and_shadow_rows_recent_ones_stay(store):
    cutoff = fill(store, old=6, recent=4)
    assert store.prune(cutoff) == (12, 3)
    assert_only_recent_left(store, 4)
    assert store.prune(cutoff) == (0, 0)


def test_a_backlog_larger_than_a_chunk_goes_oldest_first_in_bounded_chunks(store):
    cutoff = fill(store, old=25, recent=3)
    old = [r[0] for r in rows("old", 25, 0) + rows("old", 25, 0, shadow=True)]
    chunks = [store.prune(cutoff, limit=7)]
    gone = set(old) - store.known_ids(old)
    assert len(gone) == 7 and {"old-0", "old-1-shadow", "old-2", "old-2-shadow"} <= gone
    while chunks[-1][0] == 7:
        chunks.append(store.prune(cutoff, limit=7))
    assert [p for p, _ in chunks] == [7] * 7 + [1]
    assert sum(f for _, f in chunks) == 13
    assert_only_recent_left(store, 3)


def test_two_pruners_at_once_delete_every_expired_row_exactly_once(store, store_url):
    cutoff = fill(store, old=300, recent=5)
    totals, errors = [], []
    start = threading.Barrier(2)

    def prune_all():
        other = open_store(store_url)  # its own connection, as another worker's would be
        done = [0, 0]
        try:
            start.wait()
            while (chunk := other.prune(cutoff, limit=11))[0]:
                done = [done[0] + chunk[0], done[1] + chunk[1]]
        except Exception as exc:
            errors.append(exc)
        finally:
            other.close()
        totals.append(done)

    threads = [threading.Thread(target=prune_all) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert [sum(t[0] for t in totals), sum(t[1] for t in totals)] == [600, 150]
    assert_only_recent_left(store, 5)


def test_the_writer_thread_prunes_a_backlog_chunk_by_chunk(store, tmp_path):
    fill(store, old=25, recent=3)
    pruned = []
    writer = PredictionLog(
        store,
        tmp_path / "spill",
        retry_interval=0.05,
        retention=RETENTION,
        prune_interval=3600,
        prune_chunk=10,  # only a full chunk makes the next one due
        on_pruned=lambda table, n: pruned.append((table, n, threading.current_thread().name)),
    )
    writer.start()
    try:
        wait_for(lambda: store.count() == 3, 30, "the pruning to leave 3 rows")
    finally:
        writer.close()
    assert_only_recent_left(store, 3)
    assert {thread for _, _, thread in pruned} == {"prediction-log"}
    chunks = [n for table, n, _ in pruned if table == "predictions"]
    assert max(chunks) == 10 and sum(chunks) == 50
    assert sum(n for table, n, _ in pruned if table == "feedback") == 13


def test_retention_0_deletes_nothing(store, tmp_path):
    fill(store, old=25, recent=3)
    calls = []
    writer = PredictionLog(
        store,
        tmp_path / "spill",
        retry_interval=0.01,
        retention=0,
        prune_interval=0,
        on_pruned=lambda table, n: calls.append(n),
    )
    writer.start()
    time.sleep(0.5)  # some 50 idle passes of the writer thread
    writer.close()
    assert calls == []
    assert store.count() == 53 and store.count("feedback") == 16


def test_the_app_prunes_with_the_default_retention_and_counts_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    with_rows = open_store(url)
    fill(with_rows, old=25, recent=3)
    app = create_app(
        {
            "store_url": url,
            "spill_dir": str(tmp_path / "spill"),
            "model_cache_dir": str(tmp_path / "cache"),
            "background": False,
            "store_retry_interval": 0.05,
        }
    )
    state = app.extensions["modelwatch"]
    assert state.log.retention == RETENTION
    try:
        state.log.start()
        wait_for(lambda: with_rows.count() == 3, 30, "the pruning to leave 3 rows")
        text = app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        shutdown_app(app)
        with_rows.close()
    assert metric_total(text, "modelwatch_prediction_log_pruned_total", table="predictions") == 50
    assert metric_total(text, "modelwatch_prediction_log_pruned_total", table="feedback") == 13


def test_the_retention_setting_never_undercuts_the_monitor_or_retraining():
    assert Config.from_env({}).log_retention_days == 30
    assert Config.from_env({"MODELWATCH_LOG_RETENTION_DAYS": "0"}).log_retention_days == 0
    assert Config.from_env({"MODELWATCH_LOG_RETENTION_DAYS": "1"}).log_retention_days == 1
    refused = [
        {"MODELWATCH_LOG_RETENTION_DAYS": "0.5"},  # the default retraining window is 24h
        {"MODELWATCH_LOG_RETENTION_DAYS": "7", "MODELWATCH_RETRAIN_WINDOW": "14d"},
        {"MODELWATCH_LOG_RETENTION_DAYS": "1", "MODELWATCH_MONITOR_WINDOW_SECONDS": "172800"},
        {"MODELWATCH_LOG_RETENTION_DAYS": "-1"},
    ]
    for env in refused:
        with pytest.raises(ValueError, match="MODELWATCH_LOG_RETENTION_DAYS"):
            Config.from_env(env)
