"""schemathesis against the live server's own /openapi.json: for every operation, bodies
that follow the document (positive) and, where there is a body, bodies that break it
(negative), 30 examples at most of each, sent to real gunicorn. Checked on every answer:
never a 5xx, a status the document lists for the operation, the documented content type,
and a body that validates against the documented response schema.

Not checked: that every schema-violating body is refused (schemathesis'
`negative_data_rejection`). One is accepted on purpose: a record that lacks a column the
`Record` schema lists as required is scored with the column as null (imputed) when
another record of the request has the column, as `mlflow models serve` does with
`dataframe_records`; only a column absent from every record is a 422.

schemathesis is driven from Python (its strategies under hypothesis' `@given`): its lazy
pytest loader (`schemathesis.pytest.from_fixture`) reaches into a private attribute pytest
9 no longer has (`Function._nodeid`)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.conftest import MAX_ROWS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
WITH_BODY = [("POST", "/predict"), ("POST", "/invocations"), ("POST", "/feedback")]
WITHOUT_BODY = [("GET", "/health"), ("GET", "/ready"), ("GET", "/version"),
                ("GET", "/metrics"), ("GET", "/openapi.json"), ("POST", "/admin/reload")]
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in WITH_BODY + WITHOUT_BODY] + \
        [(m, p, GenerationMode.NEGATIVE) for m, p in WITH_BODY]


@pytest.fixture(scope="module")
def api_schema(server):
    doc = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    # The limits the document states are this server's own.
    assert doc["components"]["schemas"]["PredictRequest"]["properties"]["records"][
        "maxItems"] == MAX_ROWS
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    assert {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} == \
        set(WITH_BODY + WITHOUT_BODY), "an operation this test does not cover"
    return schema


@pytest.mark.parametrize("method, path, mode", CASES,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_every_operation_answers_as_its_openapi_document_says(api_schema, server, method,
                                                              path, mode):
    operation = api_schema[path][method]
    session = requests.Session()
    seen: list[int] = []

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call_and_validate(base_url=server.url, session=session,
                                          checks=CHECKS, timeout=30)
        seen.append(response.status_code)

    try:
        run()
    finally:
        session.close()
    assert seen, "schemathesis generated nothing"
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in seen), seen
