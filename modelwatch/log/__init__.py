"""The prediction log: one small interface over SQLite (default) and PostgreSQL.

>>> from modelwatch.log import open_store
>>> store = open_store("sqlite:///mlruns/predictions.db")      # doctest: +SKIP
>>> df = store.read_window(model_version="3", since="24h")     # doctest: +SKIP

`read_window(model_version=None, since=None, until=None, limit=None)` answers one row per
prediction: prediction_id, ts (UTC datetime), model_name, model_version, model_alias,
prediction, probability, probabilities (JSON text, or None), latency_ms, label (NaN
until feedback), shadow_of, then one column per feature.

The package is the log's one home: its schema (`schema`), the stores (`store`, `sqlite`,
`postgres`), its Parquet lake (`lake`) and its rows as the monitor's input (`scored`).
"""

from __future__ import annotations

import os

from modelwatch.log.postgres import PostgresStore
from modelwatch.log.schema import PREDICTION_COLUMNS, label_text
from modelwatch.log.sqlite import SQLiteStore
from modelwatch.log.store import Store, StoreError
from modelwatch.settings import read

__all__ = [
    "open_store",
    "open_existing",
    "is_store_url",
    "Store",
    "StoreError",
    "PREDICTION_COLUMNS",
    "label_text",
]


# What names a store, where a path or URL could also name the log's Parquet lake.
STORE_SCHEMES = ("sqlite://", "postgresql://", "postgres://", "postgresql+psycopg://")


def is_store_url(log: str) -> bool:
    return log.startswith(STORE_SCHEMES)


def open_store(url: str | None = None) -> Store:
    """The store at `url` (default: MODELWATCH_STORE_URL). Tables are created on first use."""
    url = url or read("MODELWATCH_STORE_URL")
    if url.startswith("sqlite:"):
        return SQLiteStore(url)
    if url.startswith(("postgresql", "postgres:")):
        return PostgresStore(url)
    raise ValueError(
        f"unsupported prediction store URL {url!r}: use sqlite:///path or "
        "postgresql://user:password@host:port/database"
    )


def open_existing(url: str | None) -> Store:
    """The prediction log at `url` (default: MODELWATCH_STORE_URL, else serving's), for a
    reader: a SQLite file must exist already, where opening it would make an empty one."""
    store = open_store(url)
    path = getattr(store, "path", None)
    if path is not None and path != ":memory:" and not os.path.exists(path):
        raise ValueError(
            f"no prediction log at {store.url!r}: give --store-url or MODELWATCH_STORE_URL"
        )
    return store
