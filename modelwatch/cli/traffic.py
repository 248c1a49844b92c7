"""`modelwatch simulate`: the simulator's stream sent to a live serving API.

Rows of a scenario go to `POST /predict` at a steady rate; their true labels follow to
`POST /feedback` after a delay, for a share of them, as labels arrive in real life, with
the bearer `feedback_token` (MODELWATCH_FEEDBACK_TOKEN) where serving requires one.

    summary = simulate("http://127.0.0.1:8000", "baseline", rate=50, duration=10)

Where no server answers, every batch counts as a failed request and the stream goes on:

>>> summary = simulate("http://127.0.0.1:9", "baseline", rate=50, duration=0.4)
>>> summary.sent, summary.predicted, summary.failed_requests
(20, 0, 2)
"""

from __future__ import annotations

import heapq
import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import requests

from modelwatch.training.simulator import FEATURES, TARGET, generate


@dataclass
class Summary:
    scenario: str
    sent: int = 0
    predicted: int = 0
    failed_requests: int = 0
    labels_sent: int = 0
    labels_accepted: int = 0
    positives: int = 0
    seconds: float = 0.0
    model_versions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        rate = self.predicted / self.seconds if self.seconds else 0.0
        versions = ",".join(f"v{v}:{n}" for v, n in sorted(self.model_versions.items()))
        return (
            f"{self.scenario}: {self.predicted}/{self.sent} predicted ({rate:.0f}/s), "
            f"{self.failed_requests} failed requests, {self.labels_accepted}/{self.labels_sent} "
            f"labels, positive rate {self.positives / max(self.predicted, 1):.2f}, "
            f"versions {versions or '-'}"
        )


def simulate(
    serving_url: str,
    scenario: str,
    rate: float = 20.0,
    duration: float = 60.0,
    batch: int = 10,
    label_delay: float = 5.0,
    label_coverage: float = 1.0,
    seed: int = 0,
    progress: bool = False,
    timeout: float = 10.0,
    feedback_token: str | None = None,
) -> Summary:
    """Stream `scenario` at `rate` rows a second for `duration` seconds; returns the counts.

    Labels due after `duration` are still sent before returning, so every covered row
    gets its label.
    """
    if rate <= 0 or duration <= 0 or batch <= 0 or not 0 <= label_coverage <= 1:
        raise ValueError(
            "rate, duration and batch must be positive and label coverage within [0, 1]"
        )
    session = requests.Session()
    feedback = _Feedback(session, serving_url, timeout, feedback_token)
    summary = Summary(scenario)
    pending: list[tuple[float, str, int]] = []  # (due time, prediction id, label)
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    n_batches = max(1, math.ceil(rate * duration / batch))
    shown = 0.0
    for i in range(n_batches):
        _pace(started + i * batch / rate)
        elapsed = time.monotonic() - started
        rows = generate(
            batch,
            scenario,
            seed=seed * 1_000_003 + i,
            progress=(elapsed / duration, min(1.0, (elapsed + batch / rate) / duration)),
        )
        _predict(
            session, serving_url, rows, summary, pending, rng, label_delay, label_coverage, timeout
        )
        _send_due(feedback, pending, summary, time.monotonic())
        if progress and time.monotonic() - shown >= _refresh_seconds():
            shown = time.monotonic()
            _show(summary, shown - started, duration)
    while pending:
        _pace(pending[0][0])
        _send_due(feedback, pending, summary, time.monotonic())
    summary.seconds = time.monotonic() - started
    if progress:
        print(file=sys.stderr)
    return summary


def _predict(
    session, url, rows, summary, pending, rng, label_delay, label_coverage, timeout
) -> None:
    records = rows[FEATURES].astype(object).where(rows[FEATURES].notna(), None).to_dict("records")
    summary.sent += len(records)
    try:
        answer = session.post(f"{url}/predict", json={"records": records}, timeout=timeout)
    except requests.RequestException:
        summary.failed_requests += 1
        return
    if answer.status_code != 200:
        summary.failed_requests += 1
        return
    body = answer.json()
    summary.predicted += len(body["predictions"])
    summary.positives += int(np.sum(np.asarray(body["predictions"]) == 1))
    version = str(body.get("model", {}).get("version"))
    summary.model_versions[version] = summary.model_versions.get(version, 0) + len(records)
    due = time.monotonic() + label_delay
    for prediction_id, label in zip(body["prediction_ids"], rows[TARGET]):
        if rng.random() < label_coverage:
            heapq.heappush(pending, (due, prediction_id, int(label)))


@dataclass(frozen=True)
class _Feedback:
    """Where labels go, and the credentials they go with."""

    session: requests.Session
    url: str
    timeout: float
    token: str | None

    def post(self, chunk: list[dict]) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.session.post(
            f"{self.url}/feedback", json={"feedback": chunk}, headers=headers, timeout=self.timeout
        )


def _send_due(feedback: _Feedback, pending, summary, now) -> None:
    due = []
    while pending and pending[0][0] <= now:
        _, prediction_id, label = heapq.heappop(pending)
        due.append({"prediction_id": prediction_id, "label": label})
    for i in range(0, len(due), 500):
        chunk = due[i : i + 500]
        summary.labels_sent += len(chunk)
        try:
            answer = feedback.post(chunk)
        except requests.RequestException:
            summary.failed_requests += 1
            continue
        if answer.ok:
            summary.labels_accepted += int(answer.json().get("accepted", 0))
        else:  # a refused token too: labels that did not arrive are a failure, not silence
            summary.failed_requests += 1


def _pace(until: float) -> None:
    delay = until - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _refresh_seconds() -> float:
    """A terminal gets a live bar; a log file a line every ten seconds."""
    return 0.25 if sys.stderr.isatty() else 10.0


def _show(summary: Summary, elapsed: float, duration: float) -> None:
    share = min(1.0, elapsed / duration)
    bar = "#" * int(share * 30)
    line = (
        f"[{bar:<30}] {elapsed:5.0f}s/{duration:.0f}s {summary.predicted} predicted, "
        f"{summary.labels_accepted} labels, {summary.failed_requests} failed"
    )
    print(
        f"\r{line}" if sys.stderr.isatty() else line,
        end="" if sys.stderr.isatty() else "\n",
        file=sys.stderr,
        flush=True,
    )
