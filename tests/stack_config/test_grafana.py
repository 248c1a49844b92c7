"""Grafana provisioning and dashboards, offline; and every query parsed by a real Prometheus."""

from __future__ import annotations

import importlib.util
import re
import shutil
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest
import requests
import yaml

from tests import services
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, predict
from tests.stack_config import contract as c
from tests.stack_config import dashboards as d
from tests.stack_config.compose import load_compose, mounts, repo_path

PROMETHEUS = shutil.which("prometheus")
DATASOURCES = c.GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = c.GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml"
BOARDS = d.load_dashboards()


def _generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", c.GRAFANA_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_what_the_generator_makes():
    rendered = _generator().render()
    assert set(rendered) == {p.name for p in BOARDS}, "a dashboard file is missing or not generated"
    for path in BOARDS:
        assert path.read_text() == rendered[path.name], (
            f"{path.name} differs from generate.py's output: run `.venv/bin/python monitoring/grafana/generate.py`"
        )


def test_datasource_has_the_fixed_uid_and_points_at_compose_prometheus():
    config = c.load_yaml(DATASOURCES)
    assert config["apiVersion"] == 1
    (ds,) = config["datasources"]
    assert ds["uid"] == c.DATASOURCE_UID and ds["type"] == "prometheus" and ds["isDefault"] is True
    assert _generator().DATASOURCE_UID == c.DATASOURCE_UID
    url = urlparse(ds["url"])
    services_ = load_compose()["services"]
    assert url.hostname in services_ and url.hostname == "prometheus"
    assert url.port == 9090


def test_dashboard_provider_path_is_where_compose_mounts_the_dashboards():
    config = c.load_yaml(PROVIDERS)
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    grafana = load_compose()["services"]["grafana"]
    mounted = {m.target: repo_path(m.source) for m in mounts(grafana) if m.kind == "bind"}
    assert mounted.get(provider["options"]["path"]) == (c.GRAFANA_DIR / "dashboards").resolve()
    assert mounted.get("/etc/grafana/provisioning/dashboards") == PROVIDERS.parent.resolve()
    assert mounted.get("/etc/grafana/provisioning/datasources") == DATASOURCES.parent.resolve()


def test_dashboard_models_are_valid_and_uids_unique():
    assert len(BOARDS) >= 4
    uids, titles = [], []
    for path, board in BOARDS.items():
        assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36, path.name
        assert board.get("id") is None, f"{path.name}: provisioned dashboards carry no database id"
        assert 0 < len(board["uid"]) <= 40, path.name
        uids.append(board["uid"])
        titles.append(board["title"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        cells = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, (
                path.name,
                panel["title"],
            )
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not area & cells, f"{path.name}: panel {panel['title']!r} overlaps another"
            cells |= area
    assert len(uids) == len(set(uids)), "duplicate dashboard uids"
    assert len(titles) == len(set(titles)), "duplicate dashboard titles"


def test_every_panel_is_bound_to_the_provisioned_datasource_and_has_queries():
    for path, board in BOARDS.items():
        panels = list(d.iter_panels(board))
        assert panels, path.name
        for panel in panels:
            where = f"{path.name}: {panel.get('title')!r}"
            assert panel.get("title"), where
            assert panel["datasource"] == {"type": "prometheus", "uid": c.DATASOURCE_UID}, where
            assert panel.get("targets"), f"{where} has no targets"
            ref_ids = [t.get("refId") for t in panel["targets"]]
            assert all(ref_ids) and len(ref_ids) == len(set(ref_ids)), where
            for t in panel["targets"]:
                assert t.get("expr", "").strip(), f"{where}: target {t.get('refId')} has no expr"
                assert t.get("datasource", {}).get("uid") == c.DATASOURCE_UID, where
        for var in board["templating"]["list"]:
            assert var["datasource"]["uid"] == c.DATASOURCE_UID, (path.name, var["name"])
        for ann in board["annotations"]["list"]:
            if not ann.get("builtIn"):
                assert ann["datasource"]["uid"] == c.DATASOURCE_UID and ann.get("expr"), (
                    path.name,
                    ann["name"],
                )


def test_queries_use_only_contract_metrics_and_recordings():
    allowed = c.contract_series() | c.recording_rule_names() | c.PROMETHEUS_SERIES
    for uid, title, expr in d.panel_queries():
        unknown = c.metric_names(expr) - allowed
        assert not unknown, (
            f"{uid} / {title}: {unknown} is neither in docs/DESIGN.md nor a recording rule"
        )
    for uid, name, query in d.variable_queries():
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert m, f"{uid} / ${name}: unexpected variable query {query!r}"
        (metric,) = c.metric_names(m.group(1))
        assert metric in allowed, f"{uid} / ${name}: {metric}"
        base = metric.removeprefix(c.PREFIX)
        labels = {**c.SERVING_METRICS, **c.MONITOR_METRICS}[base]
        if base in c.MONITOR_METRICS:
            labels += ("model_version",)  # monitor gauges carry model_version
        assert m.group(2) in labels, f"{uid} / ${name}: {metric} has no label {m.group(2)}"


def test_query_helper_substitutes_every_variable():
    queries = d.panel_queries()
    assert len(queries) > 40
    assert all("$" not in q.expr and "[[" not in q.expr for q in queries)
    assert any("[1m]" in q.expr for q in queries), "$__rate_interval -> 1m"
    uids = {b["uid"] for b in BOARDS.values()}
    assert {q.dashboard_uid for q in queries} == uids
    assert (
        d.substitute('x{a=~"$v"}[$__rate_interval]', {"v": ".*", "__rate_interval": "1m"})
        == 'x{a=~".*"}[1m]'
    )
    assert d.substitute("${v:regex}-[[v]]", {"v": "a"}) == "a-a"
    with pytest.raises(KeyError):
        d.substitute("$nope", {})


def _exprs(uid: str) -> str:
    return "\n".join(q.expr for q in d.panel_queries() if q.dashboard_uid == uid)


def test_dashboards_cover_what_the_issue_asks_for():
    golden = _exprs("modelwatch-golden-signals")
    for needle in (
        "endpoint:modelwatch_http_requests:rate5m",
        "job:modelwatch_http_request_errors:ratio_rate5m",
        "p50_rate5m",
        "p95_rate5m",
        "p99_rate5m",
        "modelwatch_http_requests_in_flight",
        "job:modelwatch_slo_availability_errors:ratio_rate1h",
        "job:modelwatch_slo_latency_errors:ratio_rate1h",
    ):
        assert needle in golden, needle
    quality = _exprs("modelwatch-model-quality")
    for needle in (
        "modelwatch_live_accuracy",
        "modelwatch_estimated_accuracy",
        "modelwatch_label_coverage_ratio",
    ):
        assert needle in quality, needle
    (board,) = [b for b in BOARDS.values() if b["uid"] == "modelwatch-model-quality"]
    (both,) = [p for p in d.iter_panels(board) if p["title"] == "Accuracy: realized vs estimated"]
    assert len(both["targets"]) == 2
    (bar,) = [
        p
        for p in d.iter_panels(board)
        if p["title"] == "Accuracy: reference vs realized vs estimated"
    ]
    bar_exprs = [t["expr"] for t in bar["targets"]]
    for metric in (
        "modelwatch_reference_accuracy",
        "modelwatch_live_accuracy",
        "modelwatch_estimated_accuracy",
    ):
        assert any(e.startswith(metric + "{") for e in bar_exprs), metric
    for metric in (
        "live_accuracy",
        "estimated_accuracy",
    ):  # each alert bound, as the rule compares it
        assert any(
            e.startswith("modelwatch_metric_lower_threshold{") and f'metric="{metric}"' in e
            for e in bar_exprs
        ), metric
    annotations = " ".join(a.get("expr", "") for a in board["annotations"]["list"])
    assert (
        "modelwatch_model_info" in annotations and "modelwatch_model_reloads_total" in annotations
    )
    drift = _exprs("modelwatch-drift")
    for needle in (
        "modelwatch_drift_score",
        "modelwatch_dataset_drift_share",
        "modelwatch_prediction_score_bucket",
    ):
        assert needle in drift, needle
    (board,) = [b for b in BOARDS.values() if b["uid"] == "modelwatch-drift"]
    heatmaps = [p for p in d.iter_panels(board) if p["type"] == "heatmap"]
    assert any(
        "modelwatch_prediction_score_bucket" in p["targets"][0]["expr"]
        and p["targets"][0]["format"] == "heatmap"
        for p in heatmaps
    )
    retraining = _exprs("modelwatch-retraining")
    for needle in (
        "sum by (result) (increase(modelwatch_retrains_total",
        "modelwatch_retrain_in_progress",
        "modelwatch_retrain_last_success_timestamp_seconds",
    ):
        assert needle in retraining, needle
    cost = _exprs("modelwatch-cost")
    for needle in (
        "job:modelwatch_cost_per_1k_predictions:rate5m",
        "modelwatch_cost_budget",
        "job:modelwatch_cpu_seconds_per_prediction:ratio_rate5m",
        "job:modelwatch_cpu_seconds_per_request:ratio_rate5m",
        "modelwatch_process_resident_memory_bytes",
        "instance:modelwatch_thread_pool_utilization:ratio_rate5m",
        "modelwatch_worker_busy_threads",
    ):
        assert needle in cost, needle


@contextmanager
def _prometheus(tmp_path, config: dict):
    """A real Prometheus with the shared rule files and `config`'s globals and scrapes."""
    config = {**config, "rule_files": [str(p) for p in c.rule_files()]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = services.free_port()
    args = [
        PROMETHEUS,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with services.process(args, tmp_path / "prometheus.log") as proc:
        services.wait_http(f"{url}/-/ready", timeout=60, proc=proc)
        yield url


def _query(url: str, expr: str) -> list:
    r = requests.post(f"{url}/api/v1/query", data={"query": expr}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "success", (expr, r.text)
    return r.json()["data"]["result"]


@pytest.mark.slow
@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian package `prometheus`)"
)
def test_every_query_parses_in_a_real_prometheus_with_the_rules_loaded(tmp_path):
    with _prometheus(
        tmp_path, {"global": {"evaluation_interval": "5s"}, "scrape_configs": []}
    ) as url:
        groups = requests.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = sum(len(g["rules"]) for g in groups)
        assert loaded == len(c.rules())
        for q in d.panel_queries():
            _query(url, q.expr)


@contextmanager
def _traffic(url: str):
    """Predictions sent one after another until the block ends."""
    stop = threading.Event()
    rows = modelkit.feature_rows(20, seed=4)
    failed = []

    def send():
        while not stop.is_set():
            r = predict(url, rows)
            if r.status_code != 200:
                failed.append(r.text[:200])

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(30)
    assert not failed, failed[:3]


@pytest.mark.slow
@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian package `prometheus`)"
)
def test_cost_panels_show_what_prometheus_scraped_from_real_serving(tmp_path, mlflow_url):
    """Every query of the cost dashboard returns data from real gunicorn (two workers,
    prices and a budget set) under traffic, through the real recording rules."""
    model = "credit-default-grafana-cost"
    version = modelkit.register_version(mlflow_url, model, seed=1, alias="production")
    env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MODELWATCH_MODEL_NAME": model,
        "MODELWATCH_COST_PER_CPU_HOUR": "0.05",
        "MODELWATCH_COST_PER_GB_HOUR": "0.01",
        "MODELWATCH_COST_BUDGET_PER_1K": "1",
    }
    queries = [q for q in d.panel_queries() if q.dashboard_uid == "modelwatch-cost"]
    assert queries
    with (
        gunicorn(tmp_path / "serving", env, workers=2, ready_version=version) as serving,
        _traffic(serving.url),
    ):
        with _scraping(tmp_path, "serving", serving.url.removeprefix("http://")) as url:
            _wait_for_data(url, queries)
            (cost,) = _query(url, "job:modelwatch_cost_per_1k_predictions:rate5m")
            assert 0 < float(cost["value"][1]) < 1


@contextmanager
def _served(app):
    """A WSGI app on a free port, in a thread, until the block ends."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", services.free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.mark.slow
@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian package `prometheus`)"
)
def test_segments_and_fairness_panels_show_what_prometheus_scraped_from_the_real_monitor(
    tmp_path, mlflow_url, monkeypatch
):
    """A version onboarded with a segment column and a sensitive attribute, traffic scored by
    the real serving app and labelled, one real monitor window: every query of the
    dashboard returns data from a real Prometheus that scraped that monitor."""
    import mlflow
    from mlflow import MlflowClient
    from modelwatch.monitoring.service.app import create_app as create_monitor
    from modelwatch.monitoring.service.config import MonitorConfig
    from modelwatch.serving.app import create_app as create_serving
    from modelwatch.serving.app import shutdown_app
    from modelwatch.training.simulator import TARGET, generate

    from modelwatch.cli.onboard import onboard
    from tests.monitor_service.test_monitor_real import send_through_serving

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    mlflow.set_tracking_uri(mlflow_url)
    model = "credit-default-grafana-segments"
    version = modelkit.register_version(mlflow_url, model, seed=1, alias="production")
    generate(6000, "baseline", seed=5).to_parquet(tmp_path / "reference.parquet")
    onboard(
        model,
        str(tmp_path / "reference.parquet"),
        TARGET,
        version,
        client=MlflowClient(mlflow_url),
        segments=("channel",),
        sensitive=("region",),
    )
    store_url = f"sqlite:///{tmp_path / 'predictions.db'}"
    serving = create_serving(
        {
            "tracking_uri": mlflow_url,
            "model_name": model,
            "store_url": store_url,
            "spill_dir": str(tmp_path / "spill"),
            "model_cache_dir": str(tmp_path / "cache"),
            "reload_interval": 60.0,
            "feedback_wait": 0.3,
        }
    )
    state = serving.extensions["modelwatch"]
    monitor_app = create_monitor(
        MonitorConfig.from_env(
            tracking_uri=mlflow_url,
            model_name=model,
            store_url=store_url,
            log_to_mlflow=False,
            fairness_favourable="0",
        ),
        runner=lambda reason: "promoted",
        start=False,
    )
    queries = [q for q in d.panel_queries() if q.dashboard_uid == "modelwatch-segments-fairness"]
    assert {
        "modelwatch_segment_share",
        "modelwatch_segment_metric_value",
        "modelwatch_fairness_gap_exceeded",
        "modelwatch_fairness_group_tpr",
    } <= set().union(*(c.metric_names(q.expr) for q in queries))
    try:
        assert state.models.ready.wait(120), state.models.last_error
        send_through_serving(serving.test_client(), state, generate(2000, "baseline", seed=6))
        result = monitor_app.extensions["modelwatch"].monitor.run_once()
        assert result is not None and result.segments and result.fairness
        with _served(monitor_app) as target, _scraping(tmp_path, "monitor", target) as url:
            _wait_for_data(url, queries)
    finally:
        shutdown_app(serving)


def _scraping(tmp_path, job: str, target: str):
    """A real Prometheus scraping `target` every second as `job`, with the rules loaded."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    return _prometheus(tmp_path, config)


def _wait_for_data(url: str, queries: list) -> None:
    """Every query returns data within two minutes (scrapes and rule evaluations to come)."""
    deadline = time.monotonic() + 120
    empty = queries
    while empty and time.monotonic() < deadline:
        empty = [q for q in empty if not _query(url, q.expr)]
        time.sleep(0.5)
    assert not empty, [f"{q.panel_title}: {q.expr}" for q in empty]
