"""SQLite prediction log (WAL): the embedded default, `sqlite:///mlruns/predictions.db`."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from modelwatch.log.schema import ADDED_COLUMNS, DROPPED_INDEXES, INDEXES
from modelwatch.log.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_alias TEXT NOT NULL,
    features TEXT NOT NULL,
    prediction TEXT,
    probability REAL,
    latency_ms REAL,
    shadow_of TEXT,
    probabilities TEXT
);
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    ts REAL NOT NULL
);
"""


def sqlite_path(url: str) -> str:
    """`sqlite:///relative.db` (relative to the working directory), `sqlite:////abs.db`."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///path)")
    return url[len("sqlite:///") :]


class SQLiteStore(Store):
    placeholder = "?"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__()
        self.url = url
        self.path = sqlite_path(url)
        self.timeout = timeout
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    def _connect(self):
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _create_schema(self, conn) -> None:
        conn.executescript(SCHEMA)
        with _transaction(conn):  # the write lock: one of the workers adds a column
            have = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
            for name, kind in ADDED_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
            for name, columns in INDEXES:
                conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON predictions ({columns})")
            for name in DROPPED_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")

    def _insert_sql(self) -> str:
        return (
            "INSERT OR IGNORE INTO predictions (prediction_id, ts, model_name, "
            "model_version, model_alias, features, prediction, probability, latency_ms, "
            "shadow_of, probabilities) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

    def _upsert_feedback_sql(self) -> str:
        return (
            "INSERT INTO feedback (prediction_id, label, ts) VALUES (?, ?, ?) "
            "ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label, "
            "ts = excluded.ts WHERE feedback.label IS NOT excluded.label"
        )

    def _write(self, conn, sql: str, rows: list) -> None:
        with _transaction(conn):
            conn.executemany(sql, rows)

    def _prune(self, conn, before: float, limit: int) -> tuple[int, int]:
        # Both deletes pick the same rows: the write lock is held from BEGIN IMMEDIATE, so
        # nothing changes the predictions table in between. Deleted pages go on SQLite's
        # free list and later inserts reuse them, so the file stops growing once pruning
        # keeps up; it does not shrink. VACUUM would shrink it but rewrites the whole file
        # under an exclusive lock (every writer waits minutes on a big log), and
        # incremental_vacuum needs auto_vacuum set before the tables were created.
        oldest = "SELECT prediction_id FROM predictions WHERE ts < ? ORDER BY ts LIMIT ?"
        with _transaction(conn):
            feedback = conn.execute(
                f"DELETE FROM feedback WHERE prediction_id IN ({oldest})", (before, limit)
            ).rowcount
            predictions = conn.execute(
                f"DELETE FROM predictions WHERE prediction_id IN ({oldest})", (before, limit)
            ).rowcount
        return predictions, feedback


@contextmanager
def _transaction(conn):
    """A write transaction that takes the write lock at once (no deadlocking upgrade)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
