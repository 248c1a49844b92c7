"""`modelwatch demo`: the whole story on the embedded stack, narrated.

train and register -> serve -> baseline traffic -> a launch in a new market (covariate
drift) -> DataDriftDetected -> retraining -> gated promotion -> hot reload -> recovery ->
broken upstream data (integrity_swap) -> a page, and no retraining. Then a timeline, an
HTML report with plots, and the stack stays up to explore.

Durations come from the environment (MODELWATCH_DEMO_*, modelwatch/settings.py), so CI
can run the same story faster. The model is MODELWATCH_MODEL_NAME's, under the alias
MODELWATCH_MODEL_ALIAS, as serving and the monitor see them.

The milestones come from whichever alerting path is live: Prometheus (with Alertmanager
calling the monitor's webhook) where the machine has them, the monitor's built-in rules
otherwise; the narration names the one that fired. Waits are counted in seconds of a
quiet machine (see `Patience`), so a busy machine makes the story slower, not a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from modelwatch.cli.demo_report import write_report
from modelwatch.cli.stack import Stack
from modelwatch.cli.traffic import simulate
from modelwatch.settings import read

BIN = Path(sys.executable).parent


class Patience:
    """A wait's budget in seconds of a quiet machine. While the machine runs more tasks
    than it has cores, each second spends only cores / load of the budget: the loop's
    steps (windows, training, reloads) take that much longer there."""

    def __init__(self, seconds: float):
        self.left = seconds
        self._last = time.monotonic()

    def lasts(self) -> bool:
        now = time.monotonic()
        self.left -= (now - self._last) / _slowdown()
        self._last = now
        return self.left > 0


def _slowdown() -> float:
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


@dataclass(frozen=True)
class AlertPath:
    """Where the alerts are evaluated: Prometheus, or the monitor's built-in rules (which
    the monitor runs when the stack has no Prometheus and Alertmanager, and reports in
    /status as `builtin_alerts_firing`)."""

    stack: Stack
    builtin: bool

    @classmethod
    def live(cls, stack: Stack) -> AlertPath:
        return cls(stack, model_status(stack, 10).get("builtin_alerts_firing") is not None)

    def describe(self) -> str:
        if self.builtin:
            return (
                "the monitor's built-in rules (Prometheus or Alertmanager is not installed) "
                "-> retraining trigger"
            )
        return "Prometheus rules -> Alertmanager -> monitor webhook"

    def fired(self, alertname: str) -> str:
        if self.builtin:
            return f"monitor's built-in rules: {alertname} firing -> retraining trigger"
        return f"Prometheus: {alertname} firing -> Alertmanager -> monitor webhook"

    def active(self) -> set[str]:
        """The alerts up now: pending or firing in Prometheus; firing in the monitor, which
        reports no pending ones."""
        if self.builtin:
            return set(self._monitor_firing())
        return {a["labels"]["alertname"] for a in self._prometheus_alerts()}

    def firing(self, alertname: str) -> bool:
        if self.builtin:
            return alertname in self._monitor_firing()
        return any(
            a["labels"]["alertname"] == alertname and a["state"] == "firing"
            for a in self._prometheus_alerts()
        )

    def _monitor_firing(self) -> list[str]:
        return model_status(self.stack)["builtin_alerts_firing"] or []

    def _prometheus_alerts(self) -> list[dict]:
        return requests.get(self.stack.url("prometheus") + "/api/v1/alerts", timeout=3).json()[
            "data"
        ]["alerts"]


@dataclass
class Timeline:
    started: float = field(default_factory=time.time)
    events: list[tuple[float, str]] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.events.append((time.time(), text))
        print(f"[{time.time() - self.started:6.1f}s] {text}", flush=True)

    def text(self) -> str:
        return "\n".join(f"{t - self.started:7.1f}s  {what}" for t, what in self.events)


def run(stack: Stack | None = None) -> int:
    stack = stack or Stack.default()
    timeline = Timeline()
    rate = read("MODELWATCH_DEMO_RATE")
    timeline.say(
        "starting the embedded stack (MLflow server, serving, monitor, Prometheus, Alertmanager)"
    )
    states = stack.up()
    timeline.say("stack: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    alerts = AlertPath.live(stack)
    timeline.say(f"alerting: {alerts.describe()}")
    env = {**os.environ, **stack.service_env()}
    model = Model(read("MODELWATCH_MODEL_NAME", env), read("MODELWATCH_MODEL_ALIAS", env))
    client = MlflowClient(stack.url("mlflow"))
    if _aliased_version(client, model) is None:
        timeline.say(
            f"training {model.name} on 20,000 simulated rows: mlflow run . (main entry point)"
        )
        started = time.monotonic()
        done = subprocess.run(
            [str(BIN / "modelwatch"), "train"], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        timeline.say(f"trained, logged, registered and gated in {time.monotonic() - started:.0f}s")
    champion = _aliased_version(client, model)
    timeline.say(f"{model.name} version {champion} holds alias {model.alias}")
    _wait(
        lambda: (
            requests.get(stack.url("serving") + "/ready", timeout=3).ok
            and _served(stack) == champion
        ),
        120,
    )
    timeline.say(f"serving answers with version {champion} at {stack.url('serving')}/predict")

    timeline.say(f"baseline traffic: {rate:.0f} rows/s with labels 1 s later")
    results = []
    seen = _alerts_while(
        alerts,
        lambda: results.append(
            _simulate(stack, "baseline", rate, read("MODELWATCH_DEMO_BASELINE_SECONDS"), seed=1)
        ),
    )
    timeline.say(f"baseline done: {results[0].line()}; {_window_line(stack)}")
    timeline.say(f"alerts during baseline: {', '.join(sorted(seen)) or 'none'}")

    timeline.say(
        "a launch in a new market: incomes fall and a new region appears (covariate drift)"
    )
    new_version = _drift_until_promoted(stack, alerts, client, model, champion, rate, timeline)
    if new_version is None:
        timeline.say("the loop did not close in time: see `modelwatch status` and run/logs/")
        _finish(stack, client, model, timeline)
        return 1
    timeline.say(f"recovery: version {new_version} serves the new market")
    _simulate(stack, "covariate", rate, read("MODELWATCH_DEMO_RECOVERY_SECONDS"), seed=50)
    timeline.say(f"after recovery: {_window_line(stack)}")

    timeline.say("broken upstream data: age and debt_to_income arrive swapped")
    retrains = _retrains(stack)
    seen = _alerts_while(
        alerts,
        lambda: _simulate(
            stack, "integrity_swap", rate, read("MODELWATCH_DEMO_INTEGRITY_SECONDS"), seed=80
        ),
    )
    timeline.say(
        f"alerts raised: {', '.join(sorted(seen)) or 'none'}; retrainings started: "
        f"{sum(_retrains(stack).values()) - sum(retrains.values()):.0f} "
        "(integrity pages a person, never retrains)"
    )
    _finish(stack, client, model, timeline)
    return 0


def _simulate(stack: Stack, scenario: str, rate: float, duration: float, seed: int):
    """The scenario on the stack's serving, labels 1 s later, sent with the stack's token."""
    return simulate(
        stack.url("serving"),
        scenario,
        rate=rate,
        duration=duration,
        label_delay=1,
        seed=seed,
        feedback_token=stack.tokens()["MODELWATCH_FEEDBACK_TOKEN"],
    )


@dataclass(frozen=True)
class Model:
    """The registered model the story is about, and the alias it is served under."""

    name: str
    alias: str


def _drift_until_promoted(stack, alerts, client, model, champion, rate, timeline) -> str | None:
    stop = threading.Event()

    def stream():
        seed = 10
        while not stop.is_set():
            _simulate(stack, "covariate", rate, 10, seed=seed)
            seed += 1

    traffic = threading.Thread(target=stream, daemon=True)
    traffic.start()
    onset = time.monotonic()
    retrains_before = _retrains(stack)
    milestones = [
        (
            "drift",
            lambda: _alerting_drift(stack, alerts),
            lambda v: f"monitor: drift in {', '.join(v)}",
        ),
        (
            "alert",
            lambda: alerts.firing("DataDriftDetected"),
            lambda v: alerts.fired("DataDriftDetected"),
        ),
        (
            "retrain",
            lambda: _metric(stack, "modelwatch_retrain_in_progress") == 1,
            lambda v: "monitor: retraining started (mlflow run . -e retrain)",
        ),
        (
            "promoted",
            lambda: _aliased_version(client, model) not in (None, champion),
            lambda v: f"gate approved the candidate: alias {model.alias} moved",
        ),
        (
            "served",
            lambda: _served(stack) not in (None, champion),
            lambda v: "serving hot-reloaded the new version, no restart",
        ),
    ]
    try:
        patience = Patience(read("MODELWATCH_DEMO_TIMEOUT_SECONDS"))
        for name, probe, describe in milestones:
            while patience.lasts():
                value = _safe(probe)
                if value:
                    timeline.say(
                        f"{describe(value)} ({time.monotonic() - onset:.0f}s after drift onset)"
                    )
                    break
                if name == "retrain" and _aliased_version(client, model) not in (None, champion):
                    break  # it ran between two looks
                if name in ("retrain", "promoted") and (
                    ended := _retrain_ended_unpromoted(stack, client, model, retrains_before)
                ):
                    timeline.say(ended)
                    return None
                time.sleep(1)
            else:
                return None
        version = _aliased_version(client, model)
        tags = client.get_model_version(model.name, version).tags
        timeline.say(
            f"version {version}: validation_status={tags.get('validation_status')}, "
            f"trigger={tags.get('trigger')}"
        )
        return version
    finally:
        stop.set()
        traffic.join()


def _retrain_ended_unpromoted(
    stack: Stack, client: MlflowClient, model: Model, before: dict[str, float]
) -> str | None:
    """What went wrong, if a retraining ended since `before` without a promotion: the
    story cannot close its loop then, so it says why instead of waiting."""
    now = _retrains(stack)
    if now.get("failed", 0) > before.get("failed", 0):
        return f"the retraining failed: see {stack.run_dir / 'logs' / 'monitor.log'}"
    if now.get("rejected", 0) > before.get("rejected", 0):
        versions = client.search_model_versions(f"name='{model.name}'")
        newest = max(versions, key=lambda v: int(v.version))
        status = newest.tags.get("validation_status")
        return f"the gate rejected the candidate: version {newest.version}: {status}"
    return None


def _finish(stack: Stack, client: MlflowClient, model: Model, timeline: Timeline) -> None:
    path = write_report(client, stack.run_dir / "demo-report.html", timeline, model.name)
    print("\nTimeline\n" + timeline.text())
    print(f"\nReport with plots: {path}")
    print(
        f"MLflow UI:     {stack.url('mlflow')}\nServing API:   {stack.url('serving')}/predict "
        f"(OpenAPI at /openapi.json)"
    )
    running = stack.status()
    for name in ("prometheus", "alertmanager"):
        if running[name]["running"]:
            print(f"{name.capitalize() + ':':15}{stack.url(name)}")
    print("The stack stays up: `modelwatch status`, `modelwatch down`.")


def _aliased_version(client: MlflowClient, model: Model) -> str | None:
    try:
        return client.get_model_version_by_alias(model.name, model.alias).version
    except Exception:
        return None


def _served(stack: Stack) -> str | None:
    return _safe(
        lambda: requests.get(stack.url("serving") + "/model", timeout=3).json().get("version")
    )


def _window(stack: Stack) -> dict:
    return _safe(lambda: model_status(stack).get("last_window")) or {}


def model_status(stack: Stack, timeout: float = 3) -> dict:
    """The monitor's /status of the demo's model (MODELWATCH_MODEL_NAME)."""
    url = stack.url("monitor") + "/status"
    params = {"model": read("MODELWATCH_MODEL_NAME", {**os.environ, **stack.service_env()})}
    return requests.get(url, params=params, timeout=timeout).json()


def _alerting_drift(stack: Stack, alerts: AlertPath) -> list[str] | None:
    """The drifted features once DataDriftDetected is up on the live alerting path. The
    first drifted window may hold only a few shifted rows and name only the first column
    to cross; this is the drift the alert (and so the retraining) acts on."""
    if "DataDriftDetected" in alerts.active():
        return _window(stack).get("drifted_features")
    return None


def _window_line(stack: Stack) -> str:
    w = _window(stack)
    acc, est = w.get("live_accuracy"), w.get("estimated_accuracy")
    return (
        f"last window (version {w.get('version')}): live accuracy {acc:.3f}, estimated {est:.3f}, "
        f"drifted: {', '.join(w.get('drifted_features') or []) or 'nothing'}"
        if acc is not None and est is not None
        else "no window yet"
    )


def _alerts_while(alerts: AlertPath, action) -> set[str]:
    seen: set[str] = set()
    done = threading.Event()

    def poll():
        while not done.wait(3):
            seen.update(_safe(alerts.active) or ())

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    action()
    done.set()
    poller.join()
    return seen


def _samples(stack: Stack, name: str) -> list:
    """The monitor's samples of `name` (every model's: the demo watches one)."""
    text = _safe(lambda: requests.get(stack.url("monitor") + "/metrics", timeout=3).text) or ""
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def _metric(stack: Stack, name: str) -> float | None:
    values = [s.value for s in _samples(stack, name)]
    return max(values) if values else None


def _retrains(stack: Stack) -> dict[str, float]:
    """Retrainings so far by result (promoted, rejected, failed, ...)."""
    out: dict[str, float] = {}
    for s in _samples(stack, "modelwatch_retrains_total"):
        out[s.labels["result"]] = out.get(s.labels["result"], 0) + s.value
    return out


def _safe(probe):
    try:
        return probe()
    except (requests.RequestException, ValueError, KeyError):
        return None


def _wait(predicate, timeout: float) -> None:
    patience = Patience(timeout)
    while patience.lasts() and not _safe(predicate):
        time.sleep(1)
