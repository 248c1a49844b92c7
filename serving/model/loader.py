"""`load_local`: an MLflow model directory -> a `LoadedModel`, with its engine chosen.

sklearn flavor: the compiled pipeline when it compiles and answers as sklearn does on
probe rows, else sklearn itself; any other flavor: pyfunc.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd
import skops.io
from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION
from mlflow.models import Model
from modelwatch.serving.compiled import NotCompilable, compile_pipeline, probe_frame, verify
from modelwatch.serving.model.loaded import LoadedModel
from modelwatch.serving.model.scorers import (
    CompiledEngine,
    Engine,
    PyfuncEngine,
    SklearnEngine,
    pyfunc_task,
    signature_task,
)
from modelwatch.serving.validation import spec_from_signature, validate

log = logging.getLogger(__name__)

# Largest difference in probability the compiled model may show against sklearn on the
# probe rows: forests add their trees' votes in thread order, so the last bit can move.
COMPILE_TOLERANCE = 1e-12


class UntrustedTypes(RuntimeError):
    """A skops model holds types that neither skops, its MLmodel nor the operator trusts."""


def load_local(
    path: str | Path,
    *,
    name: str,
    version: str,
    alias: str,
    run_id: str | None,
    source: str,
    compile: bool = True,
    trusted_types: tuple[str, ...] = (),
) -> LoadedModel:
    """Load the model directory at `path` and score its input example once.
    `trusted_types`: skops types to trust besides those the MLmodel lists."""
    meta = Model.load(str(path))
    spec = spec_from_signature(meta.signature)
    example = _input_example(meta, path)
    if "sklearn" in meta.flavors:
        flavor = "sklearn"
        engine, note = choose_sklearn_engine(
            load_sklearn(path, meta.flavors["sklearn"], trusted_types), spec, example, compile
        )
    else:
        flavor, note = "python_function", ""
        engine = pyfunc_engine(path, meta, spec, example)
    model = LoadedModel(
        name=name,
        version=str(version),
        alias=alias,
        run_id=run_id or meta.run_id,
        source=source,
        flavor=flavor,
        spec=spec,
        engine=engine,
        path=str(path),
        engine_note=note,
    )
    _warm_up(model, example)
    return model


def load_sklearn(path, flavor: dict, trusted_types: tuple[str, ...]):
    """The sklearn model. A skops file is audited first, so that a refusal names the types
    to trust and where to say so (skops's own error names them for its `trusted`
    argument, which a serving operator does not call)."""
    if flavor.get("serialization_format") != "skops":
        return mlflow.sklearn.load_model(str(path))
    file = Path(path) / flavor["pickled_model"]
    listed = list(flavor.get("skops_trusted_types") or [])
    untrusted = sorted(set(skops.io.get_untrusted_types(file=file)) - {*listed, *trusted_types})
    if untrusted:
        raise UntrustedTypes(
            f"the model is saved with skops and holds types that are not trusted: "
            f"{', '.join(untrusted)}. If you trust this model, log it again with "
            f"skops_trusted_types={untrusted!r}, or set MODELWATCH_SKOPS_TRUSTED_TYPES="
            f"{','.join(untrusted)} for serving"
        )
    if not trusted_types:
        return mlflow.sklearn.load_model(str(path))
    # MLflow reads the trusted types from the MLmodel only: load the operator's way, behind
    # the same switch MLflow's loader obeys.
    if not MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get():
        raise UntrustedTypes(
            "deserializing models is off (MODELWATCH_TRUST_REGISTRY=0 or "
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false)"
        )
    return skops.io.load(file, trusted=[*listed, *trusted_types])


def pyfunc_engine(path, meta, spec, example) -> PyfuncEngine:
    """The pyfunc model, its task read from its answer to the input example (else from
    its output signature)."""
    model = mlflow.pyfunc.load_model(str(path))
    checked = _checked_example(example, spec)
    if checked is None:
        return PyfuncEngine(model, task=signature_task(meta.signature))
    task, classes = pyfunc_task(model.predict(checked.frame))
    return PyfuncEngine(model, task=task, classes=classes)


def choose_sklearn_engine(model, spec, example, compile: bool) -> tuple[Engine, str]:
    """(engine, note): compiled if the pipeline compiles and its answers on probe rows,
    checked as requests are, are sklearn's; else sklearn, with the reason."""
    if not compile:
        return SklearnEngine(model), "compilation is off (MODELWATCH_COMPILE_MODEL=0)"
    if not hasattr(model, "predict_proba"):
        return SklearnEngine(model), "not compiled: only classifiers compile"
    if spec is None:
        return SklearnEngine(model), "not compiled: the model has no input signature"
    try:
        compiled = compile_pipeline(model)
        types = {c.name: c.type for c in spec}
        probes = validate(probe_frame(compiled, list(types), example, types=types), spec)
        diff = verify(model, compiled, probes.columns, probes.frame)
    except NotCompilable as exc:
        return SklearnEngine(model), f"not compiled: {exc}"
    except Exception as exc:  # a probe the model or the signature refuses: stay with sklearn
        log.warning("model not compiled, its check failed: %s", exc)
        return SklearnEngine(model), f"not compiled: the check failed: {exc}"
    if diff > COMPILE_TOLERANCE:
        log.warning("model not compiled: its answers differ from sklearn's by %s", diff)
        return SklearnEngine(
            model
        ), f"not compiled: answers differ from sklearn's by {diff:.3g} on probe rows"
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


def _checked_example(example: pd.DataFrame | None, spec):
    """The first rows of the input example, validated as requests are; None if there is
    none or it does not match its own signature (then it proves nothing)."""
    if example is None:
        return None
    try:
        return validate(example.head(5), spec)
    except Exception:
        return None


def _warm_up(model: LoadedModel, example: pd.DataFrame | None) -> None:
    """Score the saved input example once: a model that cannot score it is not served."""
    checked = _checked_example(example, model.spec)
    if checked is not None:
        model.predict(checked)
