"""schemathesis against the live server's own /openapi.json, as a user would run it:
`st run /openapi.json --checks all`, every check it has, against real gunicorn.

Among them: a body the document allows must be scored (`positive_data_acceptance`), one
it does not must be refused with a 4xx schemathesis recognises as a refusal
(`negative_data_rejection`: rows over the limit are a 422, not 413), every answer has a
documented status, content type and schema, and the admin route refuses a request
without its token (`ignored_auth`). Examples are derived deterministically from a fixed
seed, so a failure reproduces; schemathesis prints the `curl` of each failing request."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from tests.reliability.conftest import ADMIN_TOKEN, MAX_BODY, MAX_ROWS, serving_env
from tests.services import VENV_BIN
from tests.serving.conftest import gunicorn

OPERATIONS = {
    ("POST", "/predict"),
    ("POST", "/invocations"),
    ("POST", "/feedback"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/ping"),
    ("GET", "/version"),
    ("GET", "/model"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/admin/reload"),
}


def test_the_document_covers_every_operation_with_this_servers_limits(server):
    doc = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    assert (
        doc["components"]["schemas"]["PredictRequest"]["properties"]["records"]["maxItems"]
        == MAX_ROWS
    )
    assert {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} == OPERATIONS


@pytest.fixture(scope="module")
def feedback_token_server(model, tmp_path_factory):
    """The shared server's settings, with /feedback's token set too (the same token, so
    that one header serves both write paths)."""
    env = serving_env(
        model,
        MODELWATCH_ADMIN_TOKEN=ADMIN_TOKEN,
        MODELWATCH_FEEDBACK_TOKEN=ADMIN_TOKEN,
        MODELWATCH_MAX_ROWS=str(MAX_ROWS),
        MODELWATCH_MAX_BODY_BYTES=str(MAX_BODY),
        MODELWATCH_FEEDBACK_WAIT="0.2",
    )
    with gunicorn(
        tmp_path_factory.mktemp("schemathesis-tokens"), env, workers=2, ready_version=model.version
    ) as srv:
        yield srv


@pytest.mark.slow  # its servers are asked for by name, which the slow marking cannot see
@pytest.mark.parametrize("which", ["server", "feedback_token_server"])
def test_st_run_with_every_check_finds_nothing(request, which, tmp_path):
    server = request.getfixturevalue(which)
    args = [
        str(VENV_BIN / "st"),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "40",
        "--seed",
        "12",
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--report-dir",
        str(tmp_path),
    ]
    # And every JSON answer is strict JSON (a custom check: schemathesis's parser takes NaN).
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("strict_json_check.py")),
    }
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
