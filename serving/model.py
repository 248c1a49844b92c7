"""Model loading by alias, a local cache of the last good version, hot reload, shadow.

The served model is one immutable `LoadedModel` held in `ModelManager.current`; a reload
builds the new one beside it and swaps the reference (atomic in CPython), so requests
never wait for or fail during a reload. A background thread polls the alias; `reload()`
does it now (the admin endpoint), and touches a stamp file so that the other gunicorn
workers poll at once too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from serving.errors import redact_credentials
from serving.validation import ColumnSpec, Validated, spec_from_signature, validate

log = logging.getLogger(__name__)


class RegistryUnavailable(RuntimeError):
    """The registry did not answer."""


class AliasNotFound(LookupError):
    """The registry answered: no such model or alias."""


# -- the served model -------------------------------------------------------------------

def _labels_and_scores(proba: np.ndarray, classes: np.ndarray):
    """Top class of each row, and its score: P(positive) for two classes, else P(top)."""
    top = proba.argmax(axis=1)
    if proba.shape[1] == 2:
        return classes[top], proba[:, 1]
    return classes[top], proba[np.arange(len(top)), top]


class SklearnImpl:
    reads = "frame"

    def __init__(self, model) -> None:
        self.model = model
        self.has_proba = hasattr(model, "predict_proba")
        classes = getattr(model, "classes_", None)
        self.classes = np.asarray(classes) if classes is not None else None

    def predict(self, X: pd.DataFrame):
        if self.has_proba and self.classes is not None:
            return _labels_and_scores(np.asarray(self.model.predict_proba(X)), self.classes)
        return np.asarray(self.model.predict(X)).ravel(), None


class CompiledImpl:
    """The same sklearn pipeline, scored by `serving.compiled` on the column arrays."""

    reads = "columns"

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.classes = compiled.classes

    def predict(self, columns: dict):
        return _labels_and_scores(self.compiled.predict_proba(columns), self.classes)


class PyfuncImpl:
    reads = "frame"
    classes = None

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, X: pd.DataFrame):
        out = self.model.predict(X)
        if isinstance(out, pd.DataFrame):
            out = out.iloc[:, 0]
        return np.asarray(out).ravel(), None


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    alias: str
    run_id: str | None
    source: str            # "registry", "cache" or "fallback"
    loaded_at: float
    flavor: str
    spec: list[ColumnSpec] | None
    impl: object
    path: str | None = None
    engine: str = ""       # what scores requests: "compiled", "sklearn", "pyfunc", "rules"
    engine_note: str = ""  # why not compiled, when it is not

    @property
    def fallback(self) -> bool:
        return self.source == "fallback"

    def predict(self, checked: Validated):
        """Labels and scores (or None) of validated rows."""
        if getattr(self.impl, "reads", "frame") == "columns":
            return self.impl.predict(checked.columns)
        return self.impl.predict(checked.frame)

    def describe(self) -> dict:
        return {
            "name": self.name, "version": self.version, "alias": self.alias,
            "run_id": self.run_id, "source": self.source, "fallback": self.fallback,
            "flavor": self.flavor, "engine": self.engine, "engine_note": self.engine_note,
            "loaded_at": pd.Timestamp(self.loaded_at, unit="s", tz="UTC").isoformat(),
        }


def load_local(path: str | Path, name: str, version: str, alias: str, run_id: str | None,
               source: str, compile: bool = True) -> LoadedModel:
    """Load an MLflow model directory: sklearn flavor natively (compiled when it can be,
    see `_sklearn_engine`), else pyfunc."""
    from mlflow.models import Model

    meta = Model.load(str(path))
    spec = spec_from_signature(meta.signature)
    example = _input_example(meta, path)
    if "sklearn" in meta.flavors:
        import mlflow.sklearn

        flavor = "sklearn"
        impl, engine, note = _sklearn_engine(mlflow.sklearn.load_model(str(path)), spec,
                                             example, compile)
    else:
        import mlflow.pyfunc

        impl, flavor = PyfuncImpl(mlflow.pyfunc.load_model(str(path))), "python_function"
        engine, note = "pyfunc", ""
    model = LoadedModel(name, str(version), alias, run_id or meta.run_id, source, time.time(),
                        flavor, spec, impl, str(path), engine, note)
    _warm_up(model, example)
    return model


# Largest difference in probability the compiled model may show against sklearn on the
# probe rows: forests add their trees' votes in thread order, so the last bit can move.
COMPILE_TOLERANCE = 1e-12


def _sklearn_engine(model, spec, example, compile: bool):
    """(impl, engine, note): compiled if the pipeline compiles and its answers on probe
    rows, checked as requests are, are sklearn's; else sklearn, with the reason."""
    if not compile:
        return SklearnImpl(model), "sklearn", "compilation is off (MODELWATCH_COMPILE_MODEL=0)"
    if spec is None:
        return SklearnImpl(model), "sklearn", "not compiled: the model has no input signature"
    from serving.compiled import NotCompilable, compile_pipeline, probe_frame, verify

    try:
        compiled = compile_pipeline(model)
        probes = validate(probe_frame(compiled, [c.name for c in spec], example), spec)
        diff = verify(model, compiled, probes.columns, probes.frame)
    except NotCompilable as exc:
        return SklearnImpl(model), "sklearn", f"not compiled: {exc}"
    except Exception as exc:  # a probe the model or the signature refuses: stay with sklearn
        log.warning("model not compiled, its check failed: %s", exc)
        return SklearnImpl(model), "sklearn", f"not compiled: the check failed: {exc}"
    if diff > COMPILE_TOLERANCE:
        log.warning("model not compiled: its answers differ from sklearn's by %s", diff)
        return SklearnImpl(model), "sklearn", \
            f"not compiled: answers differ from sklearn's by {diff:.3g} on probe rows"
    return CompiledImpl(compiled), "compiled", ""


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


# -- the local cache --------------------------------------------------------------------

class ModelCache:
    """`{dir}/{model}/versions/{version}/` (MLflow model dirs) and
    `{dir}/{model}/aliases/{alias}.json` (the last good version of each alias)."""

    def __init__(self, root: str | Path, name: str, keep: int = 5) -> None:
        self.root = Path(root) / name.replace("/", "_")
        self.keep = keep

    def version_dir(self, version: str) -> Path:
        return self.root / "versions" / str(version)

    def fetch(self, client, name: str, version: str, tracking_uri: str) -> Path:
        """The local directory of `version`, downloaded through `client` if not cached."""
        dst = self.version_dir(version)
        if (dst / "MLmodel").is_file():
            return dst
        from mlflow.artifacts import download_artifacts

        # Resolve the artifact location with our own client: `models:/` URIs would be
        # resolved against the process-wide tracking URI, not this app's registry.
        uri = client.get_model_version_download_uri(name, version)
        if uri.startswith("models:/m-"):  # an MLflow 3 LoggedModel
            uri = client.get_logged_model(uri[len("models:/"):].split("/")[0]).artifact_location
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".tmp-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            local = Path(download_artifacts(artifact_uri=uri, dst_path=str(tmp),
                                            tracking_uri=tracking_uri))
            if not (local / "MLmodel").is_file():
                found = next(tmp.rglob("MLmodel"), None)
                if found is None:
                    raise RuntimeError(f"models:/{name}/{version} has no MLmodel file")
                local = found.parent
            try:
                os.rename(local, dst)
            except OSError:
                if not (dst / "MLmodel").is_file():  # not another worker's rename: retry
                    shutil.rmtree(dst, ignore_errors=True)
                    os.rename(local, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dst

    def point(self, alias: str, version: str, run_id: str | None) -> None:
        path = self.root / "aliases" / f"{alias}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{alias}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
        tmp.write_text(json.dumps({"version": str(version), "run_id": run_id,
                                   "saved_at": time.time()}))
        os.replace(tmp, path)
        self.prune()

    def pointed(self, alias: str) -> dict | None:
        path = self.root / "aliases" / f"{alias}.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return doc if (self.version_dir(doc.get("version", "")) / "MLmodel").is_file() else None

    def prune(self) -> None:
        """Keep the versions an alias points to and the `keep` newest others."""
        versions = self.root / "versions"
        try:
            pinned = {json.loads(p.read_text()).get("version")
                      for p in (self.root / "aliases").glob("*.json")}
            dirs = [d for d in versions.iterdir() if d.is_dir() and not d.name.startswith(".")]
        except (OSError, ValueError):
            return
        dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
        for d in [d for d in dirs if d.name not in pinned][self.keep:]:
            shutil.rmtree(d, ignore_errors=True)


# -- the manager -------------------------------------------------------------------------

class ModelManager:
    STAMP_CHECK = 0.5  # seconds between looks at the shared reload stamp

    def __init__(self, config, metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.name = config.model_name
        self.alias = config.model_alias
        self.cache = ModelCache(config.model_cache_dir, self.name)
        self.current: LoadedModel | None = None
        self.challenger: LoadedModel | None = None
        self._last_error: str | None = None
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None
        self._stamp = self.cache.root / "reload.stamp"
        self._stamp_seen = self._stamp_mtime()
        self.ready = threading.Event()
        # Registry calls must fail fast when it is down: serving goes on regardless.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(config.registry_timeout))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # MLflow refuses to unpickle (or un-skops) a model unless this is set: the
        # configured registry is this service's trust boundary, so serving opts in unless
        # the operator set the variable (MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false refuses).
        if config.trust_registry:
            os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")

    @property
    def last_error(self) -> str | None:
        """Why the last load failed (shown in /ready and /version): URLs with
        credentials in them are masked."""
        return self._last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._last_error = redact_credentials(value)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _next_poll(self) -> float:
        interval = self.config.reload_interval
        if self.current is None:  # nothing served yet: keep trying, a little apart
            return time.monotonic() + (min(interval, 2.0) if interval > 0 else 2.0)
        return time.monotonic() + interval if interval > 0 else float("inf")

    def _run(self) -> None:
        try:
            self.initial_load()
        except Exception:
            log.exception("initial model load failed")
        next_poll = self._next_poll()
        while not self._stop.wait(self.STAMP_CHECK):
            stamp = self._stamp_mtime()
            due = time.monotonic() >= next_poll
            if stamp != self._stamp_seen:
                self._stamp_seen = stamp
                due = True
            if not due:
                continue
            try:
                self.poll()
            except Exception:
                log.exception("model poll failed")
            next_poll = self._next_poll()

    # -- registry ------------------------------------------------------------------------
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.config.tracking_uri,
                                        registry_uri=self.config.registry)
        return self._client

    def resolve(self, alias: str):
        """The model version the alias points to now."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
                raise AliasNotFound(f"models:/{self.name}@{alias}: {exc.message}") from None
            raise RegistryUnavailable(f"registry at {self.config.registry}: {exc}") from None
        except Exception as exc:
            raise RegistryUnavailable(f"registry at {self.config.registry}: {exc}") from None

    def _load_version(self, mv, alias: str) -> LoadedModel:
        path = self.cache.fetch(self.client(), self.name, mv.version, self.config.tracking_uri)
        model = load_local(path, self.name, mv.version, alias, mv.run_id, "registry",
                           self.config.compile_model)
        self.cache.point(alias, mv.version, model.run_id)
        return model

    # -- loading -------------------------------------------------------------------------
    def initial_load(self) -> None:
        """Registry first; else the cached last good version; else the fallback rules."""
        result = self.reload()
        if self.current is not None:
            return
        if self.load_from_cache() or self.load_fallback():
            return
        log.error("no model to serve yet: %s", result.get("error"))

    def load_from_cache(self) -> bool:
        doc = self.cache.pointed(self.alias)
        if doc is None:
            return False
        try:
            model = load_local(self.cache.version_dir(doc["version"]), self.name,
                               doc["version"], self.alias, doc.get("run_id"), "cache",
                               self.config.compile_model)
        except Exception as exc:
            log.exception("cached model %s could not be loaded", doc)
            self.last_error = f"cache: {exc}"
            self.metrics.reloads.labels("failure").inc()
            return False
        log.warning("serving %s version %s from the local cache", self.name, doc["version"])
        self._swap(model)
        self.metrics.reloads.labels("success").inc()
        return True

    def load_fallback(self) -> bool:
        setting = self.config.fallback
        if not setting:
            return False
        from serving.fallback import RuleModel

        try:
            rules = RuleModel.load(setting)
        except Exception as exc:
            log.exception("fallback rules %s could not be loaded", setting)
            self.last_error = f"fallback: {exc}"
            return False
        model = LoadedModel(self.name, "fallback", self.alias, None, "fallback", time.time(),
                            f"rules:{rules.name}@{rules.version}", rules.spec, rules,
                            rules.source, "rules")
        log.warning("no model could be loaded: answering with the fallback rules %s",
                    rules.source)
        self._swap(model)
        return True

    def reload(self, force: bool = False) -> dict:
        """Resolve the alias and load it if it moved. Never raises."""
        with self._load_lock:
            previous = self.current
            try:
                mv = self.resolve(self.alias)
            except AliasNotFound as exc:
                self.last_error = str(exc)
                self.metrics.reloads.labels("not_found").inc()
                return {"result": "not_found", "error": self.last_error}
            except RegistryUnavailable as exc:
                self.last_error = str(exc)
                self.metrics.reloads.labels("unavailable").inc()
                return {"result": "unavailable", "error": self.last_error}
            cur = self.current
            if cur is not None and not cur.fallback and cur.version == str(mv.version) \
                    and not force:
                if cur.source == "cache":
                    self.current = dataclasses.replace(cur, source="registry")
                return {"result": "unchanged", "current": self.current.describe()}
            try:
                model = self._load_version(mv, self.alias)
            except Exception as exc:
                error = f"version {mv.version}: {exc}"
                if error != self.last_error:  # once per distinct failure, not every poll
                    log.exception("loading %s version %s failed", self.name, mv.version)
                self.last_error = error
                self.metrics.reloads.labels("failure").inc()
                return {"result": "failure", "error": self.last_error}
            self._swap(model)
            self.last_error = None
            self.metrics.reloads.labels("success").inc()
            log.info("serving %s version %s (%s)", self.name, model.version, self.alias)
            return {"result": "success",
                    "previous": previous.describe() if previous else None,
                    "current": model.describe()}

    def reload_challenger(self) -> dict:
        with self._load_lock:
            try:
                mv = self.resolve(self.config.challenger_alias)
            except AliasNotFound:
                self.challenger = None
                return {"result": "not_found"}
            except RegistryUnavailable as exc:
                return {"result": "unavailable", "error": redact_credentials(str(exc))}
            cur = self.challenger
            if cur is not None and cur.version == str(mv.version):
                return {"result": "unchanged"}
            try:
                self.challenger = self._load_version(mv, self.config.challenger_alias)
            except Exception as exc:
                log.exception("loading challenger version %s failed", mv.version)
                return {"result": "failure", "error": redact_credentials(str(exc))}
            return {"result": "success", "current": self.challenger.describe()}

    def poll(self) -> dict:
        result = self.reload()
        if self.current is None and result["result"] in ("unavailable", "not_found"):
            self.load_from_cache() or self.load_fallback()
        if self.config.shadow:
            self.reload_challenger()
        return result

    def reload_now(self) -> dict:
        """The admin reload: this worker now, the others at their next stamp check."""
        self._touch_stamp()
        result = self.reload()
        if self.current is None and result["result"] in ("unavailable", "not_found"):
            self.load_from_cache() or self.load_fallback()
        if self.config.shadow:
            result["challenger"] = self.reload_challenger()
        return result

    def _swap(self, model: LoadedModel) -> None:
        self.current = model  # the atomic reference swap
        self.metrics.set_model(model.name, model.version, model.alias, model.fallback)
        self.ready.set()

    def _stamp_mtime(self) -> float:
        try:
            return self._stamp.stat().st_mtime_ns
        except OSError:
            return 0

    def _touch_stamp(self) -> None:
        try:
            self._stamp.parent.mkdir(parents=True, exist_ok=True)
            self._stamp.write_text(f"{time.time()} {os.getpid()}\n")
            self._stamp_seen = self._stamp_mtime()
        except OSError:
            log.warning("could not touch %s", self._stamp)


# -- shadow scoring ---------------------------------------------------------------------

class ShadowScorer:
    """Scores the champion's rows with the challenger on its own thread; logs, never
    answers. A bounded queue: under overload, shadow rows are dropped, never requests."""

    def __init__(self, manager: ModelManager, prediction_log, metrics, maxsize: int = 1000):
        import queue

        self.manager = manager
        self.log = prediction_log
        self.metrics = metrics
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
            self._thread.start()

    def submit(self, df: pd.DataFrame, ids: list, ts: float, champion_version: str) -> None:
        """Queue the request's rows (as received: the challenger's own signature is
        checked on the shadow thread) for the challenger."""
        challenger = self.manager.challenger
        if challenger is None or challenger.version == champion_version:
            return
        try:
            self._q.put_nowait((challenger, df, ids, ts))
        except Exception:
            self.metrics.log_records.labels("shadow_dropped").inc(len(ids))

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        from serving.ids import new_ids
        from serving.store.batch import LogBatch

        while True:
            item = self._q.get()
            if item is None:
                return
            challenger, df, ids, ts = item
            try:
                start = time.perf_counter()
                checked = validate(df, challenger.spec)
                labels, probs = challenger.predict(checked)
                latency = (time.perf_counter() - start) * 1000.0
                self.metrics.shadow_predictions.labels(challenger.version).inc(len(ids))
                self.log.submit(LogBatch(
                    ids=new_ids(len(ids)), ts=ts, model_name=challenger.name,
                    model_version=challenger.version, model_alias=challenger.alias,
                    features=checked, predictions=labels.tolist(),
                    probabilities=None if probs is None else probs.tolist(),
                    latency_ms=latency, shadow_of=list(ids)))
            except Exception as exc:
                self.metrics.log_records.labels("shadow_failed").inc(len(ids))
                log.warning("shadow scoring with version %s failed: %s", challenger.version, exc)
