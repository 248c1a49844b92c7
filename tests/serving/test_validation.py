"""Request validation: records cast to the model's signature, every problem named in one 422."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelwatch.serving.validation import ColumnSpec, parse_json_bytes, validate
from modelwatch.training.simulator import CATEGORICAL_FEATURES, NUMERIC_FEATURES

from modelwatch.web.errors import ApiError
from tests.serving.modelkit import feature_rows

SPEC = [ColumnSpec(c, "double") for c in NUMERIC_FEATURES] + [
    ColumnSpec(c, "string") for c in CATEGORICAL_FEATURES
]


def problems(exc: ApiError) -> dict:
    return {p["column"]: p for p in exc.details["columns"]}


def test_valid_rows_are_cast_to_the_signature_in_its_order():
    rows = feature_rows(5)
    rows[0]["age"] = 40  # an int for a double column is fine
    rows[1]["income"] = None  # a null goes to the model's imputation
    rows[2]["surprise"] = "x"
    out = validate(pd.DataFrame(rows), SPEC)
    assert list(out.frame.columns) == [c.name for c in SPEC]
    assert out.frame["age"].dtype == np.float64
    assert math.isnan(out.frame.loc[1, "income"])
    assert out.null_rows == 1
    assert out.unknown_columns == ["surprise"]
    assert out.warnings[0]["columns"] == ["surprise"]


def test_a_record_without_a_required_column_is_a_422_even_in_a_batch():
    """The same record is refused alone and in a batch: nothing is imputed silently."""
    rows = feature_rows(4)
    del rows[1]["age"], rows[3]["age"], rows[3]["region"]
    with pytest.raises(ApiError) as info:
        validate(rows, SPEC)
    found = problems(info.value)
    assert found["age"] == {"column": "age", "problem": "missing", "rows": [1, 3], "count": 2}
    assert found["region"]["rows"] == [3] and set(found) == {"age", "region"}
    with pytest.raises(ApiError):
        validate([rows[1]], SPEC)
    rows[1]["age"], rows[3]["age"], rows[3]["region"] = None, None, None  # null is fine
    out = validate(rows, SPEC)
    assert out.null_rows == 2 and math.isnan(out.columns["age"][1])
    assert out.columns["region"][3] != out.columns["region"][3]  # NaN: the model imputes


def test_every_offending_column_is_named_in_one_422():
    rows = feature_rows(3)
    for r in rows:
        del r["region"]
    rows[0]["age"] = "forty"
    rows[1]["channel"] = 3
    rows[2]["debt_to_income"] = float("inf")
    rows[0]["loan_amount"] = True
    with pytest.raises(ApiError) as info:
        validate(pd.DataFrame(rows), SPEC)
    assert info.value.status == 422
    found = problems(info.value)
    assert found["region"]["problem"] == "missing"
    assert found["age"]["problem"] == "wrong_type"
    assert found["channel"]["problem"] == "wrong_type"
    assert found["debt_to_income"] == {
        "column": "debt_to_income",
        "problem": "not_finite",
        "rows": [2],
        "count": 1,
    }
    assert found["loan_amount"]["problem"] == "wrong_type"
    assert set(info.value.reason) == {"missing_column", "wrong_type", "not_finite"}
    for name in ("region", "age", "channel", "debt_to_income"):
        assert name in info.value.message


def test_json_nan_literals_are_nulls_and_infinities_are_not_finite():
    # NaN is how pandas' and MLflow's serialisers write a missing value.
    body = parse_json_bytes(b'{"records": [{"age": NaN}, {"age": -Infinity}, {"age": 1}]}')
    assert body["records"][0]["age"] is None
    with pytest.raises(ApiError) as info:
        validate(pd.DataFrame(body["records"]), [ColumnSpec("age", "double")])
    assert problems(info.value)["age"]["rows"] == [1]


def test_a_column_of_nulls_passes_and_optional_columns_may_be_absent():
    df = pd.DataFrame({"a": [None, None], "b": ["x", None]})
    spec = [
        ColumnSpec("a", "double"),
        ColumnSpec("b", "string"),
        ColumnSpec("c", "double", required=False),
    ]
    out = validate(df, spec)
    assert out.frame["a"].isna().all() and out.frame["c"].isna().all()
    assert out.null_rows == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-(10**9), 10**9),
            st.text(max_size=3),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_numeric_columns_accept_exactly_numbers_and_nulls(values):
    df = pd.DataFrame({"x": pd.Series(values, dtype=object)})
    ok = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
    if ok:
        out = validate(df, [ColumnSpec("x", "double")])
        expected = [np.nan if v is None else float(v) for v in values]
        np.testing.assert_array_equal(out.frame["x"].to_numpy(), expected)
    else:
        with pytest.raises(ApiError) as info:
            validate(df, [ColumnSpec("x", "double")])
        assert info.value.status == 422
