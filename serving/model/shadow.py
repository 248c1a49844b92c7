"""`ShadowScorer`: the challenger scores the champion's rows off the request path."""

from __future__ import annotations

import logging
import queue
import threading
import time

import numpy as np
import pandas as pd
from modelwatch.serving.ids import new_ids
from modelwatch.serving.logwriter.batch import LogBatch
from modelwatch.serving.validation import validate

log = logging.getLogger(__name__)


class ShadowScorer:
    """Scores the champion's rows with the challenger on its own thread; logs, never
    answers. A bounded queue: under overload, shadow rows are dropped, never requests."""

    def __init__(self, *, manager, prediction_log, metrics, maxsize: int = 1000) -> None:
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
        except queue.Full:
            self.metrics.log_records.labels("shadow_dropped").inc(len(ids))

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            challenger, df, ids, ts = item
            try:
                self._score(challenger, df, ids, ts)
            except Exception as exc:
                self.metrics.log_records.labels("shadow_failed").inc(len(ids))
                log.warning("shadow scoring with version %s failed: %s", challenger.version, exc)

    def _score(self, challenger, df, ids, ts) -> None:
        start = time.perf_counter()
        checked = validate(df, challenger.spec)
        prediction = challenger.predict(checked)
        latency = (time.perf_counter() - start) * 1000.0
        self.metrics.shadow_predictions.labels(challenger.version).inc(len(ids))
        scores = prediction.scores
        self.log.submit(
            LogBatch(
                ids=new_ids(len(ids)),
                ts=ts,
                model_name=challenger.name,
                model_version=challenger.version,
                model_alias=challenger.alias,
                features=checked,
                predictions=np.asarray(prediction.labels).tolist(),
                probabilities=None if scores is None else np.asarray(scores).tolist(),
                latency_ms=latency,
                shadow_of=list(ids),
                class_probabilities=prediction.proba,
                regression=challenger.task == "regression",
            )
        )
