"""PostgreSQL prediction log (production): `postgresql://user:pass@host:port/db`."""

from __future__ import annotations

from modelwatch.serving.store.base import ADDED_COLUMNS, Store

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS predictions (
        prediction_id TEXT PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        model_alias TEXT NOT NULL,
        features TEXT NOT NULL,
        prediction TEXT,
        probability DOUBLE PRECISION,
        latency_ms DOUBLE PRECISION,
        shadow_of TEXT,
        probabilities TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts)",
    "CREATE INDEX IF NOT EXISTS predictions_version_ts ON predictions (model_version, ts)",
    """CREATE TABLE IF NOT EXISTS feedback (
        prediction_id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL
    )""",
]
SCHEMA_LOCK = 0x6D6F64656C  # pg_advisory_xact_lock key: concurrent workers create once
# One statement, so one transaction. SKIP LOCKED: concurrent pruners (every worker of
# every replica) take disjoint chunks instead of waiting on, or deadlocking over, the
# same rows. Dead rows are reclaimed by autovacuum, so the table stays flat once pruning
# keeps up.
PRUNE_SQL = """
WITH gone AS (
    DELETE FROM predictions WHERE prediction_id IN (
        SELECT prediction_id FROM predictions WHERE ts < %s
        ORDER BY ts LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING prediction_id),
labels AS (
    DELETE FROM feedback WHERE prediction_id IN (SELECT prediction_id FROM gone)
    RETURNING prediction_id)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM labels)
"""


def postgres_dsn(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


class PostgresStore(Store):
    placeholder = "%s"

    def __init__(self, url: str, connect_timeout: int = 3) -> None:
        super().__init__()
        self.url = url
        self.dsn = postgres_dsn(url)
        self.connect_timeout = connect_timeout

    def _connect(self):
        import psycopg

        return psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=self.connect_timeout,
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            options="-c statement_timeout=30000",
        )

    def _create_schema(self, conn) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                conn.execute(statement)
            for name, kind in ADDED_COLUMNS:
                conn.execute(f"ALTER TABLE predictions ADD COLUMN IF NOT EXISTS {name} {kind}")

    def _insert_sql(self) -> str:
        return ("INSERT INTO predictions (prediction_id, ts, model_name, model_version, "
                "model_alias, features, prediction, probability, latency_ms, shadow_of, "
                "probabilities) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (prediction_id) DO NOTHING")

    def _upsert_feedback_sql(self) -> str:
        return ("INSERT INTO feedback (prediction_id, label, ts) VALUES (%s, %s, %s) "
                "ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label, "
                "ts = excluded.ts WHERE feedback.label IS DISTINCT FROM excluded.label")

    def _write(self, conn, sql: str, rows: list) -> None:
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(sql, rows)

    def _prune(self, conn, before: float, limit: int) -> tuple[int, int]:
        predictions, feedback = conn.execute(PRUNE_SQL, (before, limit)).fetchone()
        return int(predictions), int(feedback)
