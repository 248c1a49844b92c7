"""The prediction log's store: one interface over SQLite (`modelwatch.log.sqlite`) and
PostgreSQL (`modelwatch.log.postgres`), its tables as `modelwatch.log.schema` describes.

Rows are kept until `prune` deletes them (serving's log writer does, past
MODELWATCH_LOG_RETENTION_DAYS).
"""

from __future__ import annotations

import threading
import time

import pandas as pd

from modelwatch.log.schema import frame_from_rows, label_text, to_epoch


class StoreError(RuntimeError):
    """The store could not be reached or failed a statement."""


class Store:
    """Base class: thread-local connections, shared SQL. Subclasses set the dialect."""

    placeholder = "?"
    url: str

    def __init__(self) -> None:
        self._local = threading.local()
        self._all_conns: list = []
        self._lock = threading.Lock()
        self._schema_ready = False

    # -- connections -------------------------------------------------------------
    def _connect(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _create_schema(self, conn) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
                if not self._schema_ready:
                    self._create_schema(conn)
                    self._schema_ready = True
            except Exception as exc:
                raise StoreError(f"cannot open the prediction store: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._all_conns.append(conn)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all_conns:
                    self._all_conns.remove(conn)
            try:
                conn.close()
            except Exception:
                pass

    def _run(self, fn):
        """Run fn(conn); on any failure drop this thread's connection and raise StoreError."""
        conn = self._conn()
        try:
            return fn(conn)
        except Exception as exc:
            self._drop_conn()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"prediction store failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            conns, self._all_conns = self._all_conns, []
        for conn in conns:
            try:
                conn.close()
            except Exception:
                pass
        self._local = threading.local()

    # -- dialect hooks -----------------------------------------------------------
    def _insert_sql(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _upsert_feedback_sql(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write(self, conn, sql: str, rows: list) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prune(self, conn, before: float, limit: int) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def _query(self, conn, sql: str, params=()) -> tuple[list, list]:
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            rows = cur.fetchall()
            names = [d[0] for d in cur.description]
        finally:
            cur.close()
        return names, rows

    # -- the interface ------------------------------------------------------------
    def ping(self) -> bool:
        try:
            self._run(lambda conn: self._query(conn, "SELECT 1"))
            return True
        except StoreError:
            return False

    def insert_predictions(self, rows: list) -> None:
        """Insert rows (tuples in PREDICTION_COLUMNS order); ids already stored are kept."""
        if rows:
            self._run(lambda conn: self._write(conn, self._insert_sql(), rows))

    def known_ids(self, ids) -> set[str]:
        """The subset of `ids` that the predictions table holds."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join([self.placeholder] * len(chunk))
            sql = f"SELECT prediction_id FROM predictions WHERE prediction_id IN ({marks})"
            _, rows = self._run(lambda conn, s=sql, c=chunk: self._query(conn, s, tuple(c)))
            found.update(r[0] for r in rows)
        return found

    def labels(self, ids) -> dict[str, str]:
        ids = list(dict.fromkeys(str(i) for i in ids))
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join([self.placeholder] * len(chunk))
            sql = f"SELECT prediction_id, label FROM feedback WHERE prediction_id IN ({marks})"
            _, rows = self._run(lambda conn, s=sql, c=chunk: self._query(conn, s, tuple(c)))
            out.update((r[0], r[1]) for r in rows)
        return out

    def store_feedback(self, labels: dict[str, object]) -> dict[str, int]:
        """Store {prediction_id: label}; a repeat stores nothing, a new label replaces the
        old one. Answers counts: stored (new), updated (changed), unchanged."""
        texts = {str(k): label_text(v) for k, v in labels.items()}
        existing = self.labels(texts)
        new = {k: v for k, v in texts.items() if k not in existing}
        changed = {k: v for k, v in texts.items() if k in existing and existing[k] != v}
        now = time.time()
        rows = [(k, v, now) for k, v in {**new, **changed}.items()]
        if rows:
            self._run(lambda conn: self._write(conn, self._upsert_feedback_sql(), rows))
        return {
            "stored": len(new),
            "updated": len(changed),
            "unchanged": len(texts) - len(new) - len(changed),
        }

    def prune(self, before, limit: int = 5000) -> tuple[int, int]:
        """Delete the oldest predictions scored before `before` (epoch seconds, or anything
        `read_window` takes as `since`), at most `limit` of them, with their feedback, in
        one transaction. Shadow rows go by their own ts, which is their champion's.
        Answers (predictions, feedback) deleted; `limit` predictions mean more may be left.
        Several pruners at once are harmless: a row is deleted once, by one of them."""
        cutoff = to_epoch(before)
        return self._run(lambda conn: self._prune(conn, cutoff, int(limit)))

    def count(self, table: str = "predictions") -> int:
        if table not in ("predictions", "feedback"):
            raise ValueError(table)
        _, rows = self._run(lambda conn: self._query(conn, f"SELECT COUNT(*) FROM {table}"))
        return int(rows[0][0])

    def read_window(
        self,
        model_version=None,
        since=None,
        until=None,
        limit=None,
        shadow: bool = False,
        model_alias: str | None = None,
        model_name: str | None = None,
        labelled: bool = False,
    ) -> pd.DataFrame:
        """One row per prediction in [since, until), oldest first, with the feature
        columns expanded and `label` (NaN where no feedback yet).

        model_version: one version (or a list of them); None for all.
        model_name: one model's rows; None for every model in the log (version numbers
          of different models are the same text, so a version alone mixes them).
        since, until: datetime / ISO text / epoch seconds / timedelta or "24h" (ago).
        limit: keep the most recent `limit` rows.
        shadow: False (default) for the rows that were answered; True for the shadow
          challenger's rows (their label is the champion's row's label).
        labelled: only rows with a label; `limit` then counts labelled rows.
        """
        sql, params = self.window_sql(
            model_version, since, until, limit, shadow, model_alias, model_name, labelled
        )
        names, rows = self._run(lambda conn: self._query(conn, sql, params))
        rows.reverse()
        return frame_from_rows(names, rows)

    def window_sql(
        self,
        model_version=None,
        since=None,
        until=None,
        limit=None,
        shadow: bool = False,
        model_alias: str | None = None,
        model_name: str | None = None,
        labelled: bool = False,
    ) -> tuple[str, tuple]:
        """The statement `read_window` runs, and its parameters (newest first)."""
        p = self.placeholder
        where, params = [], []
        where.append("p.shadow_of IS NOT NULL" if shadow else "p.shadow_of IS NULL")
        if model_name is not None:
            where.append(f"p.model_name = {p}")
            params.append(str(model_name))
        if model_version is not None:
            versions = (
                [model_version] if isinstance(model_version, (str, int)) else list(model_version)
            )
            where.append(f"p.model_version IN ({', '.join([p] * len(versions))})")
            params.extend(str(v) for v in versions)
        if model_alias is not None:
            where.append(f"p.model_alias = {p}")
            params.append(model_alias)
        lo, hi = to_epoch(since), to_epoch(until)
        if lo is not None:
            where.append(f"p.ts >= {p}")
            params.append(lo)
        if hi is not None:
            where.append(f"p.ts < {p}")
            params.append(hi)
        key = "COALESCE(p.shadow_of, p.prediction_id)"  # a shadow row has its champion's label
        if labelled:
            label, source = "f.label", f"predictions p JOIN feedback f ON f.prediction_id = {key}"
        else:
            # Looked up for the window's rows only: as a join, the planner may hash the
            # whole feedback table for a window of a few thousand rows.
            label = f"(SELECT f.label FROM feedback f WHERE f.prediction_id = {key}) AS label"
            source = "predictions p"
        sql = (
            "SELECT p.prediction_id, p.ts, p.model_name, p.model_version, p.model_alias, "
            f"p.prediction, p.probability, p.probabilities, p.latency_ms, {label}, "
            f"p.shadow_of, p.features FROM {source} "
            f"WHERE {' AND '.join(where)} ORDER BY p.ts DESC, p.prediction_id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql, tuple(params)
