"""The contract the stack configs are checked against: the services' own metric registries
export it, and the PromQL helper the other tests rely on reads it right."""

from __future__ import annotations

import pytest

from tests.stack_config import contract as c


def test_metric_names_extraction():
    assert c.metric_names(
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(modelwatch_x_bucket{endpoint!~"/?(metrics)"}[5m])))'
    ) == {"modelwatch_x_bucket"}
    assert c.metric_names("a:b:c > 0.05 and on (job) d:e:f > 1e-3 unless g offset 1m") == {
        "a:b:c",
        "d:e:f",
        "g",
    }
    assert c.metric_names('sum(x) by (le) / ignoring(instance) group_left y or vector(0)') == {
        "x",
        "y",
    }
    assert c.metric_names('time() - max(up{job="monitor"} == bool 0)') == {"up"}
    assert c.metric_names('label_replace(z, "dst", "$1", "src", "(.*)")') == {"z"}
    assert c.metric_names("sum without (pid) (rate(w[$__rate_interval]))") == {"w"}


def test_unknown_metrics_are_caught():
    allowed = c.contract_series() | c.recording_rule_names() | c.PROMETHEUS_SERIES
    assert c.metric_names("rate(modelwatch_http_requests_total[5m])") <= allowed
    assert not c.metric_names("rate(modelwatch_http_request_total[5m])") <= allowed  # typo
    assert (
        not c.metric_names("modelwatch_prediction_score") <= allowed
    )  # a histogram has no bare series
    assert not c.metric_names("modelwatch_live_accuracy_total") <= allowed


def _check(exposed: dict, expected: dict[str, tuple[str, ...]], extra_labels: tuple[str, ...] = ()):
    for base, labels in expected.items():
        name = c.PREFIX + base
        assert name in exposed, f"{name} is not exposed"
        kind, names = exposed[name]
        assert (kind == "histogram") == (base in c.HISTOGRAMS), f"{name} is a {kind}"
        required = {*labels, "model"}  # every series names its model (issue 20)
        assert required <= set(names) <= required | set(extra_labels), (
            f"{name}{{{','.join(names)}}}"
        )


def test_serving_exposes_the_contract_metrics():
    metrics = pytest.importorskip(
        "modelwatch.serving.metrics", reason="modelwatch.serving.metrics is not importable yet"
    )
    _check(c.registry_metrics(metrics.Metrics("credit-default").registry), c.SERVING_METRICS)
    # the latency SLI (recording.yml) counts requests in the le="0.5" bucket
    assert 0.5 in metrics.LATENCY_BUCKETS


def test_monitor_exposes_the_contract_metrics():
    metrics = pytest.importorskip(
        "modelwatch.monitoring.service.metrics",
        reason="modelwatch.monitoring.service.metrics is not importable yet",
    )
    monitor = metrics.MonitorMetrics()
    monitor.model("credit-default")  # a watched model's counters exist from its start
    _check(c.registry_metrics(monitor.registry), c.MONITOR_METRICS, extra_labels=("model_version",))
    # RetrainingFailed selects result="failed"; the series exists from the start
    results = {
        s.labels.get("result")
        for f in monitor.registry.collect()
        if f.name == "modelwatch_retrains"
        for s in f.samples
    }
    assert "failed" in results
    # MonitorDependencyFailing takes increase() of each dependency's counter from 0
    dependencies = {
        s.labels.get("dependency")
        for f in monitor.registry.collect()
        if f.name == "modelwatch_monitor_errors"
        for s in f.samples
    }
    assert {"mlflow", "store"} <= dependencies
