"""The app's blueprints, one per concern."""

from flask import current_app


def state():
    """The ServingState of the current app."""
    return current_app.extensions["modelwatch"]
