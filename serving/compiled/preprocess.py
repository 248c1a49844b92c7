"""A fitted `ColumnTransformer` as numpy operations on the request's column arrays.

Two kinds of block, each the fitted transformer's own arithmetic:

* numeric (`SimpleImputer`, `StandardScaler`): fill NaN with `statistics_`, subtract
  `mean_`, divide by `scale_`, in float64 and in that order, as sklearn does;
* lookup (`SimpleImputer` then `OneHotEncoder` or `OrdinalEncoder`): every output of such
  a block depends on one input value, so each known category (and NaN, and an unseen
  value) is run through the fitted block once, at compile time, and a request becomes a
  table lookup per value.

Anything else raises `NotCompilable`, and serving keeps sklearn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

# A value no encoder was fitted on: what the fitted block does with an unseen category.
# (Text a request may send: the probes are checked as requests are, and a NUL is not.)
UNSEEN = "\u241fmodelwatch-unseen\u241f"


class NotCompilable(Exception):
    """The fitted object has a shape the compiler does not handle (the message says which)."""


def _steps(transformer) -> list:
    return (
        [step for _, step in transformer.steps]
        if isinstance(transformer, Pipeline)
        else [transformer]
    )


def _identity(step) -> bool:
    # A fitted ColumnTransformer holds "passthrough" as FunctionTransformer().
    return isinstance(step, FunctionTransformer) and step.func is None and step.inverse_func is None


def _numeric_step(step) -> bool:
    if isinstance(step, SimpleImputer):
        return np.asarray(step.statistics_).dtype.kind in "fiu"
    return isinstance(step, StandardScaler) or _identity(step)


def _describe(steps: list) -> str:
    return " -> ".join(type(s).__name__ for s in steps)


class NumericBlock:
    """Median/mean/constant imputation, then standard scaling."""

    def __init__(self, columns: list[str], steps: list) -> None:
        self.columns = columns
        self.fill = None
        self.mean = None
        self.scale = None
        for step in steps:
            if isinstance(step, SimpleImputer):
                self._add_imputer(step)
            elif isinstance(step, StandardScaler):
                self.mean = step.mean_ if step.with_mean else None
                self.scale = step.scale_ if step.with_std else None
            elif not _identity(step):
                raise NotCompilable(f"{type(step).__name__} in a numeric block")
        self.width = len(columns)

    def _add_imputer(self, step: SimpleImputer) -> None:
        if self.fill is not None or self.mean is not None or self.scale is not None:
            raise NotCompilable("an imputer after another numeric step")
        if step.add_indicator:
            raise NotCompilable("SimpleImputer(add_indicator=True)")
        if not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
            raise NotCompilable(f"SimpleImputer(missing_values={step.missing_values!r})")
        fill = np.asarray(step.statistics_, dtype="float64")
        if np.isnan(fill).any():
            # sklearn drops a column that was all-missing in training: not this layout.
            raise NotCompilable("an imputer with an all-missing training column")
        self.fill = fill

    def transform(self, columns: dict) -> np.ndarray:
        # Column-major, as sklearn has it from a DataFrame: a linear model's product
        # rounds differently on the other layout.
        X = np.array([np.asarray(columns[c], dtype="float64") for c in self.columns]).T
        if self.fill is not None:
            missing = np.isnan(X)
            if missing.any():
                X[missing] = np.broadcast_to(self.fill, X.shape)[missing]
        if self.mean is not None:
            X -= self.mean
        if self.scale is not None:
            X /= self.scale
        return X


class LookupBlock:
    """Per-column categorical encoding, as a table of the fitted block's own outputs."""

    def __init__(self, columns: list[str], transformer) -> None:
        steps = _steps(transformer)
        encoder = steps[-1]
        if not isinstance(encoder, (OneHotEncoder, OrdinalEncoder)) or not all(
            isinstance(s, SimpleImputer) and not s.add_indicator for s in steps[:-1]
        ):
            raise NotCompilable(f"a categorical block {_describe(steps)}")
        self.columns = columns
        widths = (
            list(encoder._n_features_outs)
            if isinstance(encoder, OneHotEncoder)
            else [1] * len(columns)
        )
        bases = [cats[0] for cats in encoder.categories_]
        self.tables, self.codes, self.nan_code, self.unseen_code = [], [], [], []
        offset = 0
        for j in range(len(columns)):
            self._probe(
                transformer,
                columns,
                bases,
                j,
                encoder.categories_[j],
                slice(offset, offset + widths[j]),
            )
            offset += widths[j]
        self.width = offset

    def _probe(self, transformer, columns, bases, j, categories, block) -> None:
        known = [c for c in categories if not (isinstance(c, float) and np.isnan(c))]
        tables = [_run(transformer, columns, bases, j, known)]
        codes = []  # of NaN and of an unseen value: their row of the table, or -1
        for value in (np.nan, UNSEEN):
            try:
                tables.append(_run(transformer, columns, bases, j, [value]))
                codes.append(len(known) + len(tables) - 2)
            except ValueError:  # handle_unknown="error": such a value is the model's error
                codes.append(-1)
        table = np.vstack(tables)
        if table.shape[1] < block.stop:
            raise NotCompilable("the encoder's output is narrower than its categories")
        self.tables.append(np.ascontiguousarray(table[:, block]))
        self.codes.append({value: i for i, value in enumerate(known)})
        self.nan_code.append(codes[0])
        self.unseen_code.append(codes[1])

    def transform(self, columns: dict) -> np.ndarray:
        blocks = []
        for j, name in enumerate(self.columns):
            values = columns[name]
            lut, nan_code, unseen = self.codes[j], self.nan_code[j], self.unseen_code[j]
            codes = np.fromiter(
                (nan_code if v is None or v != v else lut.get(v, unseen) for v in values),
                dtype=np.intp,
                count=len(values),
            )
            if (codes < 0).any():
                bad = sorted({str(v) for v, c in zip(values, codes) if c < 0})
                raise ValueError(f"column {name!r}: the model does not accept {bad}")
            blocks.append(self.tables[j][codes])
        return np.hstack(blocks)


def _run(transformer, columns, bases, j, values) -> np.ndarray:
    """The fitted block on a frame where column j takes `values` and the others a known
    category."""
    frame = pd.DataFrame(
        {c: ([bases[k]] * len(values) if k != j else values) for k, c in enumerate(columns)},
        columns=columns,
    )
    frame[columns[j]] = frame[columns[j]].astype(object)
    out = transformer.transform(frame)
    return np.asarray(out.toarray() if sparse.issparse(out) else out, dtype="float64")


class Preprocessor:
    """The compiled ColumnTransformer: `transform(columns) -> float64 (n, features)`."""

    def __init__(self, blocks: list) -> None:
        self.blocks = blocks
        self.width = sum(b.width for b in blocks)

    def transform(self, columns: dict) -> np.ndarray:
        parts = [b.transform(columns) for b in self.blocks]
        return parts[0] if len(parts) == 1 else np.hstack(parts)


def compile_column_transformer(ct) -> Preprocessor:
    if getattr(ct, "sparse_output_", False):
        raise NotCompilable("the ColumnTransformer's output is sparse")
    blocks = []
    for name, transformer, columns in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        columns = list(columns) if not isinstance(columns, str) else [columns]
        if not columns:
            continue
        if not all(isinstance(c, str) for c in columns):
            raise NotCompilable(f"block {name!r} selects columns by position, not by name")
        if isinstance(transformer, str):  # "passthrough" before fitting
            raise NotCompilable(f"block {name!r} is {transformer!r}")
        blocks.append(_block(columns, transformer))
    if not blocks:
        raise NotCompilable("the ColumnTransformer has no blocks")
    return Preprocessor(blocks)


def _block(columns: list[str], transformer):
    steps = _steps(transformer)
    if all(_numeric_step(s) for s in steps):
        return NumericBlock(columns, steps)
    if isinstance(steps[-1], (OneHotEncoder, OrdinalEncoder)):
        return LookupBlock(columns, transformer)
    raise NotCompilable(f"a block {_describe(steps)}")
