from __future__ import annotations

from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parent.parent
# The shared fixtures that start real services. A test that uses one, directly or through
# other fixtures, is marked slow here; a module or test that starts services itself carries
# the mark in its own file. `make test-fast` runs the tests that are not slow.
SERVICE_FIXTURES = {"mlflow_url", "cluster"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before its fixtures: a real process in a test not marked slow fails it (see
    # services.process), so that `make test-fast` stays free of services as tests are added.
    services.slow_test = item.get_closest_marker("slow") is not None


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory) -> str:
    """One real MLflow server (SQLite backend, served artifacts) for the whole session."""
    with services.mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url
