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
from tests.test_design_doc import doc_metrics

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


def _documented() -> dict[str, frozenset[str]]:
    """docs/DESIGN.md's metrics -> their labels, both services'."""
    return {**doc_metrics("Serving"), **doc_metrics("Monitor")}


def _documented_series() -> set[str]:
    """Every series name DESIGN.md's Metrics section allows (a histogram's three too)."""
    return {f"{n}{suffix}" for n in _documented() for suffix in ("", "_bucket", "_sum", "_count")}


def test_queries_use_only_contract_metrics_and_recordings():
    allowed = (
        c.contract_series() | _documented_series() | c.recording_rule_names() | c.PROMETHEUS_SERIES
    )
    for uid, title, expr, _ in d.panel_queries():
        unknown = c.metric_names(expr) - allowed
        assert not unknown, (
            f"{uid} / {title}: {unknown} is neither in docs/DESIGN.md nor a recording rule"
        )
    for uid, name, query in d.variable_queries():
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert m, f"{uid} / ${name}: unexpected variable query {query!r}"
        (metric,) = c.metric_names(m.group(1))
        assert metric in allowed, f"{uid} / ${name}: {metric}"
        labels = set(_documented().get(metric, ()))
        base = metric.removeprefix(c.PREFIX)
        labels |= set({**c.SERVING_METRICS, **c.MONITOR_METRICS}.get(base, ()))
        if base in c.MONITOR_METRICS:
            labels.add("model_version")  # monitor gauges carry model_version
        labels.add("model")  # every modelwatch series names its model (issue 20, C1)
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
        "sum by (model, result) (increase(modelwatch_retrains_total",
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


# -- issue 20: a model picker, each task's panels, thresholds that are bounds ------------------

AGGREGATION = re.compile(r"\b(sum|min|max|avg|count)\s*(?:by\s*\(([^)]*)\))?\s*\(")


def _raw_exprs(board: dict) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and annotation, variables not substituted."""
    out = [(panel["title"], t["expr"]) for panel in d.iter_panels(board) for t in panel["targets"]]
    out += [(a["name"], a["expr"]) for a in board["annotations"]["list"] if a.get("expr")]
    return out


def test_every_dashboard_picks_models_and_never_blurs_them():
    """A `model` variable on every dashboard; every query of a modelwatch series is filtered
    by it and keeps the models apart wherever it aggregates (a count of firing alerts and a
    heatmap's buckets are the chosen models' together, on purpose)."""
    for path, board in BOARDS.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert "model" in variables, path.name
        assert variables["model"]["definition"].endswith(", model)"), path.name
        for where, expr in _raw_exprs(board):
            if any("modelwatch_" in n for n in c.metric_names(expr)):
                assert '$model"' in expr, f"{path.name} / {where}: not filtered by $model: {expr}"
            for op, by in AGGREGATION.findall(expr):
                labels = {label.strip() for label in by.split(",")} if by else set()
                together = labels == {"le"} or (op == "count" and "ALERTS" in expr)
                assert "model" in labels or together, (
                    f"{path.name} / {where}: {op} across models: {expr}"
                )


def _numbers(expr: str) -> set[float]:
    """The numeric literals of a PromQL expression (label values and durations left out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return {float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", bare)}


def _rule_numbers(name: str) -> set[float]:
    exprs = [r["expr"] for r in c.alerting_rules() if r["alert"] == name]
    assert exprs, f"no alerting rule {name}"
    return set().union(*map(_numbers, exprs))


def test_every_threshold_is_a_bound_series_or_the_constant_of_its_rule():
    """A panel's threshold is either the series the monitor compares against (drawn as a
    line, or a stat's threshold from query results) or the constant of the Prometheus rule
    the panel names, as that rule's expression has it; a count is coloured by anything
    counted. Every metric shown whose bound is exported is drawn with that bound."""
    for path, board in BOARDS.items():
        for panel in d.iter_panels(board):
            where = f"{path.name} / {panel['title']}"
            steps = [
                s["value"]
                for s in panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
                if s["value"] is not None
            ]
            by_ref = {t["refId"]: t["expr"] for t in panel["targets"]}
            for transformation in panel.get("transformations", []):
                assert transformation["id"] == "configFromData", where
                bound_query = by_ref[transformation["options"]["configRefId"]]
                assert all(n.endswith("_threshold") for n in c.metric_names(bound_query)), where
                assert not steps, f"{where}: a fixed threshold beside the bound series"
            exprs = list(by_ref.values())
            if steps == [1] and all(e.startswith(("count", "sum")) for e in exprs):
                continue  # a count: red (or green) when there is anything
            if steps:
                rule = re.search(r"Threshold: the (\w+) rule's", panel["description"])
                assert rule, f"{where}: thresholds {steps} name no rule"
                numbers = _rule_numbers(rule.group(1))
                for value in steps:  # an SLO's objective is 1 - the budget its rule divides by
                    assert value in numbers or round(1 - value, 9) in numbers, (
                        f"{where}: {value} is not in {rule.group(1)}'s expression {numbers}"
                    )
            _assert_bounds_drawn(where, exprs)


def _assert_bounds_drawn(where: str, exprs: list[str]) -> None:
    text = "\n".join(exprs)
    for metric in re.findall(r'modelwatch_metric_value\{[^}]*metric="(\w+)"', text):
        assert re.search(
            rf'modelwatch_metric_(lower|upper)_threshold\{{[^}}]*metric="{metric}"', text
        ), f"{where}: {metric} without its bound"
    if re.search(r"modelwatch_drift_score\{", text):
        assert "modelwatch_drift_score_threshold{" in text, f"{where}: drift scores, no threshold"


def _quality_panels() -> list[dict]:
    (board,) = [b for b in BOARDS.values() if b["uid"] == "modelwatch-model-quality"]
    return list(d.iter_panels(board))


def test_each_task_has_its_own_panels_with_their_bounds():
    """Classifiers' accuracy, F1 and ROC AUC with lower bounds; a regression's MAE, RMSE and
    MAPE each on a panel of its own with its upper bound, and the predicted values."""
    panels = _quality_panels()
    for metric, side in (
        ("live_accuracy", "lower"),
        ("live_f1", "lower"),
        ("live_roc_auc", "lower"),
        ("live_mae", "upper"),
        ("live_rmse", "upper"),
        ("live_mape", "upper"),
    ):
        showing = [
            p for p in panels if any(f'metric="{metric}"' in t["expr"] for t in p["targets"])
        ]
        assert showing, metric
        for panel in showing:
            exprs = " ".join(t["expr"] for t in panel["targets"])
            assert f'modelwatch_metric_{side}_threshold{{model=~"$model"' in exprs, panel["title"]
            other = {"mae", "rmse", "mape"} - {metric.removeprefix("live_")}
            if side == "upper":  # an error shares its axis with no other error
                assert not any(f"_{o}" in exprs for o in other), panel["title"]
    heatmaps = [p for p in panels if p["type"] == "heatmap"]
    assert any("modelwatch_predicted_value_bucket" in p["targets"][0]["expr"] for p in heatmaps)


def _unit(panel: dict) -> str:
    return panel["fieldConfig"]["defaults"].get("unit") or panel["options"]["yAxis"]["unit"]


def test_units_follow_the_metric():
    """Ratios in percent, errors in the target's unit, latency in seconds."""
    kinds = (
        (r'metric="\w+_(accuracy|f1|roc_auc|mape)"|_ratio\{|_share\{', "percentunit"),
        (r'metric="\w+_(mae|rmse)"|modelwatch_predicted_value', "none"),
        (r"duration_seconds", "s"),
    )
    for path, board in BOARDS.items():
        for panel in d.iter_panels(board):
            text = " ".join(
                t["expr"] for t in panel["targets"] if not t["expr"].startswith("count")
            )
            for pattern, unit in kinds:
                if re.search(pattern, text):
                    assert _unit(panel) == unit, f"{path.name} / {panel['title']}: {_unit(panel)}"


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
