"""The compiled engine answers exactly what sklearn answers, or it is not used."""

from __future__ import annotations

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature
from modelwatch.serving.compiled import NotCompilable, compile_pipeline, probe_frame, verify
from modelwatch.serving.compiled.preprocess import UNSEEN
from modelwatch.serving.model import load_local
from modelwatch.serving.validation import ColumnSpec, validate
from modelwatch.training import pipeline as training_pipeline
from modelwatch.training.simulator import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    SCENARIOS,
    TARGET,
    generate,
)
from modelwatch.training.train import own_types
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from tests.serving.modelkit import feature_rows

SPEC = [ColumnSpec(c, "double") for c in NUMERIC_FEATURES] + [
    ColumnSpec(c, "string") for c in CATEGORICAL_FEATURES
]


@pytest.fixture(scope="module")
def fitted():
    """The training entry point's three classifiers, fitted on the simulator."""
    df = generate(6000, seed=11)
    return {
        kind: training_pipeline.build(
            kind, NUMERIC_FEATURES, CATEGORICAL_FEATURES, 0, "binary"
        ).fit(df[FEATURES], df[TARGET])
        for kind in training_pipeline.CLASSIFIERS
    }


def _traffic() -> pd.DataFrame:
    """Every simulator scenario: unseen regions, missing values, swapped columns."""
    return pd.concat(
        [generate(300, scenario=s, seed=i)[FEATURES] for i, s in enumerate(SCENARIOS)],
        ignore_index=True,
    )


@pytest.mark.parametrize("kind", training_pipeline.CLASSIFIERS)  # only classifiers compile
@pytest.mark.parametrize("rows", [1, 7, 64, 65, 300, 1800])
def test_compiled_answers_are_sklearns(fitted, kind, rows):
    """Every request size (the tree walk below its limit, sklearn's predictor above it)."""
    model = fitted[kind]
    compiled = compile_pipeline(model)
    checked = validate(_traffic().sample(rows, random_state=rows), SPEC)
    assert checked.null_rows > 0 or rows < 300
    expected = model.predict_proba(checked.frame)
    got = compiled.predict_proba(checked.columns)
    if kind == "rf":  # the forest adds its trees in thread order: the last bit may move
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, expected)


def test_probe_rows_reach_every_category_missing_and_unseen_values(fitted):
    compiled = compile_pipeline(fitted["gbm"])
    example = generate(5, seed=3)[FEATURES]
    probes = probe_frame(compiled, FEATURES, example, rows=400)
    assert list(probes.columns) == FEATURES and len(probes) == 405
    for column in CATEGORICAL_FEATURES:
        values = set(probes[column].dropna())
        assert set(generate(2000, seed=1)[column]) <= values
        assert UNSEEN in values and UNSEEN not in set(example[column])
        assert probes[column].isna().any()
    assert all(probes[c].isna().any() for c in NUMERIC_FEATURES)
    checked = validate(probes, SPEC)
    assert verify(fitted["gbm"], compiled, checked.columns, checked.frame) == 0.0


def test_a_wrong_compilation_is_caught_by_the_check(fitted):
    """The guard can fail: a compiled scaler off by a little is a difference."""
    model = fitted["gbm"]
    compiled = compile_pipeline(model)
    numeric = compiled.preprocessor.blocks[0]
    numeric.mean = numeric.mean + 0.05 * numeric.scale
    checked = validate(probe_frame(compiled, FEATURES, None), SPEC)
    assert verify(model, compiled, checked.columns, checked.frame) > 1e-6


def test_unknown_categories_are_the_models_error_when_it_refuses_them():
    df = generate(1000, seed=2)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), NUMERIC_FEATURES),
                        ("cat", OrdinalEncoder(), ["region"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(df[FEATURES], df[TARGET])
    compiled = compile_pipeline(pipe)
    rows = df[FEATURES].head(3).copy()
    assert np.array_equal(
        compiled.predict_proba({c: rows[c].to_numpy() for c in FEATURES}), pipe.predict_proba(rows)
    )
    rows.loc[1, "region"] = "atlantis"
    with pytest.raises(ValueError, match="region.*atlantis"):
        compiled.predict_proba({c: rows[c].to_numpy() for c in FEATURES})


@pytest.mark.parametrize(
    "build, reason",
    [
        (lambda: GradientBoostingClassifier(n_estimators=5), "not a two-step Pipeline"),
        (
            lambda: make_pipeline(
                make_pipeline(SimpleImputer(), StandardScaler()),
                GradientBoostingClassifier(n_estimators=5),
            ),
            "first step Pipeline, not a ColumnTransformer",
        ),
        (
            lambda: Pipeline(
                [
                    ("prep", ColumnTransformer([("num", StandardScaler(), NUMERIC_FEATURES)])),
                    ("model", GradientBoostingClassifier(n_estimators=5)),
                ]
            ),
            "estimator GradientBoostingClassifier",
        ),
    ],
)
def test_unknown_shapes_say_what_they_are(build, reason):
    df = generate(500, seed=4)
    model = build().fit(df[NUMERIC_FEATURES], df[TARGET])
    with pytest.raises(NotCompilable, match=reason):
        compile_pipeline(model)


def _save(model, path, frame) -> str:
    example = frame.head(5)
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        skops_trusted_types=own_types(model),
        pip_requirements=["scikit-learn"],  # spares MLflow's inference (a subprocess)
    )
    return str(path)


AS_SERVED = {
    "name": "m",
    "version": "1",
    "alias": "production",
    "run_id": None,
    "source": "registry",
}


@pytest.mark.slow  # computes for many seconds: `make test` runs it, `make test-fast` does not
def test_serving_loads_the_compiled_engine_and_says_why_not_otherwise(fitted, tmp_path):
    frame = generate(50, seed=5)[FEATURES]
    path = _save(fitted["gbm"], tmp_path / "gbm", frame)
    served = load_local(path, **AS_SERVED)
    assert (served.engine.name, served.engine_note) == ("compiled", "")
    assert served.describe()["engine"] == "compiled"
    off = load_local(path, **AS_SERVED, compile=False)
    assert off.engine.name == "sklearn" and "MODELWATCH_COMPILE_MODEL=0" in off.engine_note
    checked = validate(feature_rows(40, seed=9), SPEC)
    got, ref = served.predict(checked), off.predict(validate(feature_rows(40, seed=9), SPEC))
    assert np.array_equal(got.labels, ref.labels) and np.array_equal(got.scores, ref.scores)
    assert np.array_equal(got.proba, ref.proba)

    unknown = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC_FEATURES),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_FEATURES),
                    ]
                ),
            ),
            ("model", GradientBoostingClassifier(n_estimators=5)),
        ]
    )
    df = generate(500, seed=6)
    unknown.fit(df[FEATURES], df[TARGET])
    kept = load_local(_save(unknown, tmp_path / "other", frame), **AS_SERVED)
    assert kept.engine.name == "sklearn"
    assert kept.engine_note == "not compiled: estimator GradientBoostingClassifier"
    assert len(kept.predict(validate(feature_rows(3), SPEC)).labels) == 3


def _typed_frame(n: int, seed: int) -> pd.DataFrame:
    """A boolean, an integer, a number and a text category, as a team's table has them."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50.0, 10.0, n),
            "age": rng.integers(18, 80, n),
            "is_customer": rng.random(n) < 0.4,
            "region": rng.choice(["north", "south", "east"], n),
        }
    )


@pytest.mark.slow  # saves and loads an MLflow model: seconds
def test_a_pipeline_of_booleans_integers_and_categories_is_compiled(tmp_path):
    """The probes take each column's type from the signature (issue 22: floats in a
    passthrough boolean column failed the check, and sklearn served), and the compiled
    answers are the registered model's own, through MLflow's pyfunc."""
    frame = _typed_frame(1500, seed=1)
    y = (
        (frame["income"] - 50) / 10
        + frame["is_customer"]
        + (frame["region"] == "north")
        + (frame["age"] - 50) / 20
        > 0.8
    ).astype(int)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["income", "age"]),
                        ("flag", "passthrough", ["is_customer"]),
                        (
                            "cat",
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                            ["region"],
                        ),
                    ]
                ),
            ),
            ("model", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        ]
    ).fit(frame, y)
    path = _save(model, tmp_path / "typed", frame)
    served = load_local(path, **AS_SERVED)
    assert (served.engine.name, served.engine_note) == ("compiled", "")
    assert [c.type for c in served.spec] == ["double", "long", "boolean", "string"]
    traffic = _typed_frame(200, seed=2)
    traffic.loc[3, "region"] = "atlantis"  # unseen: the encoder ignores it
    got = served.predict(validate(traffic.to_dict(orient="records"), served.spec))
    pyfunc = mlflow.pyfunc.load_model(path)
    np.testing.assert_array_equal(got.labels, pyfunc.predict(traffic))
    np.testing.assert_array_equal(got.proba, model.predict_proba(traffic))
