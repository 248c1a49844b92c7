"""The prediction log's schema: its tables, columns and indexes, the text of a class label,
the times a read takes, and the rows a read answers as a frame.

Tables (same columns in both backends, `modelwatch.log.sqlite` and `modelwatch.log.postgres`):

predictions
    prediction_id TEXT PRIMARY KEY   UUIDv7 given to the client (serving/ids.py)
    ts            DOUBLE             when it was scored, seconds since the epoch (UTC)
    model_name    TEXT
    model_version TEXT               registry version, or "fallback"
    model_alias   TEXT               alias it was served under ("production", "challenger")
    features      TEXT               JSON object of the model's input columns (nulls kept)
    prediction    TEXT               predicted class, as text ("0", "1", ...); for a
                                     regression the predicted value (repr of the float)
    probability   DOUBLE             P(classes[-1]) if binary, P(top class) if multiclass,
                                     NULL for a regression
    latency_ms    DOUBLE             request latency up to the prediction
    shadow_of     TEXT NULL          for shadow (challenger) rows: the champion's prediction_id
    probabilities TEXT NULL          JSON array of the class probabilities in the model's
                                     class order (the model information's `classes`); NULL
                                     for a regression or a model that gives none
feedback
    prediction_id TEXT PRIMARY KEY   the prediction it labels
    label         TEXT               true label, as text
    ts            DOUBLE             when the current label was stored

Indexes: predictions(ts) for time ranges and pruning; predictions(model_version,
model_name, ts, prediction_id) for one version's window: in the read's own order, so the
monitor's newest N rows are the first N index entries walked backwards, whatever else
the log holds (bench/README.md). The store builds a missing index when it opens an older
log (`INDEXES`, `DROPPED_INDEXES`).

A log created before a column existed gets it at first use (`ADDED_COLUMNS`).
"""

from __future__ import annotations

import io
import json
import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from modelwatch.settings import DURATION_UNITS

HOUR = 3600  # seconds: the log is exported, and read in parts, an hour at a time
PREDICTION_COLUMNS = (
    "prediction_id",
    "ts",
    "model_name",
    "model_version",
    "model_alias",
    "features",
    "prediction",
    "probability",
    "latency_ms",
    "shadow_of",
    "probabilities",
)
# Columns added to the predictions table since its first version, with their SQL type.
ADDED_COLUMNS = (("probabilities", "TEXT"),)
# (name, columns) of the predictions table's indexes, and those an older log had.
# model_version leads, so a read that names only the version (not the model) uses it too.
INDEXES = (
    ("predictions_ts", "ts"),
    ("predictions_version_model_ts", "model_version, model_name, ts, prediction_id"),
)
DROPPED_INDEXES = ("predictions_version_ts",)  # (model_version, ts): a prefix of the new one
META_COLUMNS = [
    "prediction_id",
    "ts",
    "model_name",
    "model_version",
    "model_alias",
    "prediction",
    "probability",
    "probabilities",
    "latency_ms",
    "label",
    "shadow_of",
]


def full_row(row) -> tuple:
    """A row in PREDICTION_COLUMNS order; one written before a column was added (a spill
    file of an older process) gets NULL for it."""
    return tuple(row) + (None,) * (len(PREDICTION_COLUMNS) - len(row))


def label_text(value) -> str:
    """Canonical text of a class label: 1, 1.0 and True are all "1"."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    return str(value)


def to_epoch(value) -> float | None:
    """`since`/`until` as epoch seconds: datetime, Timestamp, ISO text, number, timedelta
    (that long ago), or text like "24h", "30m", "7d" (that long ago)."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, timedelta):
        return time.time() - value.total_seconds()
    if isinstance(value, str):
        text = value.strip()
        if text and text[-1] in DURATION_UNITS:  # an age; else a time ("2026-12-01T09:00Z")
            try:
                return time.time() - float(text[:-1]) * DURATION_UNITS[text[-1]]
            except ValueError:
                pass
        value = pd.Timestamp(text)
    if isinstance(value, datetime):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            ts = ts.tz_localize(UTC)
        return ts.timestamp()
    raise TypeError(f"cannot read a time from {value!r}")


def time_range(since=None, until=None) -> tuple[float, float]:
    """[since, until) as epoch seconds (anything `to_epoch` takes; None or "" is open):
    by default from the epoch (the whole log) to now. ValueError, naming the --since or
    --until option, for a time that does not parse or an empty range."""
    lo = _option_epoch("--since", since) if since not in (None, "") else 0.0
    hi = _option_epoch("--until", until) if until not in (None, "") else time.time()
    if lo >= hi:
        raise ValueError(f"--since ({_iso(lo)}) is not before --until ({_iso(hi)})")
    return lo, hi


def _option_epoch(option: str, value) -> float:
    try:
        return to_epoch(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{option} {value!r} is not a time: give ISO 8601 (2026-12-01T09:00Z), "
            f"epoch seconds, or an age like 24h, 30m, 7d ({exc})"
        ) from None


def _iso(epoch: float) -> str:
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()


def _as_labels(series: pd.Series) -> pd.Series:
    """Text labels back to numbers when they all are; NaN where missing."""
    numeric = pd.to_numeric(series, errors="coerce")
    if bool((numeric.isna() == series.isna()).all()):
        if numeric.notna().any() and bool((numeric.dropna() % 1 == 0).all()):
            return numeric.astype("float64") if numeric.isna().any() else numeric.astype("int64")
        return numeric.astype("float64")
    return series


def frame_from_rows(names: list, rows: list) -> pd.DataFrame:
    meta = pd.DataFrame.from_records(rows, columns=names)
    features = feature_frame(meta.pop("features").tolist(), meta.index)
    meta["ts"] = pd.to_datetime(meta["ts"].astype("float64"), unit="s", utc=True)
    for col in ("probability", "latency_ms"):
        meta[col] = pd.to_numeric(meta[col], errors="coerce").astype("float64")
    meta["prediction"] = _as_labels(meta["prediction"])
    meta["label"] = (
        _as_labels(meta["label"])
        if meta["label"].notna().any()
        else pd.Series(np.nan, index=meta.index, dtype="float64")
    )
    features = features[[c for c in features.columns if c not in META_COLUMNS]]
    return pd.concat([meta[META_COLUMNS], features], axis=1)


def feature_frame(lines: list, index) -> pd.DataFrame:
    """The features' JSON objects as columns. pyarrow's JSON reader parses them in C++,
    columns at once: at 50,000 rows it took a third of the time of json.loads per row and
    building the frame from dicts (bench/README.md). Rows it would type otherwise than
    json.loads does (text that looks like a time, nested values) or cannot type (a column
    both a number and text) take the per-row path."""
    if not lines:
        return pd.DataFrame(index=index)
    frame = _arrow_features(lines)
    if frame is None:
        frame = pd.DataFrame.from_records([json.loads(s) for s in lines])
    frame.index = index
    return frame


_PLAIN_ARROW = ("int64", "double", "bool", "string", "null")


def _arrow_features(lines: list) -> pd.DataFrame | None:
    # here: serving workers write the log and never read it
    import pyarrow as pa  # noqa: PLC0415 (lazy heavy import, see above)
    import pyarrow.json as pa_json  # noqa: PLC0415 (lazy heavy import, see above)

    data = "\n".join(lines).encode()
    # One block: the types are inferred from every row, not the first block's.
    options = pa_json.ReadOptions(block_size=len(data) + 1)
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(lines) or any(str(f.type) not in _PLAIN_ARROW for f in table.schema):
        return None
    return table.to_pandas()
