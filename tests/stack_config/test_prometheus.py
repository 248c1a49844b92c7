"""Prometheus configs and rules: promtool checks and unit tests, and the contracts they follow."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.stack_config import contract as c
from tests.stack_config.compose import container_path_to_repo, load_compose

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package `prometheus`)"
)

EMBEDDED = c.PROMETHEUS_DIR / "prometheus.yml"
COMPOSE = c.PROMETHEUS_DIR / "prometheus.compose.yml"
UNIT_TESTS = sorted((c.PROMETHEUS_DIR / "tests").glob("*.yml"))


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def embedded_rule_files() -> list[Path]:
    config = c.load_yaml(EMBEDDED)
    out = []
    for pattern in config["rule_files"]:
        matches = glob.glob(str(EMBEDDED.parent / pattern))
        assert matches, f"prometheus.yml: rule file {pattern!r} matches nothing"
        out += [Path(m) for m in matches]
    return out


def compose_rule_files() -> list[Path]:
    """prometheus.compose.yml's rule files, mapped through the prometheus service's mounts."""
    config = c.load_yaml(COMPOSE)
    service = load_compose()["services"]["prometheus"]
    out = []
    for pattern in config["rule_files"]:
        assert pattern.startswith("/"), "compose rule files are container paths"
        repo_pattern = container_path_to_repo(service, pattern)
        assert repo_pattern is not None, (
            f"{pattern} is not inside any volume of the prometheus service"
        )
        matches = glob.glob(str(repo_pattern))
        assert matches, (
            f"prometheus.compose.yml: rule file {pattern} ({repo_pattern}) matches nothing"
        )
        out += [Path(m) for m in matches]
    return out


# --- promtool ---------------------------------------------------------------------------


@needs_promtool
def test_promtool_check_embedded_config():
    result = promtool("check", "config", str(EMBEDDED))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_check_compose_config_with_its_mounted_rules(tmp_path):
    # The compose config names container paths; check it with each one replaced by the
    # repository file the compose volumes mount there.
    config = c.load_yaml(COMPOSE)
    config["rule_files"] = [str(p) for p in compose_rule_files()]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(config['rule_files'])} rule files found" in result.stdout


@needs_promtool
def test_promtool_check_rules():
    result = promtool("check", "rules", *map(str, c.rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.slow  # computes for many seconds: `make test` runs it, `make test-fast` does not
def test_promtool_unit_tests_pass():
    assert UNIT_TESTS, "no promtool unit tests in monitoring/prometheus/tests"
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


@needs_promtool
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path):
    """The unit tests can fail: with the error-rate threshold moved, they do."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in c.rule_files():
        text = path.read_text()
        if path.name == "alerts.yml":
            assert "ratio_rate5m > 0.05" in text
            text = text.replace("ratio_rate5m > 0.05", "ratio_rate5m > 0.5")
        (tmp_path / "rules" / path.name).write_text(text)
    serving_tests = c.PROMETHEUS_DIR / "tests" / "serving_test.yml"
    shutil.copy(serving_tests, tmp_path / "tests" / serving_tests.name)
    result = promtool("test", "rules", str(tmp_path / "tests" / serving_tests.name))
    assert result.returncode != 0
    assert "HighErrorRate" in result.stdout + result.stderr


# --- the two configs --------------------------------------------------------------------


def test_both_configs_load_the_same_rule_files():
    embedded = sorted(p.resolve() for p in embedded_rule_files())
    compose = sorted(p.resolve() for p in compose_rule_files())
    assert embedded == compose
    assert set(embedded) == {p.resolve() for p in c.rule_files()}, (
        "a rule file is not loaded by the configs"
    )


def _jobs(config: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_both_configs_scrape_the_same_jobs():
    embedded, compose = _jobs(c.load_yaml(EMBEDDED)), _jobs(c.load_yaml(COMPOSE))
    assert set(embedded) == set(compose)
    # The rules select these job names.
    assert {"serving", "monitor", "pushgateway", "prometheus"} <= set(embedded)
    assert embedded["pushgateway"].get("honor_labels") is True
    assert compose["pushgateway"].get("honor_labels") is True


def test_embedded_config_targets_loopback_with_short_intervals():
    config = c.load_yaml(EMBEDDED)
    assert config["global"]["scrape_interval"] == "5s"
    assert config["global"]["evaluation_interval"] == "5s"
    jobs = _jobs(config)
    expected = {
        "serving": "127.0.0.1:8000",
        "monitor": "127.0.0.1:8001",
        "pushgateway": "127.0.0.1:9091",
        "prometheus": "127.0.0.1:9090",
    }
    for job, target in expected.items():
        assert jobs[job]["static_configs"][0]["targets"] == [target], job
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9093"]


def test_compose_config_discovers_serving_replicas_through_dns():
    config = c.load_yaml(COMPOSE)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    serving = _jobs(config)["serving"]
    assert "static_configs" not in serving
    (sd,) = serving["dns_sd_configs"]
    assert sd["type"] == "A" and sd["names"] == ["serving"] and sd["port"] == 8000
    services = load_compose()["services"]
    assert services["serving"]["deploy"]["replicas"] >= 2
    for job in _jobs(config).values():
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host = target.rsplit(":", 1)[0]
                assert host == "localhost" or host in services, (
                    f"{job['job_name']}: {target} is no compose service"
                )
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


# --- rules ------------------------------------------------------------------------------


def test_recording_rules_are_named_level_metric_operations():
    names = [r["record"] for r in c.rules() if "record" in r]
    assert len(names) == len(set(names)), "duplicate recording rule names"
    for name in set(names) - INTERFACE_RECORDINGS:
        assert re.fullmatch(r"[a-z_]+:modelwatch_[a-z0-9_]+:[a-z0-9_]+", name), name
    assert INTERFACE_RECORDINGS <= set(names)


# Recording rules whose names other tools rely on (issue 13), kept as the issue names them.
INTERFACE_RECORDINGS = {"modelwatch_cost_per_1k_predictions"}


def test_golden_signal_recordings_exist():
    names = c.recording_rule_names()
    for name in [
        "endpoint:modelwatch_http_requests:rate5m",  # traffic
        "job:modelwatch_http_request_errors:ratio_rate5m",  # errors
        "endpoint:modelwatch_http_request_duration_seconds:p50_rate5m",  # latency
        "endpoint:modelwatch_http_request_duration_seconds:p95_rate5m",
        "endpoint:modelwatch_http_request_duration_seconds:p99_rate5m",
        "job:modelwatch_http_requests_in_flight:sum",  # saturation
    ]:
        assert name in names, name
    for sli in ("availability", "latency"):
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
            assert f"job:modelwatch_slo_{sli}_errors:ratio_rate{window}" in names


def test_rules_use_only_contract_metrics_and_recordings():
    allowed = c.contract_series() | c.recording_rule_names() | c.PROMETHEUS_SERIES
    for rule in c.rules():
        unknown = c.metric_names(rule["expr"]) - allowed
        assert not unknown, (
            f"{rule.get('record') or rule.get('alert')}: not in docs/DESIGN.md: {unknown}"
        )


def test_every_design_alert_exists_with_its_severity_and_action():
    by_name: dict[str, list[dict]] = {}
    for rule in c.alerting_rules():
        by_name.setdefault(rule["alert"], []).append(rule)
    assert set(c.ALERTS) <= set(by_name), set(c.ALERTS) - set(by_name)
    for name, rules in by_name.items():
        expected = c.ALERTS.get(name) or (c.SLO_ALERT if name.startswith("SLO") else None)
        assert expected, f"{name} is not an alert of docs/DESIGN.md"
        for rule in rules:
            labels = rule.get("labels", {})
            assert (labels.get("severity"), labels.get("action")) == expected, name
            annotations = rule.get("annotations", {})
            assert annotations.get("summary") and annotations.get("description"), name
    # retraining on broken data makes it worse
    assert all(r["labels"]["action"] == "page" for r in by_name["DataIntegrityViolation"])


def test_slo_alerts_are_multiwindow_multi_burn_rate():
    tiers = {("1h", "5m", "14.4"), ("6h", "30m", "6"), ("1d", "2h", "3"), ("3d", "6h", "1")}
    for alert, sli, budget in (
        ("SLOAvailabilityBudgetBurn", "availability", "0.001"),
        ("SLOLatencyBudgetBurn", "latency", "0.01"),
    ):
        found = set()
        for rule in (r for r in c.alerting_rules() if r["alert"] == alert):
            labels = rule["labels"]
            long, short, burn = labels["long_window"], labels["short_window"], labels["burn_rate"]
            expr = " ".join(rule["expr"].split())
            for window in (long, short):
                assert (
                    f"job:modelwatch_slo_{sli}_errors:ratio_rate{window} > ({burn} * {budget})"
                    in expr
                ), expr
            assert " and " in expr
            found.add((long, short, burn))
        assert found == tiers, alert


def test_retrain_alerts_are_slower_than_the_integrity_alert():
    """DataIntegrityViolation must reach Alertmanager first to inhibit the retrain alerts."""

    def seconds(duration: str) -> int:
        return sum(
            int(n) * {"s": 1, "m": 60, "h": 3600}[u]
            for n, u in re.findall(r"(\d+)([smh])", duration)
        )

    integrity = [
        seconds(r.get("for", "0s"))
        for r in c.alerting_rules()
        if r["alert"] == "DataIntegrityViolation"
    ]
    retrain = [
        seconds(r.get("for", "0s"))
        for r in c.alerting_rules()
        if r["labels"]["action"] == "retrain"
    ]
    assert retrain and max(integrity) < min(retrain)


def _unit_test_alerts() -> tuple[list[dict], set[str]]:
    """(expected firing alerts' labels, names tested as not firing) over all unit tests."""
    firing, silent = [], set()
    for path in UNIT_TESTS:
        for test in c.load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    firing += [
                        {"alertname": case["alertname"], **a.get("exp_labels", {})}
                        for a in case["exp_alerts"]
                    ]
                else:
                    silent.add(case["alertname"])
    return firing, silent


def test_unit_tests_cover_every_alert_firing_and_not_firing():
    firing, silent = _unit_test_alerts()
    for rule in c.alerting_rules():
        static = {
            "alertname": rule["alert"],
            **{k: str(v) for k, v in rule.get("labels", {}).items()},
        }
        assert any(static.items() <= {k: str(v) for k, v in f.items()}.items() for f in firing), (
            f"no unit test sees {static} fire"
        )
        assert rule["alert"] in silent, f"no unit test checks that {rule['alert']} stays silent"


def test_unit_tests_load_the_shared_rule_files():
    for path in UNIT_TESTS:
        files = {(path.parent / f).resolve() for f in c.load_yaml(path)["rule_files"]}
        assert files == {p.resolve() for p in c.rule_files()}, path.name
