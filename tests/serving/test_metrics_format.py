"""Both services' `/metrics`: a Content-Type Prometheus 3 can parse, OpenMetrics when the
scraper asks for it, and bodies their parsers accept: prometheus_client's for
OpenMetrics, `promtool check metrics` (parse and lint) for the text format.

Prometheus 3 parses the Content-Type with Go's `mime.ParseMediaType`, which refuses a
parameter named twice (Flask's `mimetype=` appended a second `charset`): the scrape then
fails. The check here is as strict: one of each parameter, a media type Prometheus reads."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from modelwatch.monitoring.service.app import create_app as create_monitor_app
from modelwatch.monitoring.service.config import MonitorConfig
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from modelwatch.log import open_store
from tests.serving.modelkit import feature_rows

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package `prometheus`)"
)
# What Prometheus 3 sends (scrape_protocols' default order, as Accept).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
OPENMETRICS = "application/openmetrics-text"


def media_type(header: str) -> tuple[str, dict]:
    """(type, parameters), refusing what Go's mime.ParseMediaType refuses."""
    kind, *params = [part.strip() for part in header.split(";")]
    names = [p.partition("=")[0].strip().lower() for p in params]
    assert len(names) == len(set(names)), f"a parameter named twice: {header!r}"
    assert all("=" in p and p.partition("=")[2] for p in params), header
    return kind.lower(), {
        p.partition("=")[0].strip().lower(): p.partition("=")[2].strip() for p in params
    }


@pytest.fixture
def serving(make_app, registered):
    client = make_app(tracking_uri=registered.url, model_name=registered.name).test_client()
    assert client.post("/predict", json={"records": feature_rows(3)}).status_code == 200
    return client


@pytest.fixture
def monitor(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'monitor.db'}")
    config = MonitorConfig.from_env(tracking_uri="http://127.0.0.1:1", log_to_mlflow=False)
    app = create_monitor_app(config, runner=lambda reason: "promoted", store=store, start=False)
    yield app.test_client()
    store.close()


# The serving app needs a registered model (a real MLflow server); the monitor app none.
@pytest.fixture(params=[pytest.param("serving", marks=pytest.mark.slow), "monitor"])
def client(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("accept", ["", "*/*", "text/plain;version=0.0.4"])
def test_the_text_format_has_a_content_type_prometheus_parses(client, accept):
    r = client.get("/metrics", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    kind, params = media_type(r.headers["Content-Type"])
    assert kind == "text/plain" and params == {"version": "0.0.4", "charset": "utf-8"}
    families = list(parse_text(r.get_data(as_text=True)))
    assert any(f.name.startswith("modelwatch_") for f in families)


@pytest.mark.parametrize("accept", [OPENMETRICS, PROMETHEUS_ACCEPT])
def test_openmetrics_when_asked(client, accept):
    r = client.get("/metrics", headers={"Accept": accept})
    assert r.status_code == 200
    kind, params = media_type(r.headers["Content-Type"])
    assert kind == OPENMETRICS and params["version"] == "1.0.0" and params["charset"] == "utf-8"
    text = r.get_data(as_text=True)
    assert text.endswith("# EOF\n")
    # prometheus_client's parser raises on anything OpenMetrics does not allow (promtool
    # reads the Prometheus text format only: OpenMetrics' escapes in HELP are not its).
    families = list(parse_om(text))
    assert any(f.name.startswith("modelwatch_") for f in families)


def promtool_check(body: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60
    )


@needs_promtool
def test_promtool_accepts_the_text_format_without_a_lint_finding(client):
    result = promtool_check(client.get("/metrics").get_data())
    assert result.returncode == 0, result.stderr.decode()
