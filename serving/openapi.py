"""The OpenAPI 3 document of the serving API (GET /openapi.json)."""

from __future__ import annotations

JSON = "application/json"
TYPE_SCHEMAS = {
    "double": {"type": "number"}, "float": {"type": "number"},
    "long": {"type": "integer"}, "integer": {"type": "integer"},
    "string": {"type": "string"}, "boolean": {"type": "boolean"},
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    text = {400: "malformed JSON or wrong shape", 401: "bearer token missing",
            403: "bearer token not valid", 404: "no such route", 405: "method not allowed",
            413: "body over MODELWATCH_MAX_BODY_BYTES or rows over MODELWATCH_MAX_ROWS",
            415: "wrong content type", 422: "values break the model signature",
            502: "the new model version could not be loaded",
            503: "no model is served, or a dependency is down"}
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


def record_schema(spec) -> dict:
    if not spec:
        return {"type": "object", "additionalProperties": True,
                "description": "feature: value (the model has no column signature)"}
    props = {}
    for col in spec:
        schema = dict(TYPE_SCHEMAS.get(col.type, {}))
        schema["nullable"] = True
        schema["description"] = f"MLflow type {col.type}; null goes to the model's imputation"
        props[col.name] = schema
    return {"type": "object", "properties": props,
            "required": [c.name for c in spec if c.required],
            "additionalProperties": True,
            "description": "One row. Every required column is named in every record (its "
                           "value may be null); columns outside the signature are ignored "
                           "(and named in `warnings`)."}


def openapi_document(state) -> dict:
    model = state.models.current
    spec = model.spec if model is not None else None
    cfg = state.config
    rows = {"type": "array", "items": _ref("Record"), "minItems": 1, "maxItems": cfg.max_rows}
    schemas = {
        "Record": record_schema(spec),
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "details": {"type": "object"}}}}},
        "Warning": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}}}},
        "ModelRef": {"type": "object", "required": ["name", "version", "alias"],
                     "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                    "alias": {"type": "string"}}},
        "PredictRequest": {"type": "object", "required": ["records"],
                           "properties": {"records": rows}},
        "PredictResponse": {
            "type": "object",
            "required": ["predictions", "probabilities", "prediction_ids", "model"],
            "properties": {
                "predictions": {"type": "array", "items": {}},
                "probabilities": {"type": "array", "nullable": True,
                                  "items": {"type": "number", "minimum": 0, "maximum": 1},
                                  "description": "positive-class probability (top class "
                                                 "if multiclass)"},
                "prediction_ids": {"type": "array", "items": {"type": "string",
                                                              "format": "uuid"}},
                "model": _ref("ModelRef"),
                "fallback": {"type": "boolean"},
                "warnings": {"type": "array", "items": _ref("Warning")}}},
        "InvocationsRequest": {
            "description": "The MLflow scoring protocol: exactly one of the keys.",
            "oneOf": [
                {"type": "object", "required": ["dataframe_split"], "properties": {
                    "dataframe_split": {"type": "object", "required": ["data"], "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}}}}}},
                {"type": "object", "required": ["dataframe_records"],
                 "properties": {"dataframe_records": rows}},
                {"type": "object", "required": ["instances"], "properties": {"instances": {
                    "oneOf": [rows, {"type": "object", "additionalProperties": {
                        "type": "array"}}]}}},
                {"type": "object", "required": ["inputs"], "properties": {"inputs": {
                    "oneOf": [rows, {"type": "object", "additionalProperties": {
                        "type": "array"}}]}}},
            ]},
        "InvocationsResponse": {"type": "object", "required": ["predictions"],
                                "properties": {"predictions": {"type": "array", "items": {}}}},
        "FeedbackRequest": {"type": "object", "required": ["feedback"], "properties": {
            "feedback": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["prediction_id", "label"], "properties": {
                    "prediction_id": {"type": "string"},
                    "label": {"oneOf": [{"type": "number"}, {"type": "string"},
                                        {"type": "boolean"}]}}}}}},
        "FeedbackResponse": {
            "type": "object",
            "required": ["accepted", "stored", "updated", "unchanged", "unknown"],
            "properties": {
                "accepted": {"type": "integer", "description": "ids found in the log"},
                "stored": {"type": "integer", "description": "labels new to the store"},
                "updated": {"type": "integer", "description": "labels that replaced "
                                                              "another"},
                "unchanged": {"type": "integer", "description": "repeats: nothing stored"},
                "unknown": {"type": "array", "items": {"type": "string"},
                            "description": "ids not in the prediction log"}}},
        "ModelInfo": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "alias": {"type": "string"}, "run_id": {"type": "string", "nullable": True},
            "source": {"type": "string", "enum": ["registry", "cache", "fallback"]},
            "fallback": {"type": "boolean"}, "flavor": {"type": "string"},
            "loaded_at": {"type": "string", "format": "date-time"}}},
        "Version": {"allOf": [_ref("ModelInfo"), {"type": "object", "properties": {
            "challenger": {"nullable": True, "allOf": [_ref("ModelInfo")]}}}]},
        "Ready": {"type": "object", "properties": {"status": {"type": "string",
                                                              "enum": ["ready"]},
                                                   "model": _ref("ModelInfo")}},
        "Health": {"type": "object", "properties": {"status": {"type": "string",
                                                               "enum": ["ok"]}}},
        "Reload": {"type": "object", "required": ["result"], "properties": {
            "result": {"type": "string", "enum": ["success", "unchanged"]},
            "previous": {"nullable": True, "allOf": [_ref("ModelInfo")]},
            "current": _ref("ModelInfo")}},
    }
    paths = {
        "/predict": {"post": {
            "summary": "Score records with the served model", "operationId": "predict",
            "requestBody": {"required": True, "content": {JSON: {
                "schema": _ref("PredictRequest")}}},
            "responses": {"200": _json(_ref("PredictResponse"), "one answer per record"),
                          **_errors(400, 413, 415, 422, 503)}}},
        "/invocations": {"post": {
            "summary": "MLflow scoring protocol (drop-in for `mlflow models serve`)",
            "operationId": "invocations",
            "requestBody": {"required": True, "content": {
                JSON: {"schema": _ref("InvocationsRequest")},
                "text/csv": {"schema": {"type": "string"}}}},
            "responses": {"200": _json(_ref("InvocationsResponse"), "predicted classes"),
                          **_errors(400, 413, 415, 422, 503)}}},
        "/feedback": {"post": {
            "summary": "True labels for earlier predictions (idempotent)",
            "operationId": "feedback",
            "requestBody": {"required": True, "content": {JSON: {
                "schema": _ref("FeedbackRequest")}}},
            "responses": {"200": _json(_ref("FeedbackResponse"), "what was stored"),
                          **_errors(400, 413, 415, 503)}}},
        "/health": {"get": {"summary": "Liveness", "operationId": "health", "responses": {
            "200": _json(_ref("Health"), "the process lives")}}},
        "/ready": {"get": {"summary": "Readiness", "operationId": "ready", "responses": {
            "200": _json(_ref("Ready"), "a model (or the fallback) serves"),
            **_errors(503)}}},
        "/version": {"get": {"summary": "The served model", "operationId": "version",
                             "responses": {"200": _json(_ref("Version"), "the served model"),
                                           **_errors(503)}}},
        "/metrics": {"get": {"summary": "Prometheus exposition (all workers)",
                             "operationId": "metrics", "responses": {"200": {
                                 "description": "text exposition format 0.0.4",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": _json({"type": "object"},
                                                             "OpenAPI 3 document")}}},
        "/admin/reload": {"post": {
            "summary": "Reload the alias now", "operationId": "reload",
            "security": [{"bearer": []}] if cfg.admin_token else [],
            "responses": {"200": _json(_ref("Reload"), "reloaded, or already current"),
                          **_errors(401, 403, 502, 503)}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "modelwatch serving", "version": "1",
                 "description": f"Serves models:/{cfg.model_name}@{cfg.model_alias} from "
                                "the MLflow registry, logs every prediction, takes feedback."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "MODELWATCH_ADMIN_TOKEN"}}},
    }
