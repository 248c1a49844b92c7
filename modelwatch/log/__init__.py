"""The prediction log: one small interface over SQLite (default) and PostgreSQL.

>>> from modelwatch.log import open_store
>>> store = open_store("sqlite:///mlruns/predictions.db")      # doctest: +SKIP
>>> df = store.read_window(model_version="3", since="24h")     # doctest: +SKIP

`read_window(model_version=None, since=None, until=None, limit=None)` answers one row per
prediction: prediction_id, ts (UTC datetime), model_name, model_version, model_alias,
prediction, probability, probabilities (JSON text, or None), latency_ms, label (NaN
until feedback), shadow_of, then one column per feature.
"""

from __future__ import annotations

from modelwatch.log.base import PREDICTION_COLUMNS, Store, StoreError, label_text
from modelwatch.settings import read

__all__ = ["open_store", "read_window", "Store", "StoreError", "PREDICTION_COLUMNS", "label_text"]


def open_store(url: str | None = None) -> Store:
    """The store at `url` (default: MODELWATCH_STORE_URL). Tables are created on first use."""
    url = url or read("MODELWATCH_STORE_URL")
    if url.startswith("sqlite:"):
        from modelwatch.log.sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql", "postgres:")):
        from modelwatch.log.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unsupported prediction store URL {url!r}: use sqlite:///path or "
        "postgresql://user:password@host:port/database"
    )


def read_window(url: str | None = None, **kwargs):
    """`open_store(url).read_window(**kwargs)`, closing the store afterwards."""
    store = open_store(url)
    try:
        return store.read_window(**kwargs)
    finally:
        store.close()
