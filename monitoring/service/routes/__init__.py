"""The monitor's blueprints, one per concern: ops.py (/metrics, /health, /status) and
alerts.py (Alertmanager's webhook, POST /alerts)."""

from flask import current_app


def state():
    """The MonitorState of the current app."""
    return current_app.extensions["modelwatch"]
