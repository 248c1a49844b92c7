"""The apps the serving benchmark runs under gunicorn beside modelwatch's own.

``bare_app()``: the smallest honest Flask service of the same model, what one writes by
hand: ``mlflow.sklearn.load_model`` of the alias, ``predict_proba`` on a DataFrame of
the posted records, predictions and probabilities back as JSON. No validation, no log,
no metrics.

``floor_app()``: no model at all: parse the posted records, answer a constant for each.
No server of the same kind (Flask under this gunicorn worker model) can do less, so its
CPU per request bounds what any such server can achieve against the others.

``modelwatch_nolog_app()``: modelwatch's app with the prediction log's ``submit`` made a
no-op (validation, metrics and everything else as served), to price the log alone.

    gunicorn -c bench/gunicorn_bare.py "bench.apps:bare_app()"
    gunicorn -c bench/gunicorn_bare.py "bench.apps:floor_app()"
    gunicorn -c serving/gunicorn.conf.py "bench.apps:modelwatch_nolog_app()"
"""

from __future__ import annotations

import os


def bare_app():
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from flask import Flask, jsonify, request

    name = os.environ["MODELWATCH_MODEL_NAME"]
    alias = os.environ.get("MODELWATCH_MODEL_ALIAS", "production")
    model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    classes = model.classes_
    app = Flask("bare")

    def score(records):
        proba = model.predict_proba(pd.DataFrame(records))
        top = proba.argmax(axis=1)
        return classes[top].tolist(), (
            proba[:, 1] if proba.shape[1] == 2 else proba[np.arange(len(top)), top]
        ).tolist()

    @app.post("/predict")
    def predict():
        labels, probs = score(request.get_json()["records"])
        return jsonify({"predictions": labels, "probabilities": probs})

    @app.post("/invocations")
    def invocations():
        labels, _ = score(request.get_json()["dataframe_records"])
        return jsonify({"predictions": labels})

    @app.get("/ready")
    def ready():
        return "ok"

    return app


def floor_app():
    from flask import Flask, jsonify, request

    app = Flask("floor")

    @app.post("/predict")
    def predict():
        records = request.get_json()["records"]
        return jsonify({"predictions": [0] * len(records), "probabilities": [0.5] * len(records)})

    @app.get("/ready")
    def ready():
        return "ok"

    return app


def modelwatch_nolog_app():
    from modelwatch.serving.app import create_app

    app = create_app()
    app.extensions["modelwatch"].log.submit = lambda batch: None
    return app
