"""The prediction log's lake: the log, with its labels, as Parquet (`modelwatch export-log`).

One file per model, version and hour, in hive-style partitions, on a local path or any
URL pyarrow or fsspec can write to (s3://, gs://, hdfs://, memory://, ...):

    DIR/model_name=credit-default/model_version=3/hour=2026-12-01T09/data.parquet

A file holds every column the store's `read_window` answers (the features expanded),
less model_name and model_version, which are in its path; `prediction` and `label` are
kept as the store's text, so that their type is the same in every file. A feature with
no value in an hour is left out of that hour's file (Parquet readers merge the schemas;
a column of no type is one Spark cannot read). Shadow rows go to their own (the
challenger's) version, `shadow_of` naming their champion's row.

Exporting is incremental and idempotent: an hour is read from the store and merged into
the partition's file by prediction_id, the store's rows winning (a label that came late
replaces the missing one), and the file rewritten. Exporting a range again duplicates
nothing, and rows the store has since deleted (retention) stay in the lake. One export at
a time to a destination: two would race on an hour's file. Memory holds one hour.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from modelwatch.log.schema import HOUR, label_text, time_range
from modelwatch.log.store import Store

FILE_NAME = "data.parquet"
PARTITIONS = ("model_name", "model_version", "hour")
# The log's text columns: typed as text in every file, even where they hold no value.
TEXT_COLUMNS = ("prediction", "label", "shadow_of", "probabilities")
# the partition values are text: "3" is a version, not a number
PARTITIONING = ds.partitioning(
    pa.schema([(name, pa.string()) for name in PARTITIONS]), flavor="hive"
)


@dataclass
class ExportSummary:
    rows: int = 0
    labelled: int = 0
    files: int = 0


def export_log(store: Store, to: str, since=None, until=None) -> ExportSummary:
    """Write the predictions scored in [since, until) (anything `read_window` takes;
    default: all of them, up to now) under `to`."""
    lo, hi = time_range(since, until)
    filesystem, root = filesystem_for(to)
    summary = ExportSummary()
    for hour, start, end in store_hours(store, lo, hi):
        rows = _read(store, start, end)
        for model_name, model_version in _models(rows):
            part = rows.filter(
                (pc.field("model_name") == model_name)
                & (pc.field("model_version") == model_version)
            )
            directory = partition_dir(root, model_name, model_version, hour)
            merge_into(filesystem, directory, part.drop_columns(["model_name", "model_version"]))
            summary.rows += part.num_rows
            summary.labelled += part.num_rows - part["label"].null_count
            summary.files += 1
    return summary


def read_export(source: str) -> pd.DataFrame:
    """An export read back as one frame (partition columns included), oldest first, the
    files' schemas merged."""
    filesystem, root = filesystem_for(source)
    paths = [
        f.path
        for f in filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
        if f.type == pafs.FileType.File and f.base_name == FILE_NAME
    ]
    if not paths:
        raise FileNotFoundError(f"no exported prediction log under {source!r}")
    schema = pa.unify_schemas(
        [pq.read_schema(p, filesystem=filesystem) for p in paths], promote_options="permissive"
    ).remove_metadata()
    for name in PARTITIONS:
        schema = schema.append(pa.field(name, pa.string()))
    dataset = ds.dataset(
        paths,
        schema=schema,
        filesystem=filesystem,
        partitioning=PARTITIONING,
        partition_base_dir=root,
    )
    return dataset.to_table().to_pandas().sort_values(["ts", "prediction_id"], ignore_index=True)


def filesystem_for(url: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path in it) of a local path or a URL: pyarrow's own filesystems
    first, then fsspec's (which knows more schemes)."""
    if not url or not url.strip():
        raise ValueError("--to is empty: give a directory or a URL")
    if "://" not in url:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(url))
    try:
        return pafs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as arrow_error:
        try:
            import fsspec  # noqa: PLC0415 (optional: only URLs pyarrow cannot open need it)
        except ImportError:
            raise ValueError(
                f"cannot write to {url!r}: {arrow_error} (and fsspec is not installed)"
            ) from None
        try:
            fs, path = fsspec.core.url_to_fs(url)
        except (ValueError, ImportError) as exc:
            raise ValueError(f"cannot write to {url!r}: {exc}") from None
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def store_hours(store: Store, lo: float, hi: float) -> Iterator[tuple[int, float, float]]:
    """(hour, start, end) of each hour (since the epoch) of [lo, hi) that holds a
    prediction, oldest first, with the part of [lo, hi) it covers."""
    hour = next_hour(store, lo, hi)
    while hour is not None:
        yield hour, max(hour * HOUR, lo), min((hour + 1) * HOUR, hi)
        hour = next_hour(store, (hour + 1) * HOUR, hi)


def next_hour(store: Store, since: float, until: float) -> int | None:
    """The first hour (since the epoch) that holds a prediction scored in [since, until),
    or None. The store's interface has no MIN(ts): the first hour is tried, then a
    bisection over the rest skips a gap (or the years before the first prediction) in
    about 20 LIMIT 1 reads on the ts index."""

    def any_in(lo: int, hi: int) -> bool:  # hours lo..hi
        start, end = max(lo * HOUR, since), min((hi + 1) * HOUR, until)
        return any(
            len(store.read_window(since=start, until=end, limit=1, shadow=s)) for s in (False, True)
        )

    first, last = math.floor(since / HOUR), math.ceil(until / HOUR) - 1
    if first > last or not any_in(first, last):
        return None
    if any_in(first, first):
        return first
    lo, hi = first + 1, last
    while lo < hi:
        mid = (lo + hi) // 2
        if any_in(lo, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _read(store: Store, start: float, end: float) -> pa.Table:
    """The answered and the shadow rows of [start, end), which hold at least one."""
    frames = [
        f
        for f in (store.read_window(since=start, until=end, shadow=s) for s in (False, True))
        if len(f)
    ]
    # permissive: a feature may be missing from one of them
    return pa.concat_tables([_table(f) for f in frames], promote_options="permissive")


def _table(frame: pd.DataFrame) -> pa.Table:
    """`frame` with prediction and label as the store's text (read_window makes them
    numbers when they all are), the text columns typed, the features of no value left out."""
    frame = frame.copy()
    for column in ("prediction", "label"):
        frame[column] = (
            frame[column].map(lambda v: None if pd.isna(v) else label_text(v)).astype(object)
        )
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    for name in TEXT_COLUMNS:
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, name, table[name].cast(pa.string()))
    return table.drop_columns([f.name for f in table.schema if pa.types.is_null(f.type)])


def _models(rows: pa.Table) -> list[tuple[str, str]]:
    pairs = rows.group_by(["model_name", "model_version"]).aggregate([]).to_pylist()
    return sorted((p["model_name"], p["model_version"]) for p in pairs)


def version_dir(root: str, model_name: str, model_version: str) -> str:
    """The directory of one model version's hours."""
    # quoted as pyarrow's and Spark's hive partitioning decode them
    values = (quote(str(model_name), safe=""), quote(str(model_version), safe=""))
    return "/".join([root.rstrip("/"), *(f"{k}={v}" for k, v in zip(PARTITIONS, values))])


def partition_dir(root: str, model_name: str, model_version: str, hour: int) -> str:
    """The directory of one model version's hour (since the epoch)."""
    stamp = pd.Timestamp(hour * HOUR, unit="s", tz="UTC").strftime("%Y-%m-%dT%H")
    return f"{version_dir(root, model_name, model_version)}/{PARTITIONS[-1]}={stamp}"


def hour_start(directory_name: str) -> float | None:
    """When an hour's directory (`hour=2026-12-01T09`) starts, in epoch seconds; None for
    a name that is not an hour's."""
    prefix = f"{PARTITIONS[-1]}="
    if not directory_name.startswith(prefix):
        return None
    return pd.Timestamp(directory_name[len(prefix) :] + ":00", tz="UTC").timestamp()


def version_files(
    log: str, model_name: str, version: str, since=None, until=None
) -> tuple[pafs.FileSystem, list[str]]:
    """The export's files of the version whose hours meet [since, until). FileNotFoundError
    when there is no export of that model and version at all."""
    lo, hi = time_range(since, until)
    filesystem, root = filesystem_for(log)
    if filesystem.get_file_info(root).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no exported prediction log at {log!r}")
    directory = version_dir(root, model_name, version)
    if filesystem.get_file_info(directory).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no rows of {model_name} version {version} under {log!r}")
    files = []
    for info in filesystem.get_file_info(pafs.FileSelector(directory)):
        start = hour_start(info.base_name)
        if start is not None and start < hi and start + HOUR > lo:
            files.append(f"{info.path}/{FILE_NAME}")
    return filesystem, sorted(files)


def write_hours(root: str, model_name: str, version: str, rows: pd.DataFrame) -> None:
    """Rows as an export lays them out (a file an hour), merged into what is there: for
    examples and benchmarks."""
    filesystem, base = filesystem_for(root)
    seconds = (pd.to_datetime(rows["ts"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    hours = seconds // HOUR
    for hour in np.unique(hours):
        table = pa.Table.from_pandas(rows[(hours == hour).to_numpy()], preserve_index=False)
        directory = partition_dir(base, model_name, version, int(hour))
        merge_into(filesystem, directory, table.replace_schema_metadata(None))


def merge_into(filesystem: pafs.FileSystem, directory: str, rows: pa.Table) -> None:
    """Write `rows` into the partition's file, keeping the rows it had that `rows` lacks."""
    path = f"{directory}/{FILE_NAME}"
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        had = pq.read_table(path, filesystem=filesystem)
        kept = had.filter(
            pc.invert(pc.is_in(had["prediction_id"], value_set=rows["prediction_id"]))
        )
        rows = pa.concat_tables([kept, rows], promote_options="permissive")
    rows = rows.sort_by([("ts", "ascending"), ("prediction_id", "ascending")])
    filesystem.create_dir(directory, recursive=True)
    # a whole file or none: an interrupted write must not leave half a file to merge into
    partial = f"{path}.partial"
    pq.write_table(rows, partial, filesystem=filesystem)
    filesystem.move(partial, path)
