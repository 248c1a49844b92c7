"""The Spark engine: the per-part step on executors, the final step on the driver.

The version's fitted calculators and its reference are broadcast to the executors; each
partition's rows, as pandas batches (`mapInPandas`), become the calculators' aggregates
(`Plan.partial`), merged within the partition and returned as one pickled blob. The
driver collects the blobs, merges them and finishes the
window: only aggregates reach the driver, never rows (ConceptDrift's error stream, 9
bytes a labelled row, is the one aggregate that grows with the range).

Sources: the Parquet export (`read_export`: only the model's and version's directory and
the hours asked for are listed) and the PostgreSQL log over JDBC (`read_postgres`, with
Debian's driver at /usr/share/java/postgresql.jar), its `features` JSON expanded on the
executors exactly as the store's `read_window` expands it.

This is the only module of modelwatch that imports pyspark (`pip install modelwatch[spark]`).

>>> spark = session("local[1]")                                  # doctest: +SKIP
>>> frame = read_export(spark, "lake/", "credit-default", "3")    # doctest: +SKIP
>>> judge(frame, "3", calculators, reference).to_json()          # doctest: +SKIP
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from urllib.parse import unquote, urlparse

import pandas as pd
from modelwatch.monitoring.batch.local import NoRows
from modelwatch.monitoring.batch.plan import Plan
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.window import WindowResult
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from modelwatch.log.lake import version_files
from modelwatch.log.postgres import jdbc_window
from modelwatch.log.schema import frame_from_rows, time_range

JDBC_JAR = "/usr/share/java/postgresql.jar"


def session(master: str = "local[2]", **conf: str) -> SparkSession:
    """A SparkSession for the batch: UTC, string partition values, the JDBC driver where
    Debian installed it. `conf` adds Spark settings (spark_driver_memory="1g" for
    spark.driver.memory)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this interpreter
    builder = (
        SparkSession.builder.master(master)
        .appName("modelwatch-monitor-batch")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        # pandas writes nanosecond timestamps, which Spark reads only as numbers
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        # a partial per 100,000 rows, not per Arrow's default 10,000: its fixed cost
        # (profiling 30 columns, merging sketches) dominated at that size
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
        .config("spark.ui.enabled", "false")
    )
    if os.path.exists(JDBC_JAR):
        builder = builder.config("spark.jars", JDBC_JAR)
    for key, value in conf.items():
        builder = builder.config(key.replace("_", "."), value)
    return builder.getOrCreate()


def read_export(
    spark: SparkSession, log: str, model_name: str, version: str, since=None, until=None
) -> DataFrame:
    """The export's rows of the version in [since, until): its directory only, its hours only."""
    lo, hi = time_range(since, until)
    _, files = version_files(log, model_name, version, since, until)  # FileNotFoundError when none
    if not files:
        raise NoRows(f"no predictions of {model_name} version {version} in the range under {log!r}")
    base = log if "://" in log else os.path.abspath(log)
    paths = [f.rsplit("/", 1)[0] for f in files]
    if "://" in log:
        paths = [base.rstrip("/") + p[p.index("/model_name=") :] for p in paths]
    frame = spark.read.option("basePath", base).option("mergeSchema", "true").parquet(*paths)
    if dict(frame.dtypes)["ts"] == "bigint":  # nanoseconds (see session): epoch seconds instead
        frame = frame.withColumn("ts", F.col("ts") / 1e9)
    seconds = F.col("ts").cast("double")
    frame = frame.where((seconds >= lo) & (seconds < hi))
    if "shadow_of" in frame.columns:
        frame = frame.where(F.col("shadow_of").isNull())
    return frame


def read_postgres(
    spark: SparkSession,
    url: str,
    model_name: str,
    version: str,
    since=None,
    until=None,
    partitions: int = 4,
) -> DataFrame:
    """The PostgreSQL log's rows of the version in [since, until) over JDBC, split by ts
    into `partitions` ranges read in parallel. The features stay JSON (`judge` expands them)."""
    lo, hi = time_range(since, until)
    parsed = urlparse(url)
    jdbc = f"jdbc:postgresql://{parsed.hostname}:{parsed.port or 5432}{parsed.path}"
    query = jdbc_window(model_name, version, lo, hi)
    reader = (
        spark.read.format("jdbc")
        .option("url", jdbc)
        .option("driver", "org.postgresql.Driver")
        # whole seconds: Spark splits a numeric column's range as integers
        .option("dbtable", query)
        .option("partitionColumn", "ts")
        .option("lowerBound", str(int(lo)))
        .option("upperBound", str(int(min(hi, time.time())) + 1))
        .option("numPartitions", str(partitions))
        .option("fetchsize", "10000")
    )
    if parsed.username:
        reader = reader.option("user", unquote(parsed.username))
    if parsed.password:
        reader = reader.option("password", unquote(parsed.password))
    return reader.load()


def judge(
    frame: DataFrame, version: str, calculators: list, reference: MonitoringReference
) -> WindowResult:
    """The window of all of `frame`'s rows: partial per partition, merged and finished here."""
    started = time.perf_counter()
    plan = Plan(version, calculators, reference)
    shipped = frame.sparkSession.sparkContext.broadcast(pickle.dumps(plan))
    json_features = "features" in frame.columns  # the PostgreSQL log: expand on the executors

    def per_partition(batches):
        mine = pickle.loads(shipped.value)
        total = None
        for batch in batches:
            if len(batch):
                total = mine.merge(
                    total, mine.partial(_expanded(batch) if json_features else batch)
                )
        if total is not None:
            yield pd.DataFrame({"aggregate": [pickle.dumps(total)]})

    # collect, not toLocalIterator: that computes the partitions one after another. The
    # blobs are a partition's aggregates each (bounded sketches, counts and sums).
    blobs = [
        row["aggregate"] for row in frame.mapInPandas(per_partition, "aggregate binary").collect()
    ]
    total = None
    while blobs:
        total = plan.merge(total, pickle.loads(blobs.pop()))
    if total is None:
        raise NoRows(f"no predictions of version {version} in the range")
    return plan.finish(total, "spark", started)


def _expanded(batch: pd.DataFrame) -> pd.DataFrame:
    """A JDBC batch as `read_window` answers it (features expanded, ts a time, labels typed)."""
    return frame_from_rows(list(batch.columns), list(batch.itertuples(index=False, name=None)))


__all__ = ["judge", "read_export", "read_postgres", "session"]
