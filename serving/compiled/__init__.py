"""Fitted scikit-learn pipelines compiled to numpy for the request path.

A fitted `Pipeline([ColumnTransformer, estimator])` spends a small request in pandas
column selection and sklearn's input checks, not in arithmetic: about 5 ms of CPU for one
row of the simulator's gbm pipeline, of which the trees are 0.6 ms. `compile_pipeline`
reads the fitted parameters once; `CompiledPipeline.predict_proba` then scores the
request's column arrays with the same floating-point operations in the same order
(preprocess.py, trees.py, estimators.py), in about 0.2 ms. Serving uses it only when
`verify` finds the same probabilities as sklearn on probe rows at load time; otherwise,
or for a pipeline it does not know, it keeps sklearn and says why (`/model`).

Why not a library: skl2onnx with onnxruntime, and treelite, evaluate trees in float32 by
default, so rows near a split land on the other side and answers differ from the
registered model's; they are native dependencies besides. This is about 300 lines of
numpy over sklearn's own fitted arrays, and the load-time check holds it to sklearn.

>>> import numpy as np, pandas as pd
>>> from sklearn.compose import ColumnTransformer
>>> from sklearn.ensemble import HistGradientBoostingClassifier
>>> from sklearn.pipeline import Pipeline
>>> from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
>>> y = (X["x"] + (X["c"] == "a") > 0.5).astype(int)
>>> pipe = Pipeline([("prep", ColumnTransformer([("num", StandardScaler(), ["x"]),
...     ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"])])),
...     ("model", HistGradientBoostingClassifier(max_iter=20))]).fit(X, y)
>>> compiled = compile_pipeline(pipe)
>>> columns = {"x": np.array([0.1, 2.0, np.nan]), "c": np.array(["a", "zzz", "b"], dtype=object)}
>>> bool((compiled.predict_proba(columns) == pipe.predict_proba(pd.DataFrame(columns))).all())
True
>>> pipe.set_params(prep__num=FunctionTransformer(np.tanh)).fit(X, y)  # doctest: +ELLIPSIS
Pipeline(...)
>>> compile_pipeline(pipe)
Traceback (most recent call last):
...
modelwatch.serving.compiled.preprocess.NotCompilable: a block FunctionTransformer
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from modelwatch.serving.compiled.estimators import compile_estimator
from modelwatch.serving.compiled.preprocess import (
    UNSEEN,
    LookupBlock,
    NotCompilable,
    NumericBlock,
    Preprocessor,
    compile_column_transformer,
)
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

__all__ = ["CompiledPipeline", "NotCompilable", "compile_pipeline", "probe_frame", "verify"]


class CompiledPipeline:
    def __init__(self, preprocessor: Preprocessor, estimator, classes: np.ndarray) -> None:
        self.preprocessor = preprocessor
        self.estimator = estimator
        self.classes = classes

    def predict_proba(self, columns) -> np.ndarray:
        """Class probabilities for a mapping of column name -> array (one per row)."""
        return self.estimator.predict_proba(self.preprocessor.transform(columns))


def compile_pipeline(pipeline) -> CompiledPipeline:
    """Raises NotCompilable (naming the part) for a pipeline it does not handle."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise NotCompilable("not a two-step Pipeline (preprocessing, estimator)")
    prep, model = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(prep, ColumnTransformer):
        raise NotCompilable(f"first step {type(prep).__name__}, not a ColumnTransformer")
    preprocessor = compile_column_transformer(prep)
    if preprocessor.width != getattr(model, "n_features_in_", preprocessor.width):
        raise NotCompilable("the preprocessing's width is not the estimator's input width")
    return CompiledPipeline(preprocessor, compile_estimator(model), np.asarray(model.classes_))


def probe_frame(
    compiled: CompiledPipeline,
    columns: list[str],
    like: pd.DataFrame | None = None,
    rows: int = 500,
    seed: int = 0,
    types: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Probe rows with the given `columns` (the signature's), exercising every part of the
    compiled pipeline: numeric values around the training distribution and NaN; every
    known category, NaN and an unseen one; then the rows of `like` (the model's input
    example). Columns the pipeline does not read repeat `like`'s values (or are NaN).
    `types` (column -> the signature's MLflow type) makes each column's probes values of
    its own type, as requests send them: a float in a boolean or integer column is a
    request the signature refuses, so it would prove nothing."""
    rng = np.random.default_rng(seed)
    types = types or {}
    data: dict[str, object] = {}
    for block in compiled.preprocessor.blocks:
        if isinstance(block, NumericBlock):
            center = block.mean if block.mean is not None else np.zeros(block.width)
            spread = block.scale if block.scale is not None else np.ones(block.width)
            for j, name in enumerate(block.columns):
                values = _numeric_probes(rng, center[j], spread[j], rows, types.get(name))
                values[rng.random(rows) < 0.1] = None if values.dtype == object else np.nan
                data[name] = values
        elif isinstance(block, LookupBlock):
            for j, name in enumerate(block.columns):
                choices = list(block.codes[j])
                choices += [np.nan] if block.nan_code[j] >= 0 else []
                unseen = _unseen(choices, types.get(name))
                choices += [unseen] if block.unseen_code[j] >= 0 and unseen is not None else []
                data[name] = np.array(choices, dtype=object)[rng.integers(len(choices), size=rows)]
    like = like.reindex(columns=columns) if like is not None and len(like) else None
    for name in columns:
        if name not in data:
            data[name] = (
                np.resize(like[name].to_numpy(), rows)
                if like is not None
                else np.full(rows, np.nan)
            )
    probes = pd.DataFrame(data, columns=columns)
    return probes if like is None else pd.concat([like, probes], ignore_index=True)


def _numeric_probes(rng, center: float, spread: float, rows: int, kind: str | None) -> np.ndarray:
    """Values around the training distribution, of the column's own type: booleans, whole
    numbers for an integer column, else floats."""
    if kind == "boolean":
        return (rng.random(rows) < 0.5).astype(object)
    values = rng.normal(center, 1.5 * spread, rows)
    return np.round(values) if kind in ("long", "integer") else values


def _unseen(known: list, kind: str | None):
    """A value of the column's type that the encoder was not fitted on (None for a boolean
    column: it has no other value)."""
    if kind == "boolean":
        return None
    if kind in ("long", "integer", "double", "float"):
        numbers = [v for v in known if isinstance(v, int | float | np.number) and v == v]
        return (max(numbers) if numbers else 0) + (1 if kind in ("long", "integer") else 0.5)
    return UNSEEN


# Rows per comparison in `verify`: small enough that the tree walk (which serves small
# requests) is the path compared, not only sklearn's own predictor (which serves big ones).
VERIFY_CHUNK = 16


def verify(pipeline, compiled: CompiledPipeline, columns: dict, frame: pd.DataFrame) -> float:
    """The largest difference in probability between sklearn (on `frame`) and the compiled
    pipeline (on `columns`, the same rows as arrays), scored in small chunks and all at
    once; inf if a predicted class differs."""
    expected = np.asarray(pipeline.predict_proba(frame), dtype="float64")
    n = len(expected)
    parts = [
        compiled.predict_proba({k: v[i : i + VERIFY_CHUNK] for k, v in columns.items()})
        for i in range(0, n, VERIFY_CHUNK)
    ]
    worst = 0.0
    for got in (np.vstack(parts) if parts else expected[:0], compiled.predict_proba(columns)):
        if got.shape != expected.shape or (got.argmax(axis=1) != expected.argmax(axis=1)).any():
            return float("inf")
        if n:
            worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst
