"""A schemathesis check, loaded by `st run` through SCHEMATHESIS_HOOKS: every JSON answer
parses as RFC 8259 JSON (no NaN or Infinity token, which Python's parser, schemathesis's
own, takes without a word). /ping's and /version's bodies are MLflow's text under a JSON
media type, as MLflow answers them."""

import json

import schemathesis

MLFLOW_TEXT = ("/ping", "/version")


def _refuse(token: str):
    raise AssertionError(f"the answer holds {token}, which is not JSON")


@schemathesis.check
def strict_json(ctx, response, case):
    """Every answer sent as JSON is JSON."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if "json" not in content_type or case.path in MLFLOW_TEXT or not response.content:
        return None
    json.loads(response.content, parse_constant=_refuse)
    return None
