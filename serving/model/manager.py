"""`ModelManager`: the served model, its reload by alias, and the poller thread.

The served model is one immutable `LoadedModel` held in `ModelManager.current`; a reload
builds the new one beside it and swaps the reference (atomic in CPython), so requests
never wait for or fail during a reload. A background thread polls the alias; `reload()`
does it now (the admin endpoint), and touches a stamp file so that the other gunicorn
workers poll at once too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

from modelwatch.serving.fallback import RuleModel
from modelwatch.serving.model.cache import ModelCache
from modelwatch.serving.model.loaded import LoadedModel
from modelwatch.serving.model.loader import load_local
from modelwatch.serving.model.registry import (
    AliasNotFound,
    Registry,
    RegistryUnavailable,
    VersionRef,
)
from modelwatch.serving.model.scorers import RulesEngine

from modelwatch.redaction import redact_credentials

log = logging.getLogger(__name__)


class ModelManager:
    STAMP_CHECK = 0.5  # seconds between looks at the shared reload stamp

    def __init__(self, *, config, metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.name = config.model_name
        self.alias = config.model_alias
        self.registry = Registry(tracking_uri=config.tracking_uri, registry_uri=config.registry)
        self.cache = ModelCache(
            config.model_cache_dir, registry_uri=config.registry, name=self.name
        )
        self.current: LoadedModel | None = None
        self.challenger: LoadedModel | None = None
        self._last_error: str | None = None
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamp = self.cache.root / "reload.stamp"
        self._stamp_seen = self._stamp_mtime()
        self.ready = threading.Event()

    @property
    def last_error(self) -> str | None:
        """Why the last load failed (shown in /ready and /model): URLs with
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

    # -- loading -------------------------------------------------------------------------
    def _load_version(self, ref: VersionRef, alias: str) -> LoadedModel:
        path = self.cache.fetch(
            ref, lambda dst: self.registry.download(self.name, ref.version, dst)
        )
        model = self._load_dir(path, ref, alias, "registry")
        self.cache.point(alias, ref)
        return model

    def _load_dir(self, path, ref: VersionRef, alias: str, source: str) -> LoadedModel:
        return load_local(
            path,
            name=self.name,
            version=ref.version,
            alias=alias,
            run_id=ref.run_id,
            source=source,
            compile=self.config.compile_model,
            trusted_types=self.config.skops_trusted_types,
        )

    def _serves(self, model: LoadedModel | None, ref: VersionRef) -> bool:
        """Whether `model` is `ref`'s files: cache directories are named by the version's
        identity (registry, run, source), so a number alone never matches."""
        return model is not None and model.path == str(self.cache.version_dir(ref))

    def initial_load(self) -> None:
        """Registry first; else the cached last good version; else the fallback rules."""
        result = self.reload()
        self._serve_something(result["result"])
        if self.current is None:
            log.error("no model to serve yet: %s", result.get("error"))

    def _serve_something(self, result: str) -> None:
        """While nothing is served: the cached last good version when the registry did not
        answer or its version did not load, else the fallback rules. A registry that
        answers "no such alias" is not down: what the cache holds is not what it serves."""
        if self.current is not None:
            return
        if result in ("unavailable", "failure") and self.load_from_cache():
            return
        self.load_fallback()

    def load_from_cache(self) -> bool:
        ref = self.cache.pointed(self.alias)
        if ref is None:
            return False
        try:
            model = self._load_dir(self.cache.version_dir(ref), ref, self.alias, "cache")
        except Exception as exc:
            log.exception("cached model %s could not be loaded", ref)
            self.last_error = f"cache: {exc}"
            self.metrics.reloads.labels("failure").inc()
            return False
        log.warning("serving %s version %s from the local cache", self.name, ref.version)
        self._swap(model)
        self.metrics.reloads.labels("success").inc()
        return True

    def load_fallback(self) -> bool:
        setting = self.config.fallback
        if not setting:
            return False
        try:
            rules = RuleModel.load(setting)
        except Exception as exc:
            log.exception("fallback rules %s could not be loaded", setting)
            self.last_error = f"fallback: {exc}"
            return False
        model = LoadedModel(
            name=self.name,
            version="fallback",
            alias=self.alias,
            run_id=None,
            source="fallback",
            flavor=f"rules:{rules.name}@{rules.version}",
            spec=rules.spec,
            engine=RulesEngine(rules),
            path=rules.source,
        )
        log.warning("no model could be loaded: answering with the fallback rules %s", rules.source)
        self._swap(model)
        return True

    def reload(self, force: bool = False) -> dict:
        """Resolve the alias and load it if it moved. Never raises."""
        with self._load_lock:
            previous = self.current
            try:
                ref = self.registry.resolve(self.name, self.alias)
            except AliasNotFound as exc:
                self.last_error = str(exc)
                self.metrics.reloads.labels("not_found").inc()
                return {"result": "not_found", "error": self.last_error}
            except RegistryUnavailable as exc:
                self.last_error = str(exc)
                self.metrics.reloads.labels("unavailable").inc()
                return {"result": "unavailable", "error": self.last_error}
            cur = self.current
            if self._serves(cur, ref) and not force:
                if cur.source == "cache":
                    self.current = dataclasses.replace(cur, source="registry")
                return {"result": "unchanged", "current": self.current.describe()}
            try:
                model = self._load_version(ref, self.alias)
            except Exception as exc:
                error = f"version {ref.version}: {exc}"
                if error != self.last_error:  # once per distinct failure, not every poll
                    log.exception("loading %s version %s failed", self.name, ref.version)
                self.last_error = error
                self.metrics.reloads.labels("failure").inc()
                return {"result": "failure", "error": self.last_error}
            self._swap(model)
            self.last_error = None
            self.metrics.reloads.labels("success").inc()
            log.info("serving %s version %s (%s)", self.name, model.version, self.alias)
            return {
                "result": "success",
                "previous": previous.describe() if previous else None,
                "current": model.describe(),
            }

    def reload_challenger(self) -> dict:
        with self._load_lock:
            try:
                ref = self.registry.resolve(self.name, self.config.challenger_alias)
            except AliasNotFound:
                self.challenger = None
                return {"result": "not_found"}
            except RegistryUnavailable as exc:
                return {"result": "unavailable", "error": redact_credentials(str(exc))}
            if self._serves(self.challenger, ref):
                return {"result": "unchanged"}
            try:
                self.challenger = self._load_version(ref, self.config.challenger_alias)
            except Exception as exc:
                log.exception("loading challenger version %s failed", ref.version)
                return {"result": "failure", "error": redact_credentials(str(exc))}
            return {"result": "success", "current": self.challenger.describe()}

    def poll(self) -> dict:
        result = self.reload()
        self._serve_something(result["result"])
        if self.config.shadow:
            self.reload_challenger()
        return result

    def reload_now(self) -> dict:
        """The admin reload: this worker now, the others at their next stamp check."""
        self._touch_stamp()
        result = self.reload()
        self._serve_something(result["result"])
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
