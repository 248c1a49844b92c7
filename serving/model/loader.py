"""`load_local`: an MLflow model directory -> a `LoadedModel`, with its engine chosen.

sklearn flavor: the compiled pipeline when it compiles and answers as sklearn does on
probe rows, else sklearn itself; any other flavor: pyfunc.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from serving.model.engines import CompiledEngine, Engine, PyfuncEngine, SklearnEngine
from serving.model.loaded import LoadedModel
from serving.validation import spec_from_signature, validate

log = logging.getLogger(__name__)

# Largest difference in probability the compiled model may show against sklearn on the
# probe rows: forests add their trees' votes in thread order, so the last bit can move.
COMPILE_TOLERANCE = 1e-12


def load_local(path: str | Path, *, name: str, version: str, alias: str,
               run_id: str | None, source: str, compile: bool = True) -> LoadedModel:
    """Load the model directory at `path` and score its input example once."""
    from mlflow.models import Model

    meta = Model.load(str(path))
    spec = spec_from_signature(meta.signature)
    example = _input_example(meta, path)
    if "sklearn" in meta.flavors:
        import mlflow.sklearn

        flavor = "sklearn"
        engine, note = choose_sklearn_engine(mlflow.sklearn.load_model(str(path)), spec,
                                             example, compile)
    else:
        import mlflow.pyfunc

        flavor, note = "python_function", ""
        engine = PyfuncEngine(mlflow.pyfunc.load_model(str(path)))
    model = LoadedModel(name=name, version=str(version), alias=alias,
                        run_id=run_id or meta.run_id, source=source, flavor=flavor,
                        spec=spec, engine=engine, path=str(path), engine_note=note)
    _warm_up(model, example)
    return model


def choose_sklearn_engine(model, spec, example, compile: bool) -> tuple[Engine, str]:
    """(engine, note): compiled if the pipeline compiles and its answers on probe rows,
    checked as requests are, are sklearn's; else sklearn, with the reason."""
    if not compile:
        return SklearnEngine(model), "compilation is off (MODELWATCH_COMPILE_MODEL=0)"
    if spec is None:
        return SklearnEngine(model), "not compiled: the model has no input signature"
    from serving.compiled import NotCompilable, compile_pipeline, probe_frame, verify

    try:
        compiled = compile_pipeline(model)
        probes = validate(probe_frame(compiled, [c.name for c in spec], example), spec)
        diff = verify(model, compiled, probes.columns, probes.frame)
    except NotCompilable as exc:
        return SklearnEngine(model), f"not compiled: {exc}"
    except Exception as exc:  # a probe the model or the signature refuses: stay with sklearn
        log.warning("model not compiled, its check failed: %s", exc)
        return SklearnEngine(model), f"not compiled: the check failed: {exc}"
    if diff > COMPILE_TOLERANCE:
        log.warning("model not compiled: its answers differ from sklearn's by %s", diff)
        return SklearnEngine(model), \
            f"not compiled: answers differ from sklearn's by {diff:.3g} on probe rows"
    return CompiledEngine(compiled), ""


def _input_example(meta, path) -> pd.DataFrame | None:
    try:
        example = meta.load_input_example(str(path))
    except Exception:
        return None
    if example is None or isinstance(example, pd.DataFrame):
        return example
    try:
        return pd.DataFrame(example)
    except Exception:
        return None


def _warm_up(model: LoadedModel, example: pd.DataFrame | None) -> None:
    """Score the saved input example once: a model that cannot score it is not served."""
    if example is None:
        return
    try:
        checked = validate(example.head(5), model.spec)
    except Exception:
        return  # an example that does not match its own signature proves nothing
    model.predict(checked)
