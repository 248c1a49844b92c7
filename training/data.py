"""Loading a training table and checking it before anything is trained or logged.

Every problem raises `DataError` with a message that names it; the entry points turn
that into a non-zero exit before a run logs or registers anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from modelwatch.training import simulator

from modelwatch.log import scored

# A text column is refused as a category when it is mostly distinct values (an id, a
# free-text field): one-hot encoding it would learn nothing and explode the model.
MAX_CATEGORY_SHARE = 0.5
MIN_ROWS = 50
TASKS = ("auto", *scored.TASKS)  # auto: the target decides
# `auto` takes a numeric target with more distinct values than this for a regression
# target, and anything else for class labels.
MAX_CLASSES = 20


class DataError(ValueError):
    """The training data cannot be used; the message says why."""


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame  # features and target, features cast to float64 or str
    target: str
    numeric: list[str]
    categorical: list[str]
    source: str  # a path, or "simulator:<scenario>"
    task: str  # binary, multiclass or regression

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def digest(self) -> str:
        """A content hash of the rows, so a version can be traced to the data it saw."""
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def load(data: str, target: str, n_rows: int, seed: int, task: str) -> Dataset:
    """Load `data` (CSV or Parquet path, or "" for the simulator) and check it."""
    if not data:
        frame = simulator.generate(n_rows, "baseline", seed)
        return prepare(frame, target, "simulator:baseline", task)
    return prepare(read_table(data), target, str(Path(data).resolve()), task)


def load_holdout(path: str, like: Dataset) -> pd.DataFrame:
    """Trusted labelled rows for the gate, checked and cast like the training data."""
    holdout = prepare(read_table(path), like.target, str(Path(path).resolve()), like.task)
    missing = sorted(set(like.features) - set(holdout.features))
    if missing:
        raise DataError(f"holdout {path} lacks the feature columns {', '.join(missing)}")
    return holdout.frame


def column_list(text: str, dataset: Dataset, option: str) -> tuple[str, ...]:
    """The feature columns named in the comma list `text` (e.g. `--segments`), each checked."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in dataset.features]
    if unknown:
        raise DataError(
            f"{option}: {', '.join(map(repr, unknown))} is not a feature column; "
            f"the feature columns are: {', '.join(dataset.features)}"
        )
    return names


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, with a clear error for whatever is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file has no columns: {path}") from None
    except Exception as exc:  # any parser's failure is the same problem to the user
        raise DataError(f"cannot read {path} as {_kind(path)}: {exc}") from None


def prepare(frame: pd.DataFrame, target: str, source: str, task: str) -> Dataset:
    """Check `frame` and cast its features: numbers to float64, everything else to str.

    `task` is binary, multiclass, regression, or auto to infer it from the target (see
    `infer_task`); a regression target is cast to float64 too.
    """
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} not found; "
            f"the columns are: {', '.join(map(str, frame.columns))}"
        )
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise DataError(f"{len(frame)} labelled rows in {source}; at least {MIN_ROWS} are needed")
    task = check_task(frame[target], task)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{source} has no feature columns besides the target {target!r}")
    numeric, categorical = _split_columns(features)
    out = pd.DataFrame(
        {c: pd.to_numeric(features[c]).astype("float64") for c in numeric}
        | {c: _as_text(features[c]) for c in categorical}
    )
    out[target] = frame[target].to_numpy(dtype="float64" if task == "regression" else None)
    return Dataset(out, target, numeric, categorical, source, task)


def infer_task(y: pd.Series) -> str:
    """The task a target asks for: regression for a numeric target with more than
    MAX_CLASSES distinct values, otherwise binary (two classes) or multiclass.

    >>> infer_task(pd.Series(np.linspace(0, 1, 50))), infer_task(pd.Series([0.5, 1.0, 1.5] * 10))
    ('regression', 'multiclass')
    >>> infer_task(pd.Series([1, 2, 3, 1])), infer_task(pd.Series(["yes", "no"]))
    ('multiclass', 'binary')
    """
    distinct = y.nunique()
    if distinct > MAX_CLASSES and _is_number(y):
        return "regression"
    return "binary" if distinct <= 2 else "multiclass"


def check_task(y: pd.Series, task: str) -> str:
    """`task`, inferred when auto, once the target `y` (no missing values) can serve it."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    chosen = infer_task(y) if task == "auto" else task
    if chosen == "regression":
        _check_regression_target(y)
    else:
        _check_classes(y, chosen, inferred=task == "auto")
    return chosen


def _check_regression_target(y: pd.Series) -> None:
    if not _is_number(y):
        raise DataError(
            f"target {y.name!r} is not numeric (e.g. {y.iloc[0]!r}); a regression target must be"
        )
    if not np.isfinite(y.to_numpy(dtype="float64")).all():
        raise DataError(f"target {y.name!r} holds infinite values")
    if y.nunique() < 2:
        raise DataError(f"target {y.name!r} is constant ({y.iloc[0]!r}); there is nothing to learn")


def _check_classes(y: pd.Series, task: str, inferred: bool) -> None:
    distinct = y.nunique()
    if distinct < 2:
        raise DataError(
            f"target {y.name!r} has a single class ({y.iloc[0]!r}); a classifier needs two or more"
        )
    if task == "binary" and distinct != 2:
        raise DataError(
            f"target {y.name!r} has {distinct} classes; "
            "binary needs exactly two (try --task multiclass)"
        )
    if inferred and distinct > MAX_CLASSES:
        raise DataError(
            f"target {y.name!r} is text with {distinct} distinct values: too many for class labels "
            f"(auto allows {MAX_CLASSES}); pass --task multiclass if they are classes"
        )


def _is_number(y: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)


def _split_columns(features: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric, categorical = [], []
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_bool_dtype(column):
            categorical.append(str(name))
        elif pd.api.types.is_numeric_dtype(column) or _all_numbers(str(name), column):
            if not np.isfinite(pd.to_numeric(column.dropna()).to_numpy(dtype="float64")).all():
                raise DataError(f"column {name!r} holds infinite values")
            numeric.append(str(name))
        else:
            _check_categories(str(name), column)
            categorical.append(str(name))
    return numeric, categorical


def _all_numbers(name: str, column: pd.Series) -> bool:
    """True for text that is all numbers; an error for text that is mostly numbers."""
    values = column.dropna()
    if values.empty:
        raise DataError(f"column {name!r} is empty: every value is missing")
    as_numbers = pd.to_numeric(values, errors="coerce")
    failed = as_numbers.isna()
    if not failed.any():
        return True
    if failed.mean() <= 0.5:
        bad = values[failed].astype(str).unique()[:3]
        raise DataError(
            f"column {name!r} looks numeric but {int(failed.sum())} of {len(values)} "
            f"values are not numbers (e.g. {', '.join(repr(b) for b in bad)})"
        )
    return False


def _check_categories(name: str, column: pd.Series) -> None:
    values = column.dropna()
    distinct = values.nunique()
    if distinct > 100 and distinct > MAX_CATEGORY_SHARE * len(values):
        raise DataError(
            f"column {name!r} is text with {distinct} distinct values in {len(values)} rows "
            "(an identifier or free text?); drop it or encode it as numbers"
        )


def _as_text(column: pd.Series) -> pd.Series:
    return column.where(column.isna(), column.astype(str)).astype(object)


def _kind(path: Path) -> str:
    return "Parquet" if path.suffix.lower() in {".parquet", ".pq"} else "CSV"
