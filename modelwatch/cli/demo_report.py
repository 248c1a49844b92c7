"""The demo's HTML report: what the monitoring runs in MLflow recorded, plotted over time."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from plotly import graph_objects as go
from plotly.subplots import make_subplots

from modelwatch.settings import read

PANELS = (
    ("Accuracy: realized (labels) and estimated (CBPE)", ("live_accuracy", "estimated_accuracy")),
    ("Dataset drift share", ("dataset_drift_share",)),
    ("p95 latency (ms)", ("latency_p95_ms",)),
)


def write_report(
    client: MlflowClient, path: Path, timeline=None, model_name: str | None = None
) -> Path:
    model_name = model_name or read("MODELWATCH_MODEL_NAME")
    runs = _monitoring_runs(client, model_name)
    figure = make_subplots(
        rows=len(PANELS),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        subplot_titles=[title for title, _ in PANELS],
    )
    for version, run_id in runs:
        for row, (_, metrics) in enumerate(PANELS, start=1):
            for metric in metrics:
                history = sorted(
                    client.get_metric_history(run_id, metric), key=lambda m: m.timestamp
                )
                if history:
                    figure.add_trace(
                        go.Scatter(
                            x=[_time(m.timestamp) for m in history],
                            y=[m.value for m in history],
                            mode="lines+markers",
                            name=f"v{version} {metric}",
                            legendgroup=f"v{version}",
                        ),
                        row=row,
                        col=1,
                    )
        first = client.get_metric_history(run_id, "window_rows")
        if first:
            start = _time(min(m.timestamp for m in first))
            figure.add_vline(x=start, line_dash="dash", line_color="grey")
            figure.add_annotation(
                x=start, y=1.0, yref="paper", text=f"version {version}", showarrow=False
            )
    figure.update_layout(height=900, title=f"{model_name}: monitoring windows")
    events = "".join(
        f"<tr><td>{_time(t * 1000):%H:%M:%S}</td><td>{html.escape(what)}</td></tr>"
        for t, what in (timeline.events if timeline else [])
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>modelwatch demo</title></head><body>"
        f"<h1>modelwatch: {html.escape(model_name)}</h1>"
        f"{figure.to_html(full_html=False, include_plotlyjs=True)}"
        f"<h2>Timeline</h2><table>{events}</table></body></html>"
    )
    return path


def _monitoring_runs(client: MlflowClient, model_name: str) -> list[tuple[str, str]]:
    experiment = client.get_experiment_by_name(f"{model_name}-monitoring")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return sorted(
        ((r.data.tags.get("modelwatch.model_version", "?"), r.info.run_id) for r in runs),
        key=lambda pair: int(pair[0]) if pair[0].isdigit() else 0,
    )


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
