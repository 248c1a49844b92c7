"""docs/DESIGN.md against the code: each contract section names exactly what the code has,
so that a name added, renamed or dropped on one side without the other fails here."""

from __future__ import annotations

import re

import yaml

from tests.stack_config import contract as c

DOC = c.DESIGN_MD.read_text()
PACKAGES = ("training", "serving", "monitoring", "modelwatch")


def section(title: str) -> str:
    return DOC.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def subsection(text: str, title: str) -> str:
    return text.split(f"\n### {title}\n", 1)[1].split("\n### ", 1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]
    return [r for r in rows[1:] if not set("".join(r)) <= set("- ")]


def code_text() -> str:
    return "\n".join(
        p.read_text() for package in PACKAGES for p in (c.ROOT / package).rglob("*.py")
    )


def doc_metrics(part: str) -> dict[str, frozenset[str]]:
    found = re.findall(
        r"^- `(modelwatch_\w+)(?:\{([\w,]+)\})?`", subsection(section("Metrics"), part), re.M
    )
    return {name: frozenset(labels.split(",")) if labels else frozenset() for name, labels in found}


def registered(registry) -> dict[str, frozenset[str]]:
    return {name: frozenset(labels) for name, (_, labels) in c.registry_metrics(registry).items()}


def test_serving_metrics():
    from modelwatch.serving.metrics import Metrics

    assert doc_metrics("Serving") == registered(Metrics("credit-default").registry)


def test_monitor_metrics():
    from modelwatch.monitoring.service.metrics import MonitorMetrics

    assert doc_metrics("Monitor") == registered(MonitorMetrics().registry)


def doc_routes(title: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\| `(GET|POST|PUT|DELETE) (/\S*)`", section(title), re.M))


def routes(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_serving_endpoints(tmp_path):
    from modelwatch.serving.app import create_app, shutdown_app

    app = create_app(
        {
            "store_url": f"sqlite:///{tmp_path / 'p.db'}",
            "spill_dir": str(tmp_path / "spill"),
            "model_cache_dir": str(tmp_path / "cache"),
            "tracking_uri": "http://127.0.0.1:9",
            "background": False,
        }
    )
    try:
        assert doc_routes("Serving API") == routes(app)
    finally:
        shutdown_app(app)


def test_monitor_endpoints(tmp_path):
    from modelwatch.monitoring.service.app import create_app
    from modelwatch.monitoring.service.config import MonitorConfig

    from modelwatch.log import open_store

    app = create_app(
        MonitorConfig.from_env(log_to_mlflow=False),
        store=open_store(f"sqlite:///{tmp_path / 'p.db'}"),
        runner=lambda reason: "promoted",
        start=False,
    )
    assert doc_routes("Monitor API") == routes(app)


def test_alerts_with_severity_and_action():
    documented = {
        re.sub(r"`", "", name): (severity, action.split(",")[0])
        for name, severity, action in table_rows(section("Alerts"))
    }
    defined = {
        r["alert"]: (r["labels"]["severity"], r["labels"]["action"]) for r in c.alerting_rules()
    }
    assert documented == defined


def test_variables():
    from modelwatch.settings import SETTINGS

    documented = dict(
        re.findall(r"^\| `(MODELWATCH_\w+)` \| ([^|]*?) \|", section("Variables"), re.M)
    )
    # Whole names only: f"MODELWATCH_{name.upper()}_PORT" is spelled out where it is defined.
    read = set(re.findall(r"\bMODELWATCH_[A-Z0-9_]*[A-Z0-9]\b", code_text()))
    assert set(documented) == read
    defined = {
        name: s.shown_default() for name, s in SETTINGS.items() if name.startswith("MODELWATCH_")
    }
    assert documented == defined, "docs/DESIGN.md's defaults are modelwatch/settings.py's"


def test_entry_points_and_parameters():
    documented = {}
    for name, params, _ in table_rows(section("MLflow Project")):
        # parameter names are the backquoted words outside the parenthesised defaults
        documented[name.strip("`")] = set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", params)))
    project = yaml.safe_load((c.ROOT / "MLproject").read_text())["entry_points"]
    assert documented == {name: set(entry.get("parameters", {})) for name, entry in project.items()}


def test_commands():
    from modelwatch.cli import build_parser

    documented = set(re.findall(r"^\| `modelwatch ([\w-]+)`", section("The command line"), re.M))
    subparsers = next(
        a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"
    )
    assert documented == set(subparsers.choices)


def test_modelwatch_tags():
    documented = set(re.findall(r"`(modelwatch\.[a-z_]+)`", section("Artifacts and tags")))
    assert documented == set(re.findall(r"[\"'](modelwatch\.[a-z_]+)[\"']", code_text()))


def test_the_code_points_to_docs_design_md():
    """A clone has docs/DESIGN.md, not the DESIGN.md that once lay beside the repository."""
    stale = [
        str(p.relative_to(c.ROOT))
        for package in PACKAGES
        for p in (c.ROOT / package).rglob("*.py")
        if re.search(r"(?<!docs/)DESIGN\.md", p.read_text())
    ]
    assert stale == []
