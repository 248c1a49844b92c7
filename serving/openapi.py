"""The OpenAPI 3.1 document of the serving API (GET /openapi.json).

It is true of this server, and checked so (`st run /openapi.json --checks all`,
tests/reliability/test_schemathesis.py): a body the document allows is scored, one it
does not is refused. So request schemas describe exactly what the served model's
signature accepts: every finite number for a number column (integer columns take
fractions too, as MLflow's do), null for any value, columns outside the signature
ignored, a record that lacks a required column refused. Where JSON Schema cannot say it,
the description does: `dataframe_split`'s optional `index` (one per row), `inputs` as
columns of equal length, parquet bodies.
"""

from __future__ import annotations

import re

from modelwatch.serving.labels import label_schema
from modelwatch.serving.validation import STORABLE_PATTERN

JSON = "application/json"
CSV = "text/csv"
TEXT = "text/plain"
MAX_DOUBLE = 1.7976931348623157e308
MAX_FLOAT = 3.4028234663852886e38  # float columns are float32
JSON_TYPES = {
    "double": "number",
    "float": "number",
    "long": "number",
    "integer": "number",
    "string": "string",
    "boolean": "boolean",
}
PARAM_TYPES = {
    "double": "number",
    "float": "number",
    "long": "integer",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
}
# One CSV cell a column's type reads (empty is a null).
CSV_CELLS = {
    "number": r"-?[0-9]{1,9}(\.[0-9]{1,6})?",
    "string": r"[A-Za-z_][A-Za-z0-9_]{0,11}",
    "boolean": r"(true|false)",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


ERRORS = {
    400: "malformed body or wrong shape",
    401: "bearer token missing",
    403: "bearer token not valid",
    413: "body over MODELWATCH_MAX_BODY_BYTES",
    415: "wrong content type",
    422: "values break the model signature, or rows over MODELWATCH_MAX_ROWS; on "
    "/feedback, a label that is not one of the model's classes (a regressor's: "
    "not a finite number), or text no store holds (NUL, lone surrogates)",
    502: "the new model version could not be loaded",
    503: "no model is served, or a dependency is down",
}


def _errors(*statuses: int) -> dict:
    return {str(s): _json(_ref("Error"), ERRORS[s]) for s in statuses}


def _mlflow_errors(*statuses: int) -> dict:
    """Errors of the MLflow surface: MLflow's error object; a 415 in plain text."""
    out = {str(s): _json(_ref("MlflowError"), ERRORS[s]) for s in statuses if s != 415}
    if 415 in statuses:
        out["415"] = {
            "description": "a content type (or parameter) MLflow does not read",
            "content": {TEXT: {"schema": {"type": "string"}}},
        }
    return out


def value_schema(col) -> dict:
    """One value of a column, as validation accepts it: any value may be null."""
    kind = JSON_TYPES.get(col.type)
    if kind is None:
        return {"description": f"MLflow type {col.type}"}
    schema = {
        "type": [kind, "null"],
        "description": f"MLflow type {col.type}; null goes to the model's imputation",
    }
    if kind == "number":
        limit = MAX_FLOAT if col.type == "float" else MAX_DOUBLE
        schema.update(minimum=-limit, maximum=limit)
    if kind == "string":  # no NUL: the prediction log could not store it
        schema["pattern"] = STORABLE_PATTERN
    return schema


def record_schema(spec) -> dict:
    if not spec:
        return {
            "type": "object",
            "additionalProperties": True,
            "description": "feature: value (the model has no column signature)",
        }
    return {
        "type": "object",
        "properties": {c.name: value_schema(c) for c in spec},
        "required": [c.name for c in spec if c.required],
        "additionalProperties": True,
        "description": "One row. Every required column is named in every record (its "
        "value may be null); columns outside the signature are ignored "
        "(and named in `warnings`).",
    }


def one_row_schema(spec) -> dict:
    """`inputs`/`instances` as one row: values, not lists (lists are the columns form)."""
    row = record_schema(spec)
    return {
        **row,
        "additionalProperties": {"not": {"type": ["array", "object"]}},
        "description": "One row of values.",
    }


def split_schema(spec, max_rows: int) -> dict:
    if not spec:
        return {
            "type": "object",
            "required": ["data"],
            "properties": {
                "columns": {"type": "array"},
                "data": {"type": "array", "items": {"type": "array"}},
            },
            "additionalProperties": False,  # as MLflow reads it (but `index`: see below)
        }
    n = len(spec)
    row = {
        "type": "array",
        "prefixItems": [value_schema(c) for c in spec],
        "items": False,
        "minItems": n,
    }
    return {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"const": [c.name for c in spec]},
            "data": {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows},
        },
        # MLflow refuses any other key. `index` is not declared: a schema cannot tie its
        # length to the rows', and one of another length is refused.
        "additionalProperties": False,
        "description": "pandas' split orientation, columns in the signature's order. An "
        "`index` may be sent (one entry per row); it names nothing the model "
        "reads.",
    }


def csv_schema(spec, max_rows: int) -> dict:
    """CSV as a pattern: a header naming the signature's columns, then rows of cells."""
    if not spec:
        return {"type": "string", "minLength": 1}
    cells = [f"({CSV_CELLS[JSON_TYPES.get(c.type, 'string')]})?" for c in spec]
    header = ",".join(re.escape(c.name) for c in spec)
    return {
        "type": "string",
        "pattern": f"^{header}\\n({','.join(cells)}\\n){{1,{max_rows}}}$",
        "description": "A header naming the columns, then one line per row (an empty "
        "cell is a null).",
    }


def params_doc(schema) -> dict:
    """`params` of the model's MLflow ParamSchema: each of its type, others ignored. Any
    value is ignored when the model has none, as MLflow does."""
    if schema is None:
        return {"description": "ignored: the model has no params schema"}
    props = {}
    for param in schema.params:
        kind = PARAM_TYPES.get(getattr(param.dtype, "name", str(param.dtype)))
        value = {"type": kind} if kind else {}
        props[param.name] = {"type": "array", "items": value} if param.shape else value
    return {
        "type": "object",
        "properties": props,
        "description": "passed to the model's predict; names outside its params schema are ignored",
    }


def invocations_schema(spec, rows: dict, max_rows: int, params: dict) -> dict:
    tensor = {
        "oneOf": [rows, one_row_schema(spec)],
        "description": ("records, or one row; also columns (column: [values], all of one length)"),
    }
    branches = {
        "dataframe_split": split_schema(spec, max_rows),
        "dataframe_records": rows,
        "instances": tensor,
        "inputs": tensor,
    }
    return {
        "description": "MLflow's scoring protocol: exactly one of the keys, and `params`.",
        "oneOf": [
            {"type": "object", "required": [key], "properties": {key: schema, "params": params}}
            for key, schema in branches.items()
        ],
    }


def component_schemas(spec, max_rows: int, params: dict, label: dict) -> dict:
    rows = {"type": "array", "items": _ref("Record"), "minItems": 1, "maxItems": max_rows}
    model_info = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "alias": {"type": "string"},
            "run_id": {"type": ["string", "null"]},
            "source": {"type": "string", "enum": ["registry", "cache", "fallback"]},
            "fallback": {"type": "boolean"},
            "flavor": {"type": "string"},
            "engine": {"type": "string"},
            "engine_note": {"type": "string"},
            "task": {"type": "string", "enum": ["binary", "multiclass", "regression"]},
            "classes": {"type": ["array", "null"]},
            "loaded_at": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "Record": record_schema(spec),
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
        },
        "MlflowError": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {
                "error_code": {
                    "type": "string",
                    "description": "MLflow's: BAD_REQUEST, INVALID_PARAMETER_VALUE, ...",
                },
                "message": {"type": "string"},
                "sqlstate": {"type": "string", "description": "MLflow's, from the code"},
                "error_class": {"type": "string", "description": "MLflow's, from the code"},
                "stack_trace": {
                    "type": "string",
                    "description": "where MLflow sends a traceback: the exception alone",
                },
            },
        },
        "Warning": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "paths": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "not_finite: the answers that were NaN or infinite "
                    "(answered as null; JSON has neither), the first 20",
                },
                "count": {"type": "integer"},
            },
        },
        "ModelRef": {
            "type": "object",
            "required": ["name", "version", "alias"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "alias": {"type": "string"},
            },
        },
        "PredictRequest": {
            "type": "object",
            "required": ["records"],
            "properties": {"records": rows},
        },
        "PredictResponse": {
            "type": "object",
            "required": ["predictions", "probabilities", "prediction_ids", "model"],
            "properties": {
                "predictions": {"type": "array", "items": {}},
                "probabilities": {
                    "type": ["array", "null"],
                    "items": {"type": ["number", "null"]},
                    "description": "positive-class probability (top class if multiclass); "
                    "null where the model's was not a finite number (see `warnings`)",
                },
                "prediction_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                "model": _ref("ModelRef"),
                "fallback": {"type": "boolean"},
                "warnings": {"type": "array", "items": _ref("Warning")},
            },
        },
        "InvocationsRequest": invocations_schema(spec, rows, max_rows, params),
        "InvocationsResponse": {
            "type": "object",
            "required": ["predictions"],
            "properties": {
                "predictions": {
                    "description": "what the model answers: labels, or a pyfunc's "
                    "own output (a frame as records, a list, ...)"
                },
                "fallback": {"type": "boolean"},
                "warnings": {"type": "array", "items": _ref("Warning")},
            },
        },
        "FeedbackRequest": {
            "type": "object",
            "required": ["feedback"],
            "properties": {
                "feedback": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_rows,
                    "items": {
                        "type": "object",
                        "required": ["prediction_id", "label"],
                        "properties": {
                            "prediction_id": {
                                "type": "string",
                                "minLength": 1,
                                "pattern": STORABLE_PATTERN,
                            },
                            "label": label,
                        },
                    },
                }
            },
        },
        "FeedbackResponse": {
            "type": "object",
            "required": ["accepted", "stored", "updated", "unchanged", "unknown"],
            "properties": {
                "accepted": {"type": "integer", "description": "ids found in the log"},
                "stored": {"type": "integer", "description": "labels new to the store"},
                "updated": {"type": "integer", "description": "labels that replaced another"},
                "unchanged": {"type": "integer", "description": "repeats: nothing stored"},
                "unknown": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "ids not in the prediction log",
                },
            },
        },
        "ModelInfo": model_info,
        "ModelDetails": {
            "allOf": [
                _ref("ModelInfo"),
                {"type": "object", "properties": {"challenger": _nullable(_ref("ModelInfo"))}},
            ]
        },
        "Ready": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ready"]},
                "model": _ref("ModelInfo"),
            },
        },
        "Health": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}},
        "Reload": {
            "type": "object",
            "required": ["result"],
            "properties": {
                "result": {"type": "string", "enum": ["success", "unchanged"]},
                "previous": _nullable(_ref("ModelInfo")),
                "current": _ref("ModelInfo"),
            },
        },
    }


def _body(schema_name: str) -> dict:
    return {"required": True, "content": {JSON: {"schema": _ref(schema_name)}}}


def paths(spec, cfg) -> dict:
    # MLflow answers /ping's "\n" and /version's bare string as JSON: no schema to hold.
    mlflow_text = {"content": {JSON: {}}}
    return {
        "/predict": {
            "post": {
                "summary": "Score records with the served model",
                "operationId": "predict",
                "requestBody": _body("PredictRequest"),
                "responses": {
                    "200": _json(_ref("PredictResponse"), "one answer per record"),
                    **_errors(400, 413, 415, 422, 503),
                },
            }
        },
        "/invocations": {
            "post": {
                "summary": "MLflow scoring protocol (drop-in for `mlflow models serve`): JSON, "
                "CSV, or parquet (application/vnd.apache.parquet)",
                "operationId": "invocations",
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {"schema": _ref("InvocationsRequest")},
                        CSV: {"schema": csv_schema(spec, cfg.max_rows)},
                    },
                },
                "responses": {
                    "200": _json(_ref("InvocationsResponse"), "the model's answers"),
                    **_mlflow_errors(400, 413, 415, 503),
                },
            }
        },
        "/feedback": {
            "post": {
                "summary": "True labels for earlier predictions (idempotent)",
                "operationId": "feedback",
                "requestBody": _body("FeedbackRequest"),
                "security": [{"bearer": []}] if cfg.feedback_token else [],
                "responses": {
                    "200": _json(_ref("FeedbackResponse"), "what was stored"),
                    **_errors(400, 401, 403, 413, 415, 422, 503),
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness",
                "operationId": "health",
                "responses": {"200": _json(_ref("Health"), "the process lives")},
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness",
                "operationId": "ready",
                "responses": {
                    "200": _json(_ref("Ready"), "a model (or the fallback) serves"),
                    **_errors(503),
                },
            }
        },
        "/ping": {
            "get": {
                "summary": "MLflow's readiness probe",
                "operationId": "ping",
                "responses": {
                    "200": {"description": "a model serves; the body is a newline", **mlflow_text},
                    **_mlflow_errors(503),
                },
            }
        },
        "/version": {
            "get": {
                "summary": "MLflow's version, as `mlflow models serve` answers",
                "operationId": "version",
                "responses": {"200": {"description": "the bare version string", **mlflow_text}},
            }
        },
        "/model": {
            "get": {
                "summary": "The served model (and the shadow challenger)",
                "operationId": "model",
                "responses": {
                    "200": _json(_ref("ModelDetails"), "the served model"),
                    **_errors(503),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus exposition (all workers)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "the text format, or OpenMetrics when the "
                        "Accept header asks for it",
                        "content": {
                            TEXT: {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
            }
        },
        "/admin/reload": {
            "post": {
                "summary": "Reload the alias now",
                "operationId": "reload",
                "security": [{"bearer": []}] if cfg.admin_token else [],
                "responses": {
                    "200": _json(_ref("Reload"), "reloaded, or already current"),
                    **_errors(401, 403, 502, 503),
                },
            }
        },
    }


def openapi_document(state, params_schema) -> dict:
    """The document for the served model; `params_schema` is its MLflow ParamSchema, or None."""
    model = state.models.current
    spec = model.spec if model is not None else None
    params = params_doc(params_schema)
    cfg = state.config
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelwatch serving",
            "version": "1",
            "description": f"Serves models:/{cfg.model_name}@{cfg.model_alias} from "
            "the MLflow registry, logs every prediction, takes feedback.",
        },
        "paths": paths(spec, cfg),
        "components": {
            "schemas": component_schemas(spec, cfg.max_rows, params, label_schema(model)),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "MODELWATCH_ADMIN_TOKEN on "
                    "/admin/*, MODELWATCH_FEEDBACK_TOKEN "
                    "on /feedback",
                }
            },
        },
    }
