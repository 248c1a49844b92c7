"""The two hidden failures of issue 13 through the real services: a model trained by
`python -m modelwatch.training.train --segments channel --sensitive region` into a real MLflow server,
simulated traffic scored by the real serving app into a real SQLite prediction log, and
`Monitor.run_once()` interval after interval with the built-in rules on. The same windows'
/metrics then go through the Prometheus rules (promtool, ALERTS as Prometheus computes it).

One broken channel raises SegmentDegraded, and a truth that treats a region differently
raises FairnessGapExceeded; each one alone, and nothing at all on baseline traffic.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.serving.app import create_app as create_serving_app
from modelwatch.serving.app import shutdown_app
from modelwatch.training.simulator import generate
from prometheus_client.parser import text_string_to_metric_families

from modelwatch.log import open_store
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_monitor_real import ROOT, send_through_serving
from tests.stack_config import contract as c

pytestmark = pytest.mark.slow
PROMTOOL = shutil.which("promtool")
INTERVAL = 30  # seconds between windows, the monitor's default
BATCH = 500  # predictions per interval: 1,000 a minute; a window holds the newest 2,000
TRAIN_ROWS = 60_000  # 9,000 reference rows: about 900 for the broker channel (a tenth)
MAX_STEPS = 10


@dataclass
class Step:
    phase: str
    firing: list[str]
    metrics: str
    status: dict


@dataclass
class Stream:
    steps: list[Step] = field(default_factory=list)
    onsets: dict[str, int] = field(default_factory=dict)  # phase -> index of its first step
    runner: RecordingRunner | None = None


@pytest.fixture(scope="module")
def stream(mlflow_url, tmp_path_factory) -> Stream:
    tmp = tmp_path_factory.mktemp("segments-fairness")
    model = f"credit-default-segments-{uuid.uuid4().hex[:8]}"
    with open(tmp / "train.log", "ab") as log:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "modelwatch.training.train",
                "--n-rows",
                str(TRAIN_ROWS),
                "--model-name",
                model,
                "--promote",
                "always",
                "--segments",
                "channel",
                "--sensitive",
                "region",
            ],
            cwd=ROOT,
            env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_url},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=900,
        )
    store_url = f"sqlite:///{tmp / 'predictions.db'}"
    serving = create_serving_app(
        {
            "tracking_uri": mlflow_url,
            "model_name": model,
            "store_url": store_url,
            "spill_dir": str(tmp / "spill"),
            "model_cache_dir": str(tmp / "cache"),
            "reload_interval": 60.0,
            "feedback_wait": 0.3,
        }
    )
    state = serving.extensions["modelwatch"]
    store = open_store(store_url)
    out = Stream(runner=RecordingRunner())
    # the loan's favourable outcome is "no default": selection rate = share approved
    config = MonitorConfig.from_env(
        tracking_uri=mlflow_url,
        model_name=model,
        store_url=store_url,
        window_rows=2000,
        min_window_rows=500,
        log_to_mlflow=False,
        builtin_alerts=True,
        fairness_favourable="0",
        retrain_cooldown_seconds=0,
    )
    app = create_app(config, store=store, runner=out.runner, start=False)
    clock = iter(range(0, 10_000, INTERVAL))
    app.extensions["modelwatch"].rules._clock = lambda: next(clock)  # one interval per window
    monitor, client = app.extensions["modelwatch"].monitor, app.test_client()
    seed = iter(range(1000, 2000))
    try:
        assert state.models.ready.wait(120), state.models.last_error
        serving_client = serving.test_client()

        def step(name: str, scenario: str) -> list[str]:
            send_through_serving(serving_client, state, generate(BATCH, scenario, seed=next(seed)))
            assert monitor.run_once() is not None, monitor.last_error
            firing = list(app.extensions["modelwatch"].rules.firing)
            out.steps.append(
                Step(
                    name,
                    firing,
                    client.get("/metrics").get_data(as_text=True),
                    client.get("/status", query_string={"model": model}).json,
                )
            )
            return firing

        # a phase: its traffic, and the alert that ends it (None: as many intervals as
        # it takes the window to hold that traffic only, and a few more)
        for name, scenario, alert in (
            ("baseline", "baseline", None),
            ("channel_break", "channel_break", "SegmentDegraded"),
            ("recovery", "baseline", None),
            ("group_bias", "group_bias", "FairnessGapExceeded"),
        ):
            out.onsets[name] = len(out.steps)
            for _ in range(MAX_STEPS if alert else 2000 // BATCH + 2):
                if step(name, scenario) and alert:
                    break
        yield out
    finally:
        shutdown_app(serving)
        store.close()


def _story(stream: Stream) -> list:
    """What each window showed, for a failure's message."""
    out = []
    for s in stream.steps:
        w = s.status["last_window"]
        out.append(
            (
                s.phase,
                s.firing,
                {k: round(v["value"], 3) for k, v in w["metrics"].items() if v["alert"]},
                w["drift_share"],
                [
                    (
                        n,
                        [k for k, m in g["metrics"].items() if m["alert"]],
                        round(g["drift_share"], 2),
                    )
                    for n, g in w["segments"].items()
                    if g["alert"]
                ],
                {
                    a: (f["alert"], f.get("intervals"))
                    for a, f in w["fairness"].items()
                    if f["alert"]
                },
            )
        )
    return out


def phase(stream: Stream, name: str) -> list[Step]:
    return [s for s in stream.steps if s.phase == name]


def test_baseline_raises_nothing(stream):
    assert all(s.firing == [] for s in phase(stream, "baseline")), "\n".join(
        map(str, _story(stream))
    )
    assert all(
        not s.status["last_window"]["segments"].get(n, {}).get("alert")
        for s in phase(stream, "baseline")
        for n in s.status["last_window"]["segments"]
    )
    # once the broken rows have left the window, the segment alert stops
    recovery = phase(stream, "recovery")
    assert (
        all(s.firing in ([], ["SegmentDegraded"]) for s in recovery) and recovery[-1].firing == []
    )
    last = phase(stream, "baseline")[-1].status["last_window"]
    assert set(last["segments"]) >= {
        "channel=web",
        "channel=branch",
        "channel=mobile",
        "channel=broker",
    }
    broker = last["segments"]["channel=broker"]
    assert (
        set(broker) >= {"rows", "share", "drift_share", "metrics"} and 0.05 < broker["share"] < 0.15
    )
    assert set(broker["metrics"]) >= {"live_accuracy", "estimated_accuracy"}
    assert set(broker["metrics"]["live_accuracy"]) == {"value", "lower", "upper", "alert"}
    region = last["fairness"]["region"]
    assert set(region) >= {
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "by_group",
        "alert",
    }
    assert set(region["by_group"]) == {"north", "south", "east", "west"}
    assert set(region["by_group"]["south"]) == {"rows", "selection_rate", "tpr", "fpr", "accuracy"}
    assert region["alert"] is False


def test_a_broken_channel_raises_segment_degraded_and_nothing_else(stream):
    steps = phase(stream, "channel_break")
    assert steps[-1].firing == ["SegmentDegraded"], "\n".join(map(str, _story(stream)))
    assert all(s.firing in ([], ["SegmentDegraded"]) for s in steps)
    last = steps[-1].status["last_window"]
    broker = last["segments"]["channel=broker"]
    assert broker["alert"] and {"home_ownership", "loan_purpose"} <= set(broker["drifted_features"])
    assert not last["dataset_drift"] and last["drift_share"] < 0.15  # the population holds
    assert not [n for n, s in last["segments"].items() if s["alert"] and n != "channel=broker"]
    # the delay from onset, at 1,000 predictions a minute and a window every 30 s
    print(
        f"\nSegmentDegraded fired {len(steps)} intervals ({len(steps) * INTERVAL} s) after the onset"
    )


def test_a_biased_truth_raises_fairness_gap_exceeded_and_nothing_else(stream):
    steps = phase(stream, "group_bias")
    assert steps[-1].firing == ["FairnessGapExceeded"], "\n".join(map(str, _story(stream)))
    assert all(s.firing in ([], ["FairnessGapExceeded"]) for s in steps)
    region = steps[-1].status["last_window"]["fairness"]["region"]
    assert (
        region["alert"]
        and region["equalized_odds_difference"] > region["thresholds"]["max_difference"]
    )
    assert (
        region["intervals"]["equalized_odds_difference"][0] > region["thresholds"]["max_difference"]
    )
    # the rates are of the favourable class (approval): the model approves (misses) far
    # fewer of the south's defaulters than of the others'
    fpr = {g: v["fpr"] for g, v in region["by_group"].items()}
    assert min(fpr, key=fpr.get) == "south", region["by_group"]


def test_nothing_asked_for_a_retraining(stream):
    assert stream.runner.calls == []


def _series_file(stream: Stream, path: Path) -> None:
    """A promtool test of the rules on every window's /metrics, one window per interval:
    at each window, the alerts Prometheus fires are those the built-in rules fired."""
    samples: dict[str, list] = {}
    for i, s in enumerate(stream.steps):
        for family in text_string_to_metric_families(s.metrics):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = {"job": "monitor", "instance": "m:8001", **sample.labels}
                key = (
                    sample.name
                    + "{"
                    + ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                    + "}"
                )
                value = (
                    i * INTERVAL
                    if sample.name == "modelwatch_monitor_last_run_timestamp_seconds"
                    else sample.value
                )
                samples.setdefault(key, ["_"] * len(stream.steps))[i] = repr(float(value))
    up = [
        {"series": f'up{{job="{job}", instance="{job}:1"}}', "values": f"1x{len(stream.steps)}"}
        for job in ("serving", "monitor")
    ]
    firing = [
        {
            "expr": 'count by (alertname) (ALERTS{alertstate="firing"})',
            "eval_time": f"{i * INTERVAL}s",
            "exp_samples": [{"labels": f'{{alertname="{a}"}}', "value": 1} for a in s.firing],
        }
        for i, s in enumerate(stream.steps)
    ]
    doc = {
        "rule_files": [str(p) for p in c.rule_files()],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": f"{INTERVAL}s",
                "promql_expr_test": firing,
                "input_series": up
                + [{"series": k, "values": " ".join(v)} for k, v in samples.items()],
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc, width=10_000))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package `prometheus`)"
)
def test_the_prometheus_rules_fire_what_the_builtin_ones_fire(stream, tmp_path):
    assert any(s.firing for s in stream.steps)  # both alerts are among the windows checked
    _series_file(stream, tmp_path / "windows_test.yml")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(tmp_path / "windows_test.yml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_onboard_records_the_columns_and_the_environment_overrides_them(
    mlflow_url, tmp_path, monkeypatch
):
    import mlflow
    from mlflow import MlflowClient
    from modelwatch.monitoring.calculators.fairness import Fairness
    from modelwatch.monitoring.calculators.segments import Segments
    from modelwatch.monitoring.service.context import VersionContext
    from modelwatch.training.simulator import TARGET

    from modelwatch.cli.onboard import OnboardError, onboard
    from tests.serving import modelkit

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    mlflow.set_tracking_uri(mlflow_url)
    client = MlflowClient(mlflow_url)
    name = f"credit-onboard-segments-{uuid.uuid4().hex[:8]}"
    version = modelkit.register_version(mlflow_url, name, seed=1)
    path = tmp_path / "reference.parquet"
    generate(6000, "baseline", seed=5).to_parquet(path)
    with pytest.raises(OnboardError, match="planet"):
        onboard(name, str(path), TARGET, version, client=client, segments=("planet",))
    onboard(
        name,
        str(path),
        TARGET,
        version,
        client=client,
        segments=("channel",),
        sensitive=("region",),
    )
    tags = client.get_model_version(name, version).tags
    assert tags["modelwatch.segments"] == "channel" and tags["modelwatch.sensitive"] == "region"

    def kinds(config=None) -> set[type]:
        return {
            type(c) for c in VersionContext.load(client, name, version, 2000, config).calculators
        }

    assert {Segments, Fairness} <= kinds()
    # MODELWATCH_SEGMENTS / MODELWATCH_SENSITIVE win over the tags, even set empty
    monkeypatch.setenv("MODELWATCH_SEGMENTS", "")
    monkeypatch.setenv("MODELWATCH_SENSITIVE", "channel")
    config = MonitorConfig.from_env()
    assert Segments not in kinds(config) and Fairness in kinds(config)
    monkeypatch.setenv("MODELWATCH_SEGMENTS", "planet")
    with pytest.raises(ValueError, match="planet"):
        kinds(MonitorConfig.from_env())
