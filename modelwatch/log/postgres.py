"""PostgreSQL prediction log (production): `postgresql://user:pass@host:port/db`."""

from __future__ import annotations

from modelwatch.log.schema import ADDED_COLUMNS, DROPPED_INDEXES, INDEXES
from modelwatch.log.store import Store

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
    """CREATE TABLE IF NOT EXISTS feedback (
        prediction_id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL
    )""",
]
SCHEMA_LOCK = 0x6D6F64656C  # pg_advisory_xact_lock key: concurrent workers create once
INDEX_LOCK = SCHEMA_LOCK + 1  # held by the one process building a missing index
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


# The store's SELECT (`Store.window_sql`) for a reader over JDBC (Spark), as a subquery: the
# rows serving answered of one version in [lo, hi), each with its label, the features JSON.
JDBC_WINDOW = (
    "(SELECT p.prediction_id, p.ts, p.model_name, p.model_version, p.model_alias, p.prediction, "
    "p.probability, p.probabilities, p.latency_ms, f.label, p.shadow_of, p.features "
    "FROM predictions p LEFT JOIN feedback f ON f.prediction_id = p.prediction_id "
    "WHERE p.shadow_of IS NULL AND p.model_name = '{name}' AND p.model_version = '{version}' "
    "AND p.ts >= {lo!r} AND p.ts < {hi!r}) AS log"
)


def jdbc_window(model_name: str, version: str, lo: float, hi: float) -> str:
    """`JDBC_WINDOW` for one version and range, its text values quoted as SQL text."""
    return JDBC_WINDOW.format(
        name=_sql_text(model_name), version=_sql_text(version), lo=float(lo), hi=float(hi)
    )


def _sql_text(value: str) -> str:
    return str(value).replace("'", "''")


def _index_state(conn, name: str) -> bool | None:
    """True: the index is there and usable; False: an unfinished concurrent build left
    it invalid; None: there is none."""
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = "
        "i.indexrelid WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
        (name,),
    ).fetchone()
    return None if row is None else bool(row[0])


def _has_column(conn, table: str, column: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = %s "
            "AND column_name = %s AND table_schema = current_schema()",
            (table, column),
        ).fetchone()
        is not None
    )


def postgres_dsn(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class PostgresStore(Store):
    placeholder = "%s"

    def __init__(self, url: str, connect_timeout: int = 3) -> None:
        super().__init__()
        self.url = url
        self.dsn = postgres_dsn(url)
        self.connect_timeout = connect_timeout

    def _connect(self):
        import psycopg  # noqa: PLC0415 (the driver: only a PostgreSQL log loads it)

        return psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=self.connect_timeout,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            # random_page_cost 1.1 (the default 4 prices a spinning disk): version numbers
            # are text ("10" < "9"), so the window index's leading column looks uncorrelated
            # with the heap, and at 10M rows the planner read all of a version's rows in the
            # window's time range and sorted them instead of walking the index for the
            # newest N (235k buffers and 0.50 s against 220k and 0.19 s, bench/README.md).
            options="-c statement_timeout=30000 -c random_page_cost=1.1",
        )

    def _create_schema(self, conn) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in SCHEMA:
                conn.execute(statement)
            for name, kind in ADDED_COLUMNS:
                # Only when missing: ALTER TABLE waits for an AccessExclusiveLock even when
                # the column exists, and another connection's CREATE INDEX CONCURRENTLY
                # waits for this transaction: a deadlock on a new log's first writes.
                if not _has_column(conn, "predictions", name):
                    conn.execute(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
        self._create_indexes(conn)

    def _create_indexes(self, conn) -> None:
        """Build the indexes an existing log lacks. CONCURRENTLY, so that the other
        replicas' writers go on while a big log is indexed (a minute at 10M rows,
        bench/README.md); by one process (the others do not wait: the log works without
        the index, only slower); with no statement timeout, which would cancel the build."""
        if self._indexes_ready(conn):
            return
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (INDEX_LOCK,)).fetchone()[0]:
            return
        try:
            conn.execute("SET statement_timeout = 0")
            for name, columns in INDEXES:
                if _index_state(conn, name) is False:  # a build that was cut off
                    conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                conn.execute(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON predictions ({columns})"
                )
            for name in DROPPED_INDEXES:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        finally:
            conn.execute("RESET statement_timeout")
            conn.execute("SELECT pg_advisory_unlock(%s)", (INDEX_LOCK,))

    def _indexes_ready(self, conn) -> bool:
        return all(_index_state(conn, name) for name, _ in INDEXES) and not any(
            _index_state(conn, name) is not None for name in DROPPED_INDEXES
        )

    def _insert_sql(self) -> str:
        return (
            "INSERT INTO predictions (prediction_id, ts, model_name, model_version, "
            "model_alias, features, prediction, probability, latency_ms, shadow_of, "
            "probabilities) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (prediction_id) DO NOTHING"
        )

    def _upsert_feedback_sql(self) -> str:
        return (
            "INSERT INTO feedback (prediction_id, label, ts) VALUES (%s, %s, %s) "
            "ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label, "
            "ts = excluded.ts WHERE feedback.label IS DISTINCT FROM excluded.label"
        )

    def _write(self, conn, sql: str, rows: list) -> None:
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(sql, rows)

    def _prune(self, conn, before: float, limit: int) -> tuple[int, int]:
        predictions, feedback = conn.execute(PRUNE_SQL, (before, limit)).fetchone()
        return int(predictions), int(feedback)
