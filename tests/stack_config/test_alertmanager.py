"""Alertmanager configs: amtool checks, the routing of every alert, and a real Alertmanager
delivering a retrain alert to a webhook with the bearer token while inhibiting the rest."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
import yaml

from tests import services
from tests.stack_config import contract as c
from tests.stack_config.compose import command_flag, load_compose

AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
EMBEDDED = c.ALERTMANAGER_DIR / "alertmanager.yml"
COMPOSE = c.ALERTMANAGER_DIR / "alertmanager.compose.yml"
CONFIGS = [EMBEDDED, COMPOSE]
SEVERITY_RECEIVER = {"critical": "page-critical", "major": "page-major", "minor": "ticket-minor"}
RETRAIN_RECEIVER = "monitor-retrain"


def _webhooks(config: dict) -> list[dict]:
    return [w for r in config["receivers"] for w in r.get("webhook_configs", [])]


@pytest.mark.skipif(
    AMTOOL is None, reason="amtool is not installed (Debian package `prometheus-alertmanager`)"
)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_amtool_check_config(path):
    result = subprocess.run(
        [AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _alert_label_sets() -> list[dict]:
    """One label set per alerting rule: the labels Alertmanager routes on."""
    seen, out = set(), []
    for rule in c.alerting_rules():
        labels = {
            "alertname": rule["alert"],
            "severity": rule["labels"]["severity"],
            "action": rule["labels"]["action"],
        }
        key = tuple(sorted(labels.items()))
        if key not in seen:
            seen.add(key)
            out.append(labels)
    return out


@pytest.mark.skipif(
    AMTOOL is None, reason="amtool is not installed (Debian package `prometheus-alertmanager`)"
)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_alert_routes_by_severity_and_retrain_alerts_reach_the_webhook(path):
    for labels in _alert_label_sets():
        result = subprocess.run(
            [
                AMTOOL,
                "config",
                "routes",
                "test",
                f"--config.file={path}",
                *(f"{k}={v}" for k, v in labels.items()),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        receivers = result.stdout.strip().splitlines()[-1].split(",")
        expected = [SEVERITY_RECEIVER[labels["severity"]]]
        if labels["action"] == "retrain":
            expected.insert(0, RETRAIN_RECEIVER)
        assert receivers == expected, labels


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_webhook_receiver_posts_to_the_monitor_with_a_bearer_token_file(path):
    config = c.load_yaml(path)
    (retrain,) = [r for r in config["receivers"] if r["name"] == RETRAIN_RECEIVER]
    (hook,) = retrain["webhook_configs"]
    auth = hook["http_config"]["authorization"]
    assert auth.get("type", "Bearer") == "Bearer"
    assert auth["credentials_file"] and "credentials" not in auth, "the token must come from a file"
    assert hook["url"].endswith("/alerts")
    # only the retrain receiver calls the monitor: paging alerts must never start a retraining
    assert [h["url"] for h in _webhooks(config)] == [hook["url"]]


def test_embedded_webhook_and_token_file_location():
    config = c.load_yaml(EMBEDDED)
    (hook,) = _webhooks(config)
    assert hook["url"] == "http://127.0.0.1:8001/alerts"
    assert hook["http_config"]["authorization"]["credentials_file"] == "webhook_token"
    ignored = (c.ALERTMANAGER_DIR / ".gitignore").read_text().split()
    assert "webhook_token" in ignored, "the dev token file must not be committed"


def test_compose_webhook_reaches_the_monitor_service_with_the_compose_secret():
    config = c.load_yaml(COMPOSE)
    compose = load_compose()
    (hook,) = _webhooks(config)
    port = command_flag(compose["services"]["monitor"], "--port")
    assert hook["url"] == f"http://monitor:{port}/alerts"
    path = hook["http_config"]["authorization"]["credentials_file"]
    assert path.startswith("/run/secrets/")
    secret = path.rsplit("/", 1)[1]
    am_secrets = [
        s if isinstance(s, str) else s.get("target", s["source"])
        for s in compose["services"]["alertmanager"].get("secrets", [])
    ]
    assert secret in am_secrets
    assert secret in compose["secrets"] or any(
        isinstance(s, dict) and s.get("target") == secret and s["source"] in compose["secrets"]
        for s in compose["services"]["alertmanager"]["secrets"]
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_inhibitions(path):
    rules = c.load_yaml(path)["inhibit_rules"]
    integrity = [
        r for r in rules if r.get("source_matchers") == ['alertname="DataIntegrityViolation"']
    ]
    assert len(integrity) == 1
    targets = integrity[0]["target_matchers"][0]
    for alert in ("DataDriftDetected", "ConceptDriftDetected"):
        assert alert in targets
    assert integrity[0]["equal"] == ["model", "model_version"]
    critical = [r for r in rules if r.get("source_matchers") == ['severity="critical"']]
    assert len(critical) == 1
    assert "major" in critical[0]["target_matchers"][0]
    assert "alertname" in critical[0]["equal"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_timers(path):
    route = c.load_yaml(path)["route"]
    assert route["group_by"] == ["alertname", "model", "model_version"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route
    if path == EMBEDDED:  # the demo closes its loop in minutes
        assert route["group_wait"] in ("5s", "10s", "15s") and route["group_interval"] in (
            "10s",
            "30s",
        )


# --- a real Alertmanager ----------------------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(
            {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "payload": json.loads(body),
            }
        )
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def _fast(route: dict) -> None:
    for key in ("group_wait", "group_interval"):
        if key in route:
            route[key] = "1s"
    for child in route.get("routes", []):
        _fast(child)


@pytest.mark.slow
@pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="Alertmanager is not installed (Debian package `prometheus-alertmanager`)",
)
def test_real_alertmanager_sends_retrain_alerts_with_the_token_and_inhibits(tmp_path):
    # The embedded config, with its webhook pointed at a local capture server and its
    # timers at 1s; everything else (tree, receivers, inhibitions, token file) as is.
    capture = HTTPServer(("127.0.0.1", 0), type("Capture", (_Capture,), {"received": []}))
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    config = c.load_yaml(EMBEDDED)
    _fast(config["route"])
    (hook,) = _webhooks(config)
    hook["url"] = f"http://127.0.0.1:{capture.server_port}/alerts"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "webhook_token").write_text("s3cret-token\n")
    port = services.free_port()
    args = [
        ALERTMANAGER,
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        with services.process(args, tmp_path / "alertmanager.log") as proc:
            services.wait_http(f"{url}/-/ready", timeout=30, proc=proc)
            now = datetime.now(UTC)
            ends = (now + timedelta(minutes=10)).isoformat()

            def alert(**labels):
                return {
                    "labels": labels,
                    "annotations": {"summary": "test"},
                    "startsAt": now.isoformat(),
                    "endsAt": ends,
                }

            # the integrity alert first, as Prometheus would (its `for:` is shorter)
            r = requests.post(
                f"{url}/api/v2/alerts",
                timeout=5,
                json=[
                    alert(
                        alertname="DataIntegrityViolation",
                        severity="major",
                        action="page",
                        model="credit-default",
                        model_version="2",
                        kind="swapped_columns",
                        feature="age",
                    )
                ],
            )
            assert r.status_code == 200, r.text
            r = requests.post(
                f"{url}/api/v2/alerts",
                timeout=5,
                json=[
                    alert(
                        alertname="DataDriftDetected",
                        severity="major",
                        action="retrain",
                        model="credit-default",
                        model_version="2",
                    ),
                    alert(
                        alertname="DataDriftDetected",
                        severity="major",
                        action="retrain",
                        model="credit-default",
                        model_version="3",
                    ),
                    # another model's version 2: its data is not the broken one
                    alert(
                        alertname="DataDriftDetected",
                        severity="major",
                        action="retrain",
                        model="house-prices",
                        model_version="2",
                    ),
                    alert(
                        alertname="HighErrorRate", severity="critical", action="page", job="serving"
                    ),
                ],
            )
            assert r.status_code == 200, r.text

            received = capture.RequestHandlerClass.received
            services.wait_for(
                lambda: received, 30, f"a webhook call (log: {tmp_path / 'alertmanager.log'})"
            )
            time.sleep(2.5)  # anything else that would come (group_interval 1s)

            for call in received:
                assert call["path"] == "/alerts"
                assert call["authorization"] == "Bearer s3cret-token"
                assert call["payload"]["version"] == "4"
            delivered = [
                a["labels"]
                for call in received
                for a in call["payload"]["alerts"]
                if a["status"] == "firing"
            ]
            assert {
                (labels["alertname"], labels.get("model"), labels.get("model_version"))
                for labels in delivered
            } == {
                ("DataDriftDetected", "credit-default", "3"),
                ("DataDriftDetected", "house-prices", "2"),
            }
            # grouped by model: each webhook call is about one model
            for call in received:
                models = {a["labels"].get("model") for a in call["payload"]["alerts"]}
                assert len(models - {None}) <= 1, models

            state = requests.get(
                f"{url}/api/v2/alerts",
                params={"filter": 'alertname="DataDriftDetected"'},
                timeout=5,
            ).json()
            inhibited = {
                (a["labels"]["model"], a["labels"]["model_version"]): bool(
                    a["status"]["inhibitedBy"]
                )
                for a in state
            }
            assert inhibited == {
                ("credit-default", "2"): True,
                ("credit-default", "3"): False,
                ("house-prices", "2"): False,
            }
    finally:
        capture.shutdown()


def test_compose_and_embedded_trees_match():
    """The two configs differ in timers and addresses only."""

    def shape(route: dict) -> list:
        return [
            route["receiver"],
            route.get("matchers"),
            route.get("group_by"),
            route.get("continue", False),
            [shape(r) for r in route.get("routes", [])],
        ]

    embedded, compose = c.load_yaml(EMBEDDED), c.load_yaml(COMPOSE)
    assert shape(embedded["route"]) == shape(compose["route"])
    assert embedded["inhibit_rules"] == compose["inhibit_rules"]
    assert [r["name"] for r in embedded["receivers"]] == [r["name"] for r in compose["receivers"]]
