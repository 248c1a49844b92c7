"""The reference profile: everything drift and integrity checks need from the reference.

A profile is computed once, when the model is trained, and saved next to the run as plain
JSON. Every later window then touches only its own (current) rows: the reference side of
every test (sorted values and their counts, category frequencies, moments, range, missing
share) is read from the profile instead of being recomputed from the reference frame.

Numeric columns keep their *exact* distribution as sorted distinct values with counts, so
that KS, Wasserstein, PSI, KL and Jensen-Shannon give the very numbers Evidently gives on
the raw reference; rounded real-world data (ages, incomes to the hundred) compresses well.

>>> import pandas as pd
>>> from modelwatch.monitoring.drift import ReferenceProfile
>>> df = pd.DataFrame({"age": [30.0, 41.0, 41.0, None], "region": ["n", "s", "s", "n"]})
>>> profile = ReferenceProfile.from_frame(df)
>>> profile["age"].kind, profile["age"].n_missing, profile["age"].values.tolist()
('numeric', 1, [30.0, 41.0])
>>> profile["region"].kind, profile["region"].frequencies()
('categorical', {'n': 0.5, 's': 0.5})
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     _ = profile.save(d)
...     ReferenceProfile.load(d).columns == profile.columns
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROFILE_FILENAME = "profile.json"
FORMAT = "modelwatch.reference_profile"
FORMAT_VERSION = 1

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def infer_kind(series: pd.Series) -> str:
    """Column kind from its dtype: object, string, category and bool are categorical."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        return NUMERIC
    return CATEGORICAL


def numeric_values(series: pd.Series) -> np.ndarray:
    """A column as float64, with anything missing, infinite or unparseable as NaN.

    Evidently drops +-inf together with NaN before testing, so we treat them alike.
    """
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(arr).all():
        arr = np.where(np.isfinite(arr), arr, np.nan)
    return arr


def jsonable(value: Any) -> Any:
    """A category value as something JSON keeps with its type (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


@dataclass
class ColumnProfile:
    """One reference column.

    Numeric columns: ``values`` are the sorted distinct finite values and ``counts`` how
    often each occurs. Categorical columns: ``values`` are the categories (most frequent
    first) and ``counts`` their occurrences. Missing values (NaN, None, +-inf) are only
    counted, in ``n_missing``.
    """

    name: str
    kind: str
    dtype: str
    n_rows: int
    n_missing: int
    values: np.ndarray
    counts: np.ndarray
    mean: float | None = None
    std: float | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- derived, cached in memory only -------------------------------------------------
    @property
    def n(self) -> int:
        """Number of non-missing values."""
        return self.n_rows - self.n_missing

    @property
    def n_unique(self) -> int:
        return int(len(self.values))

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    @property
    def dtype_kind(self) -> str:
        """numpy's one-letter kind of the reference dtype ('f', 'i', 'b', 'O', ...)."""
        try:
            return np.dtype(self.dtype).kind
        except TypeError:
            return "O"

    @property
    def is_integer(self) -> bool:
        return self.dtype_kind in "iu"

    @property
    def min(self) -> float | None:
        return float(self.values[0]) if self.kind == NUMERIC and len(self.values) else None

    @property
    def max(self) -> float | None:
        return float(self.values[-1]) if self.kind == NUMERIC and len(self.values) else None

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()` once per column: what is derived from the reference, kept with it."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def cumcounts(self) -> np.ndarray:
        """cumcounts[i] = number of reference values <= values[i] (numeric)."""
        return self.cached("cum", lambda: np.cumsum(self.counts))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Empirical reference CDF, P(X <= x), at each x."""
        idx = np.searchsorted(self.values, x, side="right")
        cum = np.concatenate(([0], self.cumcounts))
        return cum[idx] / self.n

    def count_below(self, x: np.ndarray) -> np.ndarray:
        """Number of reference values strictly below each x."""
        idx = np.searchsorted(self.values, x, side="left")
        cum = np.concatenate(([0], self.cumcounts))
        return cum[idx]

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Reference quantile (inverse empirical CDF, lower value)."""
        q = np.asarray(q, dtype=float)
        rank = np.clip(np.ceil(q * self.n), 1, self.n)
        return self.values[np.searchsorted(self.cumcounts, rank, side="left")]

    def expanded(self) -> np.ndarray:
        """The reference values themselves (numeric), rebuilt from values and counts."""
        return np.repeat(self.values, self.counts)

    def frequencies(self) -> dict:
        """Category -> share of the non-missing reference values (categorical)."""
        total = int(self.counts.sum())
        return {v: float(c) / total for v, c in zip(self.values.tolist(), self.counts.tolist())}

    def category_index(self) -> dict:
        return self.cached("index", lambda: {v: i for i, v in enumerate(self.values.tolist())})

    # -- construction and JSON -----------------------------------------------------------
    @classmethod
    def from_series(cls, series: pd.Series, kind: str | None = None) -> ColumnProfile:
        kind = kind or infer_kind(series)
        name = str(series.name)
        if kind == NUMERIC:
            arr = numeric_values(series)
            finite = arr[~np.isnan(arr)]
            values, counts = np.unique(finite, return_counts=True)
            mean = float(finite.mean()) if finite.size else None
            std = float(finite.std()) if finite.size else None
            return cls(
                name,
                NUMERIC,
                str(series.dtype),
                int(len(series)),
                int(len(series) - finite.size),
                values.astype(np.float64),
                counts.astype(np.int64),
                mean,
                std,
            )
        if kind != CATEGORICAL:
            raise ValueError(f"column {name!r}: kind must be {NUMERIC!r} or {CATEGORICAL!r}")
        missing = series.isna()
        vc = series[~missing].value_counts(sort=True)
        if isinstance(series.dtype, pd.CategoricalDtype):
            vc = vc[vc > 0]  # declared but unobserved categories are not values
        values = np.array([jsonable(v) for v in vc.index], dtype=object)
        return cls(
            name,
            CATEGORICAL,
            str(series.dtype),
            int(len(series)),
            int(missing.sum()),
            values,
            vc.to_numpy(dtype=np.int64),
        )

    def to_dict(self) -> dict:
        d = {
            "kind": self.kind,
            "dtype": self.dtype,
            "n_rows": self.n_rows,
            "n_missing": self.n_missing,
            "n_unique": self.n_unique,
            "missing_share": self.missing_share,
            "values": self.values.tolist(),
            "counts": self.counts.tolist(),
        }
        if self.kind == NUMERIC:
            d.update(min=self.min, max=self.max, mean=self.mean, std=self.std)
        return d

    @classmethod
    def from_dict(cls, name: str, d: dict) -> ColumnProfile:
        if d["kind"] == NUMERIC:
            values = np.asarray(d["values"], dtype=np.float64)
        else:
            values = np.array(d["values"], dtype=object)
        return cls(
            name,
            d["kind"],
            d["dtype"],
            int(d["n_rows"]),
            int(d["n_missing"]),
            values,
            np.asarray(d["counts"], dtype=np.int64),
            d.get("mean"),
            d.get("std"),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        return (self.to_dict() == other.to_dict()) and self.name == other.name


class ReferenceProfile:
    """Per-column summaries of a reference frame, computed once and saved as JSON."""

    def __init__(
        self, columns: dict[str, ColumnProfile], n_rows: int, metadata: dict | None = None
    ):
        self.columns = columns
        self.n_rows = n_rows
        self.metadata = dict(metadata or {})

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, categorical: list[str] | None = None, metadata: dict | None = None
    ) -> ReferenceProfile:
        """Profile every column of ``df``.

        ``categorical`` names the categorical columns (all others numeric); when None,
        object, string, category and bool columns are categorical, the rest numeric.
        """
        if categorical is not None:
            unknown = set(categorical) - set(map(str, df.columns))
            if unknown:
                raise ValueError(f"categorical columns not in the frame: {sorted(unknown)}")
            cat = set(categorical)
        columns = {}
        for name in df.columns:
            series = df[name]
            if categorical is None:
                kind = infer_kind(series)
            else:
                kind = CATEGORICAL if str(name) in cat else NUMERIC
            columns[str(name)] = ColumnProfile.from_series(series.rename(str(name)), kind)
        return cls(columns, int(len(df)), metadata)

    # -- access ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterable[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def numeric_columns(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.kind == NUMERIC]

    @property
    def categorical_columns(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.kind == CATEGORICAL]

    def __repr__(self) -> str:
        return (
            f"ReferenceProfile(n_rows={self.n_rows}, numeric={self.numeric_columns}, "
            f"categorical={self.categorical_columns})"
        )

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "n_rows": self.n_rows,
            "metadata": self.metadata,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> ReferenceProfile:
        if d.get("format") != FORMAT:
            raise ValueError("not a modelwatch reference profile")
        if int(d.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(f"profile format version {d['version']} is newer than this code")
        columns = {name: ColumnProfile.from_dict(name, c) for name, c in d["columns"].items()}
        return cls(columns, int(d["n_rows"]), d.get("metadata"))

    def save(self, directory: str | Path) -> Path:
        """Write ``profile.json`` into ``directory`` (created if needed); returns its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / PROFILE_FILENAME
        tmp = path.with_suffix(".json.tmp")
        # allow_nan=False: the file must stay plain JSON that any reader accepts.
        tmp.write_text(json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":")))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceProfile:
        """Read a profile saved by :meth:`save` (a directory, or the JSON file itself)."""
        path = Path(directory)
        if path.is_dir():
            path = path / PROFILE_FILENAME
        return cls.from_dict(json.loads(path.read_text()))
