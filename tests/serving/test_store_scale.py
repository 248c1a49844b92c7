"""The prediction log at scale on a real PostgreSQL: the window read walks an index, an
older log migrates at open without losing a row, and writers of several processes on
one log lose nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from modelwatch.log import open_store
from tests.serving.pgcluster import why_unavailable

ROOT = Path(__file__).resolve().parents[2]
reason = why_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(reason is not None, reason=reason or "")]

# The predictions table and its indexes as the store made them before the window index
# (and before the probabilities column).
OLD_SCHEMA = [
    """CREATE TABLE predictions (prediction_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL,
        model_name TEXT NOT NULL, model_version TEXT NOT NULL, model_alias TEXT NOT NULL,
        features TEXT NOT NULL, prediction TEXT, probability DOUBLE PRECISION,
        latency_ms DOUBLE PRECISION, shadow_of TEXT)""",
    "CREATE INDEX predictions_ts ON predictions (ts)",
    "CREATE INDEX predictions_version_ts ON predictions (model_version, ts)",
    "CREATE TABLE feedback (prediction_id TEXT PRIMARY KEY, label TEXT NOT NULL, "
    "ts DOUBLE PRECISION NOT NULL)",
]
# n rows over the last n seconds: 70% of them model "big", 25% "mid", 5% "small"; two
# versions of each; a label for every third.
FILL = """
INSERT INTO predictions (prediction_id, ts, model_name, model_version, model_alias, features,
                         prediction, probability, latency_ms)
SELECT lpad(g::text, 10, '0'), %(now)s - %(n)s + g,
       CASE WHEN g %% 20 < 14 THEN 'big' WHEN g %% 20 < 19 THEN 'mid' ELSE 'small' END,
       (1 + (g * 2 / %(n)s))::text, 'production',
       format('{"age":%%s,"income":%%s,"region":"%%s"}', 18 + g %% 60, (g %% 997) * 10.5,
              (ARRAY['north','south','east','west'])[1 + g %% 4]),
       (g %% 2)::text, (g %% 100) / 100.0, 2.0
FROM generate_series(0, %(n)s - 1) AS g
"""
LABELS = (
    "INSERT INTO feedback SELECT prediction_id, prediction, ts FROM predictions "
    "WHERE prediction_id::int % 3 = 0"
)


def database(cluster, name: str) -> str:
    """A fresh database of the module's cluster: its URL."""
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.rsplit("/", 1)[0] + "/" + name


def old_log(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in OLD_SCHEMA:
            conn.execute(statement)
        conn.execute(FILL, {"now": time.time(), "n": rows})
        conn.execute(LABELS)
        conn.execute("VACUUM ANALYZE")


def plan_nodes(conn, sql: str, params) -> list[str]:
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]
    nodes, todo = [], [plan]
    while todo:
        node = todo.pop()
        nodes.append(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
        todo.extend(node.get("Plans", []))
    return nodes


def test_window_read_walks_the_window_index_not_the_table(cluster):
    url = database(cluster, "scale_window")
    old_log(url, 200_000)
    store = open_store(url)
    store.ping()  # opening migrates: the window index is built
    kwargs = dict(model_name="small", model_version="2", since=time.time() - 86400, limit=2000)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE predictions")
        nodes = plan_nodes(conn, *store.window_sql(**kwargs))
        labelled = plan_nodes(
            conn, *store.window_sql(model_name="big", since="1d", limit=500, labelled=True)
        )
    assert "Index Scan predictions_version_model_ts" in nodes and "Hash Join" not in nodes, nodes
    assert not [n for n in nodes + labelled if n.startswith("Seq Scan")], (nodes, labelled)
    window = store.read_window(**kwargs)
    assert len(window) == 2000 and set(window["model_name"]) == {"small"}
    assert window["ts"].is_monotonic_increasing
    assert window[["age", "income", "region"]].notna().all().all()
    rows = store.read_window(model_name="big", limit=500, labelled=True)
    assert len(rows) == 500 and rows["label"].notna().all()
    store.close()


def test_an_old_log_migrates_at_open_without_losing_rows(cluster, tmp_path):
    url = database(cluster, "scale_old")
    old_log(url, 20_000)
    with psycopg.connect(url, autocommit=True) as conn:
        # A concurrent build cut off (the process killed) leaves an invalid index behind.
        conn.execute("CREATE INDEX predictions_version_model_ts ON predictions (model_version)")
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
            "'predictions_version_model_ts'::regclass"
        )
    store = open_store(url)
    assert store.count() == 20_000 and store.count("feedback") == 6667
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = dict(
            conn.execute(
                "SELECT c.relname, pg_get_indexdef(c.oid) || ' ' || i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'predictions'::regclass"
            ).fetchall()
        )
    assert "predictions_version_ts" not in indexes
    assert indexes["predictions_version_model_ts"].endswith(
        "(model_version, model_name, ts, prediction_id) true"
    )
    window = store.read_window(model_name="mid", model_version="2", limit=100)
    assert len(window) == 100 and window["probabilities"].isna().all()
    store.close()

    path = tmp_path / "old.db"  # SQLite: the same migration
    with sqlite3.connect(path) as lite:
        for statement in OLD_SCHEMA:
            lite.execute(statement.replace("DOUBLE PRECISION", "REAL"))
        lite.executemany(
            "INSERT INTO predictions VALUES (?, ?, 'm', '1', 'production', '{}', "
            "'1', 0.5, 1.0, NULL)",
            [(str(i), float(i)) for i in range(100)],
        )
    store = open_store(f"sqlite:///{path}")
    assert store.count() == 100 and len(store.read_window(model_name="m")) == 100
    sql, params = store.window_sql(model_name="m", model_version="1", since=0, limit=10)
    plan = " ".join(r[3] for r in store._conn().execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "USING INDEX predictions_version_model_ts" in plan and "TEMP B-TREE" not in plan, plan
    store.close()
    with sqlite3.connect(path) as lite:
        names = {r[1] for r in lite.execute("PRAGMA index_list(predictions)")}
    assert {"predictions_ts", "predictions_version_model_ts"} <= names
    assert "predictions_version_ts" not in names


WRITER = """
import dataclasses, sys
from modelwatch.log import open_store
from modelwatch.serving.logwriter.writer import PredictionLog
from tests.serving.modelkit import log_batch
url, spill, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
log = PredictionLog(open_store(url), spill, linger=0.005).start()
batch = log_batch(20, "1")
for seed in range(first, first + count):
    log.submit(dataclasses.replace(batch, ids=[f"id-{seed}-{i}" for i in range(20)]))
log.close()
"""


def test_writers_of_two_processes_on_one_log_lose_nothing(cluster, tmp_path):
    url = database(cluster, "scale_writers")
    open_store(url).ping()  # the schema, before two processes race to make it
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                url,
                str(tmp_path / f"spill{i}"),
                str(1000 * (i + 1)),
                "400",
            ],
            cwd=ROOT,
        )
        for i in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    store = open_store(url)
    assert store.count() == 2 * 400 * 20
    assert not list(tmp_path.glob("spill*/*.jsonl"))
    ids = {
        f"id-{seed}-{i}"
        for first in (1000, 2000)
        for seed in range(first, first + 400)
        for i in range(20)
    }
    assert store.known_ids(ids) == ids
    store.close()
