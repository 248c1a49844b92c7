from __future__ import annotations

from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory) -> str:
    """One real MLflow server (SQLite backend, served artifacts) for the whole session."""
    with services.mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url
