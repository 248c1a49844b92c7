"""Every PromQL query of the provisioned Grafana dashboards, ready to send to Prometheus.

    from tests.stack_config.dashboards import panel_queries
    for q in panel_queries():
        requests.get(f"{prom}/api/v1/query", params={"query": q.expr})  # q.dashboard_uid, q.panel_title

Grafana's variables are substituted the way Grafana would for a default view:
`$__rate_interval` -> 1m, `$__interval` -> 15s, `$__range` -> 1h (and their `_s`/`_ms`
forms), and each template variable -> its "All" value (`.*` for the dashboards here).
Annotation queries are included, titled "annotation: <name>"; template variable queries
(`label_values(...)`) are not PromQL and are left out (see `variable_queries`). `chosen`
picks a variable's value instead (`panel_queries(chosen={"model": "a"})`: model a's view).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "grafana" / "dashboards"

BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


class PanelQuery(NamedTuple):
    dashboard_uid: str
    panel_title: str
    expr: str
    row: str = ""  # the title of the row the panel is in


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[Path, dict]:
    return {path: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def iter_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, rows' nested panels included; row panels themselves are skipped."""
    for _, panel in iter_panels_in_rows(dashboard):
        yield panel


def iter_panels_in_rows(dashboard: dict) -> Iterator[tuple[str, dict]]:
    """(the title of the row a panel is in, or "", the panel) for every panel."""
    row = ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row = panel.get("title", "")
            yield from ((row, nested) for nested in panel.get("panels", []))
        else:
            yield row, panel


def variable_values(dashboard: dict) -> dict[str, str]:
    """Template variable -> the value a query gets for the default ("All") selection."""
    values = dict(BUILTIN_VARIABLES)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("includeAll"):
            values[var["name"]] = var.get("allValue") or ".*"
        else:
            current = var.get("current", {}).get("value")
            values[var["name"]] = (
                current[0] if isinstance(current, list) and current else (current or ".*")
            )
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(repl, expr)


def panel_queries(
    directory: Path = DASHBOARDS_DIR, chosen: dict[str, str] | None = None
) -> list[PanelQuery]:
    """(dashboard uid, panel title, expr, row) for every target and annotation query."""
    out = []
    for dashboard in load_dashboards(directory).values():
        uid, values = dashboard["uid"], {**variable_values(dashboard), **(chosen or {})}
        for row, panel in iter_panels_in_rows(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    expr = substitute(target["expr"], values)
                    out.append(PanelQuery(uid, panel["title"], expr, row))
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                out.append(
                    PanelQuery(
                        uid,
                        f"annotation: {annotation['name']}",
                        substitute(annotation["expr"], values),
                    )
                )
    return out


def variable_queries(directory: Path = DASHBOARDS_DIR) -> list[tuple[str, str, str]]:
    """(dashboard uid, variable name, query) of the template variables."""
    out = []
    for dashboard in load_dashboards(directory).values():
        for var in dashboard.get("templating", {}).get("list", []):
            query = var.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            if text:
                out.append((dashboard["uid"], var["name"], text))
    return out
