"""The local engine: the batch computation in this process, one part of the log at a time.

A Parquet export (`modelwatch export-log`) is read one hour's file at a time (in batches of
BATCH_ROWS), only the files of the model, version and hours asked for; a store (`sqlite:///...`,
`postgresql://...`) is read one hour at a time. Each part becomes the calculators'
aggregates and is merged into the running total, so memory holds one part and the
aggregates, never the whole range.

>>> import tempfile, numpy as np, pandas as pd
>>> from modelwatch.log.lake import write_hours
>>> from modelwatch.monitoring.reference import MonitoringReference
>>> from modelwatch.monitoring.suite import fit_calculators
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=3000); y = (x > 0).astype(int)
>>> reference = MonitoringReference.from_scores(
...     pd.DataFrame({"x": x}), y, y, classes=[0, 1], target="y")
>>> rows = pd.DataFrame({
...     "prediction_id": [str(i) for i in range(400)], "x": x[:400],
...     "prediction": y[:400].astype(str), "label": y[:400].astype(str),
...     "ts": pd.to_datetime(np.arange(400) * 60.0, unit="s", utc=True)})
>>> calculators = fit_calculators(reference, chunk_rows=200)
>>> with tempfile.TemporaryDirectory() as d:
...     write_hours(d, "m", "1", rows)
...     window = judge("1", calculators, reference, parquet_parts(d, "m", "1"))
>>> window.rows, window.value("live_accuracy")
(400, 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from modelwatch.monitoring.batch.plan import Plan
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.window import WindowResult

from modelwatch.log import is_store_url, open_existing
from modelwatch.log.lake import store_hours, version_files
from modelwatch.log.schema import time_range

BATCH_ROWS = 100_000  # rows of a file in memory at once: a busy hour's file may hold millions


class NoRows(LookupError):
    """The range holds no prediction of the version."""


def judge(
    version: str, calculators: list, reference: MonitoringReference, parts: Iterable[pd.DataFrame]
) -> WindowResult:
    """The window all of `parts` make together, computed part by part."""
    started = time.perf_counter()
    plan = Plan(version, calculators, reference)
    total = None
    for part in parts:
        if len(part):
            total = plan.merge(total, plan.partial(part))
    if total is None:
        raise NoRows(f"no predictions of version {version} in the range")
    return plan.finish(total, "local", started)


def parts(
    log: str, model_name: str, version: str, since=None, until=None
) -> Iterator[pd.DataFrame]:
    """The rows of `log` (an export's directory or URL, or a store's URL), a part at a time."""
    if is_store_url(log):
        return store_parts(log, model_name, version, since, until)
    return parquet_parts(log, model_name, version, since, until)


def parquet_parts(
    log: str, model_name: str, version: str, since=None, until=None, batch_rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    lo, hi = time_range(since, until)
    filesystem, files = version_files(log, model_name, version, since, until)
    for path in files:
        if filesystem.get_file_info(path).type != pafs.FileType.File:
            continue
        with filesystem.open_input_file(path) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows):
                yield answered(batch.to_pandas(), lo, hi)


def answered(frame: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """The rows serving answered (not the shadow challenger's) scored in [lo, hi)."""
    seconds = (pd.to_datetime(frame["ts"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    keep = (seconds >= lo) & (seconds < hi)
    if "shadow_of" in frame:
        keep &= frame["shadow_of"].isna()
    return frame[keep.to_numpy()].reset_index(drop=True)


def store_parts(
    url: str, model_name: str, version: str, since=None, until=None
) -> Iterator[pd.DataFrame]:
    lo, hi = time_range(since, until)
    store = open_existing(url)
    for _, start, end in store_hours(store, lo, hi):
        yield store.read_window(
            model_version=version, model_name=model_name, since=start, until=end
        )
