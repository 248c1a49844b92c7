"""The monitor's window read and retraining's labelled read on a big PostgreSQL log.

Run: ``.venv/bin/python -m bench.window_query`` (``--sizes 1000000,10000000``).

A throwaway PostgreSQL cluster (tests/serving/pgcluster.py) is filled with
``INSERT ... SELECT generate_series`` rows: three models (70%, 25% and 5% of the traffic),
a new version of each every two days, a challenger shadowing 6% of the traffic, the
simulator's eleven features as JSON text, a label for 31% of the predictions. Traffic is a
steady 3.9 predictions a second (10M rows are 30 days of it, 1M rows 3 days), so a bigger
table is a longer history and the window stays the same. For each size the reads are timed on the old
schema (its indexes, the old query text, the old frame building) and then, after the
store's own migration at open (timed too), with the new store's `read_window`; side by
side in one run, so the ratio is what carries over. Times are the fastest of
``--repeats`` reads (the median is kept too); the buffers EXPLAIN counts do not depend on
the machine's other load at all. EXPLAIN (ANALYZE, BUFFERS) of each
query goes to the results file.

Results go to ``bench/results/window_query.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import psycopg

from bench.common import RESULTS, environment, write_results
from modelwatch.log import postgres, schema
from modelwatch.log.schema import DROPPED_INDEXES, INDEXES
from tests.serving.pgcluster import Cluster

OUTPUT = RESULTS / "window_query.json"
RATE = 10_000_000 / (30 * 86400)  # predictions a second: 10M rows are 30 days
MODELS = ("credit-default", "churn", "fraud")
VERSION_DAYS = 2  # a new version of every model every two days
WINDOW_SECONDS = 86400  # the window's time bound: the newest N rows within the last 24 h

# The schema and the read as they were before this change, to time against.
OLD_INDEXES = [
    "CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts)",
    "CREATE INDEX IF NOT EXISTS predictions_version_ts ON predictions (model_version, ts)",
]
OLD_WINDOW_SQL = (
    "SELECT p.prediction_id, p.ts, p.model_name, p.model_version, p.model_alias, "
    "p.prediction, p.probability, p.probabilities, p.latency_ms, f.label, "
    "p.shadow_of, p.features "
    "FROM predictions p LEFT JOIN feedback f "
    "ON f.prediction_id = COALESCE(p.shadow_of, p.prediction_id) "
    "WHERE {where} ORDER BY p.ts DESC, p.prediction_id DESC LIMIT {limit}"
)

# One row per g: time-ordered ids (as UUIDv7 are), the simulator's features as JSON.
FILL_SQL = """
INSERT INTO predictions
SELECT lpad(to_hex((t * 1000)::bigint), 12, '0') || '-7' || substr(h, 1, 3) || '-8'
         || substr(h, 4, 3) || '-' || substr(h, 7, 12),
       t, m, v, 'production',
       format('{{"age":%s,"income":%s,"debt_to_income":%s,"credit_score":%s,'
              '"loan_amount":%s,"employment_years":%s,"num_credit_lines":%s,'
              '"home_ownership":"%s","loan_purpose":"%s","region":"%s","channel":"%s"}}',
              18 + (r1 * 60)::int, round((20000 + r2 * 150000)::numeric, 2),
              round(r3::numeric * 0.8, 4), 300 + (r1 * r2 * 550)::int,
              round((1000 + r3 * 49000)::numeric, 2), (r2 * 40)::int, (r3 * 15)::int,
              (ARRAY['rent','own','mortgage'])[1 + (g % 3)],
              (ARRAY['debt_consolidation','home_improvement','car','education','business',
                     'medical'])[1 + (g % 6)],
              (ARRAY['north','south','east','west'])[1 + (g % 4)],
              (ARRAY['branch','web','mobile','broker'])[1 + (g % 5) % 4]),
       (r1 < 0.3)::int::text, r1, 2 + r2 * 10, NULL,
       format('[%s,%s]', 1 - r1, r1)
FROM (SELECT g, {start} + g / {rate} AS t, md5(g::text) AS h,
             CASE WHEN g % 20 < 14 THEN '{m0}' WHEN g % 20 < 19 THEN '{m1}'
                  ELSE '{m2}' END AS m,
             (1 + floor(g / {rate} / {version_seconds}))::int::text AS v,
             random() AS r1, random() AS r2, random() AS r3
      FROM generate_series({first}, {last}) AS g) s
"""
# The challenger's shadow rows: 1/16 of the predictions again, under the next version.
SHADOW_SQL = """
INSERT INTO predictions
SELECT 's' || prediction_id, ts, model_name, (model_version::int + 1)::text, 'challenger',
       features, prediction, probability, latency_ms, prediction_id, probabilities
FROM predictions WHERE shadow_of IS NULL AND ts >= {lo} AND ts < {hi}
  AND right(prediction_id, 1) = '0'
"""
LABEL_SQL = """
INSERT INTO feedback
SELECT prediction_id, prediction, ts + 3600 FROM predictions
WHERE shadow_of IS NULL AND ts >= {lo} AND ts < {hi}
  AND right(prediction_id, 1) IN ('1','2','3','4','5')
"""


def fill(conn, first: int, last: int, start: float) -> None:
    """Rows g = first..last of the history that begins at `start` (epoch seconds), with
    their shadow rows and labels."""
    for lo in range(first, last + 1, 1_000_000):  # in steps: one huge statement is slow
        conn.execute(
            FILL_SQL.format(
                first=lo,
                last=min(lo + 999_999, last),
                start=start,
                rate=RATE,
                version_seconds=VERSION_DAYS * 86400,
                **{f"m{i}": m for i, m in enumerate(MODELS)},
            )
        )
    bounds = {"lo": start + first / RATE, "hi": start + (last + 1) / RATE}
    conn.execute(SHADOW_SQL.format(**bounds))
    conn.execute(LABEL_SQL.format(**bounds))


def old_schema(conn) -> None:
    """The tables and indexes as the store made them before (no newer index)."""
    for statement in postgres.SCHEMA:
        conn.execute(statement)
    for name in [n for n, _ in INDEXES] + list(DROPPED_INDEXES):
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    for statement in OLD_INDEXES:
        conn.execute(statement)


def old_read(store, conn, version: str, since: float, limit: int, labelled: bool):
    """The read as it was: versions of every model, the label filtered afterwards, each
    row's features parsed with json.loads."""
    where = ["p.shadow_of IS NULL", f"p.ts >= {since!r}"]
    if version is not None:
        where.append(f"p.model_version IN ('{version}')")
    sql = OLD_WINDOW_SQL.format(where=" AND ".join(where), limit=limit)

    def read():
        cur = conn.execute(sql)
        names, rows = [d[0] for d in cur.description], cur.fetchall()
        rows.reverse()
        with mock.patch.object(schema, "_arrow_features", lambda lines: None):
            frame = schema.frame_from_rows(names, rows)
        return frame[frame["label"].notna()] if labelled else frame

    return sql, (), read


def new_read(
    store, conn, model: str, version: str | None, since: float, limit: int, labelled: bool
):
    kwargs = dict(
        model_name=model, model_version=version, since=since, limit=limit, labelled=labelled
    )
    sql, params = store.window_sql(**kwargs)
    return sql, params, lambda: store.read_window(**kwargs)


def explain(conn, sql: str, params: tuple) -> dict:
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()[0][0]
    text = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params))
    nodes = []

    def walk(node):
        nodes.append(node["Node Type"] + (f" {node['Index Name']}" if "Index Name" in node else ""))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    top = plan["Plan"]
    return {
        "execution_ms": plan["Execution Time"],
        "nodes": nodes,
        "shared_buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
        "plan": text,
    }


def timed(read, repeats: int) -> tuple[float, float, int, int]:
    """Fastest and median seconds of `read()` (after one warm-up), rows and models in its
    answer. The fastest is the one the machine's other tenants disturbed least."""
    frame = read()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame = read()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), len(frame), int(frame["model_name"].nunique())


def cases(windows: list[int]) -> list[dict]:
    """(what, model, version key, limit, labelled): the monitor's window of the big model
    at each size, of the small one at the smallest, retraining's labelled rows."""
    out = [
        {"read": "monitor window", "model": MODELS[0], "limit": n, "labelled": False}
        for n in windows
    ]
    out.append(
        {"read": "monitor window", "model": MODELS[-1], "limit": windows[0], "labelled": False}
    )
    out += [
        {"read": "retraining labelled rows", "model": MODELS[0], "limit": n, "labelled": True}
        for n in windows
    ]
    return out


def current_version(conn, model: str) -> str:
    return conn.execute(
        "SELECT model_version FROM predictions WHERE model_name = %s AND "
        "shadow_of IS NULL ORDER BY ts DESC LIMIT 1",
        (model,),
    ).fetchone()[0]


def measure(store, conn, windows: list[int], repeats: int, schema: str) -> list[dict]:
    """Each case read by the old query and the new one (on the old schema), or the new
    one (on the new schema)."""
    since = time.time() - WINDOW_SECONDS
    queries = ("old", "new") if schema == "old" else ("new",)
    out = []
    for case, query in [(c, q) for c in cases(windows) for q in queries]:
        version = None if case["labelled"] else current_version(conn, case["model"])
        if query == "old":
            sql, params, read = old_read(
                store, conn, version, since, case["limit"], case["labelled"]
            )
        else:
            sql, params, read = new_read(
                store, conn, case["model"], version, since, case["limit"], case["labelled"]
            )
        seconds, median, rows, models = timed(read, repeats)
        # On the connection that ran it: the store's sessions set their own planner costs.
        plan = explain(conn if query == "old" else store._conn(), sql, params)
        out.append(
            {
                **case,
                "version": version,
                "schema": schema,
                "query": query,
                "seconds": seconds,
                "median_seconds": median,
                "rows": rows,
                "models_in_answer": models,
                **plan,
            }
        )
        print(
            f"  {query} query, {schema} indexes: {case['read']} {case['model']} limit {case['limit']:,}: "
            f"{seconds * 1000:.0f} ms, {rows:,} rows of {models} model(s), SQL "
            f"{out[-1]['execution_ms']:.0f} ms, {out[-1]['shared_buffers']:,} buffers, "
            f"{' > '.join(out[-1]['nodes'])}",
            flush=True,
        )
    return out


def size_run(url: str, conn, size: int, loaded: int, history: tuple, windows, repeats) -> dict:
    """Grow the log to `size` rows (the older history is added), then time old and new."""
    history_start, total = history
    old_schema(conn)
    for name in ("predictions_ts", "predictions_version_ts"):  # load without them
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    t0 = time.perf_counter()
    fill(conn, total - size, total - loaded - 1, history_start)
    load_seconds = time.perf_counter() - t0
    old_schema(conn)
    conn.execute("VACUUM ANALYZE predictions")
    conn.execute("VACUUM ANALYZE feedback")
    rows = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
    labels = conn.execute("SELECT count(*) FROM feedback").fetchone()[0]
    print(f"{rows:,} predictions, {labels:,} labels (loaded in {load_seconds:.0f} s)", flush=True)
    entry = {
        "predictions": rows,
        "labels": labels,
        "load_seconds": load_seconds,
        "table_mib": conn.execute("SELECT pg_total_relation_size('predictions')").fetchone()[0]
        / 2**20,
    }
    store = postgres.PostgresStore(url)
    store._schema_ready = True  # the old schema stays as it is while it is timed
    entry["old"] = measure(store, conn, windows, repeats, "old")
    store.close()
    store = postgres.PostgresStore(url)
    t0 = time.perf_counter()
    store.ping()  # opening the store migrates the log: the new index, built concurrently
    entry["migration_seconds"] = time.perf_counter() - t0
    conn.execute("ANALYZE predictions")
    print(f"  migration at open: {entry['migration_seconds']:.1f} s", flush=True)
    entry["new"] = measure(store, conn, windows, repeats, "new")
    store.close()
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--windows", default="2000,50000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in args.sizes.split(","))
    windows = [int(x) for x in args.windows.split(",")]
    info = environment()
    cluster = Cluster().init()
    cluster.start()
    try:
        conn = psycopg.connect(cluster.url, autocommit=True)
        results, loaded = [], 0
        history = (time.time() - sizes[-1] / RATE, sizes[-1])  # ends now
        for size in sizes:
            results.append(
                size_run(cluster.url, conn, size, loaded, history, windows, args.repeats)
            )
            loaded = size
        conn.close()
    finally:
        cluster.destroy()
    doc = {
        "benchmark": "window_query: the monitor's window read and retraining's labelled "
        "read, old schema and query vs new, on a PostgreSQL log",
        **info,
        "loadavg_at_end": os.getloadavg()[0],
        "command": ".venv/bin/python -m bench.window_query",
        "window_seconds": WINDOW_SECONDS,
        "rate_per_second": RATE,
        "models": MODELS,
        "results": results,
    }
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
