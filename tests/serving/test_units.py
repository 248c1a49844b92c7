"""Validation, fallback rules, the SQLite store and the spilling writer: no servers."""

from __future__ import annotations

import errno
import json
import math
import os
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.errors import ApiError
from serving.fallback import RuleModel
from serving.store import open_store
from serving.store.base import StoreError
from serving.store.batch import LogBatch
from serving.store.writer import PredictionLog
from serving.validation import ColumnSpec, parse_json_bytes, validate
from tests.serving.modelkit import feature_rows
from training.simulator import CATEGORICAL_FEATURES, NUMERIC_FEATURES

SPEC = [ColumnSpec(c, "double") for c in NUMERIC_FEATURES] + \
       [ColumnSpec(c, "string") for c in CATEGORICAL_FEATURES]


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
    assert found["debt_to_income"] == {"column": "debt_to_income", "problem": "not_finite",
                                       "rows": [2], "count": 1}
    assert found["loan_amount"]["problem"] == "wrong_type"
    assert set(info.value.reason) == {"missing_column", "wrong_type", "not_finite"}
    for name in ("region", "age", "channel", "debt_to_income"):
        assert name in info.value.message


def test_json_nan_and_infinity_literals_are_not_finite():
    body = parse_json_bytes(b'{"records": [{"age": NaN}, {"age": -Infinity}]}')
    with pytest.raises(ApiError) as info:
        validate(pd.DataFrame(body["records"]), [ColumnSpec("age", "double")])
    assert problems(info.value)["age"]["rows"] == [0, 1]


def test_a_column_of_nulls_passes_and_optional_columns_may_be_absent():
    df = pd.DataFrame({"a": [None, None], "b": ["x", None]})
    spec = [ColumnSpec("a", "double"), ColumnSpec("b", "string"),
            ColumnSpec("c", "double", required=False)]
    out = validate(df, spec)
    assert out.frame["a"].isna().all() and out.frame["c"].isna().all()
    assert out.null_rows == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                          st.integers(-10**9, 10**9), st.text(max_size=3), st.booleans()),
                min_size=1, max_size=8))
def test_numeric_columns_accept_exactly_numbers_and_nulls(values):
    df = pd.DataFrame({"x": pd.Series(values, dtype=object)})
    ok = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
             for v in values)
    if ok:
        out = validate(df, [ColumnSpec("x", "double")])
        expected = [np.nan if v is None else float(v) for v in values]
        np.testing.assert_array_equal(out.frame["x"].to_numpy(), expected)
    else:
        with pytest.raises(ApiError) as info:
            validate(df, [ColumnSpec("x", "double")])
        assert info.value.status == 422


def test_fallback_rules_are_vectorised_business_rules():
    rules = RuleModel.load("default")
    assert {c.name for c in rules.spec} >= {"debt_to_income", "credit_score"}
    X = pd.DataFrame({
        "debt_to_income": [0.5, 0.2, 0.2, np.nan],
        "credit_score": [700.0, 550.0, 720.0, np.nan],
        "employment_years": [5.0, 5.0, 5.0, 5.0],
        "loan_amount": [1000.0, 1000.0, 1000.0, 1000.0],
        "home_ownership": ["own", "own", "own", None],
    })
    labels, probs = rules.predict(X)
    assert labels.tolist() == [1, 1, 0, 0]
    assert probs[0] == 0.75 and probs[1] == 0.7 and probs[2] == rules.base


def test_broken_rules_are_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - when: {age: {'~': 3}}\n")
    with pytest.raises(ValueError, match="unknown operator"):
        RuleModel.load(str(path))


def _batch(n: int, version: str = "1", seed: int = 3) -> LogBatch:
    rows = feature_rows(n, seed=seed)
    ids = [f"id-{seed}-{i}" for i in range(n)]
    return LogBatch(ids=ids, ts=1_700_000_000.0 + seed, model_name="m", model_version=version,
                    model_alias="production", features=validate(pd.DataFrame(rows), None),
                    predictions=[i % 2 for i in range(n)],
                    probabilities=[0.1 * (i % 10) for i in range(n)], latency_ms=2.5)


def test_sqlite_store_round_trip_feedback_and_window(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    store.insert_predictions(_batch(4, "1", seed=1).rows())
    store.insert_predictions(_batch(3, "2", seed=2).rows())
    store.insert_predictions(_batch(3, "2", seed=2).rows())  # a replay stores nothing twice
    assert store.count() == 7
    assert store.known_ids(["id-1-0", "nope"]) == {"id-1-0"}
    assert store.store_feedback({"id-1-0": 1, "id-1-1": 0}) == \
        {"stored": 2, "updated": 0, "unchanged": 0}
    assert store.store_feedback({"id-1-0": 1.0, "id-1-1": 1}) == \
        {"stored": 0, "updated": 1, "unchanged": 1}
    df = store.read_window()
    assert len(df) == 7 and df["ts"].is_monotonic_increasing
    assert str(df["ts"].dt.tz) == "UTC"
    labelled = df.set_index("prediction_id")["label"]
    assert labelled["id-1-0"] == 1 and labelled["id-1-1"] == 1
    assert labelled.isna().sum() == 5
    assert set(NUMERIC_FEATURES + CATEGORICAL_FEATURES) <= set(df.columns)
    assert df["income"].dtype == np.float64
    v2 = store.read_window(model_version="2")
    assert len(v2) == 3 and set(v2["model_version"]) == {"2"}
    assert len(store.read_window(limit=2)) == 2
    assert len(store.read_window(since=1_700_000_002.0)) == 3
    assert len(store.read_window(until=1_700_000_002.0)) == 4
    store.close()


class FlakyStore:
    """A store that is down while `down` is set, recording what it stored."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.rows: dict[str, tuple] = {}

    def insert_predictions(self, rows):
        if self.down.is_set():
            raise StoreError("connection refused")
        for r in rows:
            self.rows.setdefault(r[0], r)

    def ping(self):
        return not self.down.is_set()


def test_writer_spills_while_the_store_is_down_and_replays_everything(tmp_path):
    store = FlakyStore()
    outcomes: dict[str, int] = {}
    log = PredictionLog(store, tmp_path / "spill", retry_interval=0.1,
                        on_outcome=lambda o, n: outcomes.__setitem__(o, outcomes.get(o, 0) + n))
    log.start()
    log.submit(_batch(5, seed=1))
    assert log.flush(5)
    store.down.set()
    log.submit(_batch(5, seed=2))
    log.submit(_batch(5, seed=3))
    assert log.flush(5)
    assert len(store.rows) == 5 and log.store_down
    spilled = list((tmp_path / "spill").glob("*.jsonl"))
    assert sum(len(p.read_text().splitlines()) for p in spilled) == 10
    store.down.clear()
    log.submit(_batch(5, seed=4))
    assert log.flush(5)
    log.close()
    assert len(store.rows) == 20
    assert not list((tmp_path / "spill").glob("*.jsonl"))
    assert outcomes["spilled"] >= 10 and outcomes["replayed"] == outcomes["spilled"]


def test_spill_left_by_a_dead_process_is_claimed_and_replayed(tmp_path):
    store = FlakyStore()
    writer = PredictionLog(store, tmp_path, retry_interval=0.1)
    dead = tmp_path / f"{writer.host}-999999-0.jsonl"
    rows = _batch(3, seed=9).rows()
    dead.write_text("".join(json.dumps(r) + "\n" for r in rows) + '["torn')
    writer.start()
    assert writer.flush(5)
    writer.close()
    assert set(store.rows) == {r[0] for r in rows}
    assert not dead.exists()


def test_close_drains_the_queue(tmp_path):
    store = FlakyStore()
    writer = PredictionLog(store, tmp_path, retry_interval=0.1).start()
    for seed in range(20):
        writer.submit(_batch(10, seed=seed))
    writer.close()
    assert len(store.rows) == 200


def test_a_spill_that_does_not_fit_keeps_what_fits_and_leaves_no_torn_line(tmp_path,
                                                                           monkeypatch):
    """The disk fills in the middle of a spill: whole chunks before it are kept (and
    counted), the rest is counted lost, and the file ends on a whole line."""
    outcomes: dict[str, int] = {}
    log = PredictionLog(open_store(f"sqlite:///{tmp_path / 'p.db'}"), tmp_path / "spill",
                        on_outcome=lambda outcome, n: outcomes.update({outcome: n}))
    room = [60_000]  # bytes left on the "disk"
    real_write = os.write

    def write(fd, data):
        if room[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[:room[0]]))
        room[0] -= written
        return written

    monkeypatch.setattr(os, "write", write)
    log._spill(_batch(500).rows())
    lines = next((tmp_path / "spill").glob("*.jsonl")).read_text().splitlines()
    assert 0 < len(lines) < 500 and len(lines) % 100 == 0
    assert outcomes == {"spilled": len(lines), "lost": 500 - len(lines)}
    assert all(json.loads(line)[0].startswith("id-") for line in lines)
