from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parent.parent
# The shared fixtures that start real services. A test that uses one, directly or through
# other fixtures, is marked slow here; a module or test that starts services itself carries
# the mark in its own file. `make test-fast` runs the tests that are not slow.
SERVICE_FIXTURES = {"mlflow_url", "cluster"}


# `make test` runs the modules on several xdist workers, one module to a worker. Modules
# that share an expensive session fixture share a worker: both demo modules read the one
# `demos` fixture, which starts both demos (on two workers, four demos would run).
TOGETHER = {
    "tests/loop/test_closed_loop.py": "demos",
    "tests/loop/test_demo_without_prometheus.py": "demos",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # The longest first: the demos (minutes of waiting), then the modules that start
    # services, then the rest, which fills the workers' last minutes. The order within a
    # module is kept.
    slow_modules = {_module(i) for i in items if i.get_closest_marker("slow")}
    items.sort(key=lambda i: (_module(i) not in TOGETHER, _module(i) not in slow_modules))


def _module(item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`: whole modules to a worker, the TOGETHER ones as one."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return TOGETHER.get(module, module)

    return ModuleScheduling(config, log)


def pytest_configure(config):
    # Every MLflow server the tests start (theirs, the stack's, the demos') runs without
    # MLflow's job runner: seven huey consumers of 250 MB each, for MLflow's GenAI jobs,
    # which nothing here runs; under xdist several servers start at once on two cores.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


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
