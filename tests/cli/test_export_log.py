"""`modelwatch export-log`: the prediction log and its labels to hive-partitioned Parquet,
read back from a SQLite log and from a real PostgreSQL one."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from modelwatch.cli import main
from modelwatch.log import PREDICTION_COLUMNS, label_text, open_store
from modelwatch.log.lake import export_log, read_export
from tests.serving.pgcluster import Cluster, why_unavailable

HOUR0 = int(pd.Timestamp("2026-11-18T08:00Z").timestamp())  # an hour in the past
MODEL = "credit-default"


def _records() -> list[dict]:
    """60 predictions over three hours, versions 1 and 2, and a challenger's shadow row."""
    out = []
    for i in range(60):
        ts = HOUR0 + i * 180 + 0.123456
        features = {
            "age": 20 + i,
            "region": ["north", "south", None][i % 3],
            "income": None if i % 7 == 0 else 1000.5 * i,
            # no value at all in the first hour: that hour's files leave it out
            "coupon": None if ts < HOUR0 + 3600 else f"c{i % 4}",
        }
        out.append(
            {
                "prediction_id": f"p{i:03d}",
                "ts": ts,
                "model_name": MODEL,
                "model_version": "1" if i % 3 else "2",
                "model_alias": "production",
                "features": json.dumps(features),
                "prediction": str(i % 2),
                "probability": 0.01 * i,
                "latency_ms": 1.5 + i,
                "shadow_of": None,
                "probabilities": json.dumps([1 - 0.01 * i, 0.01 * i]),
            }
        )
    out.append(
        {
            **out[0],
            "prediction_id": "s000",
            "model_version": "3",
            "model_alias": "challenger",
            "prediction": "1",
            "probability": 0.7,
            "shadow_of": "p000",
            "probabilities": json.dumps([0.3, 0.7]),
        }
    )
    return out


LABELS = {f"p{i:03d}": (i // 2) % 2 for i in range(60) if i % 3 != 1}


def _fill(store, records=None, labels=None) -> None:
    records = _records() if records is None else records
    store.insert_predictions([tuple(r.get(c) for c in PREDICTION_COLUMNS) for r in records])
    store.store_feedback(LABELS if labels is None else labels)


def _check(lake: pd.DataFrame, records: list[dict], labels: dict) -> None:
    """Every record, exactly once, with its values, its features and its label."""
    assert not lake["prediction_id"].duplicated().any()
    assert set(lake["prediction_id"]) == {r["prediction_id"] for r in records}
    rows = lake.set_index("prediction_id")
    for r in records:
        row = rows.loc[r["prediction_id"]]
        assert abs(row["ts"].timestamp() - r["ts"]) < 1e-5
        hour = pd.Timestamp(math.floor(r["ts"] / 3600) * 3600, unit="s", tz="UTC").strftime(
            "%Y-%m-%dT%H"
        )
        assert (row["model_name"], row["model_version"], row["hour"]) == (
            r["model_name"],
            r["model_version"],
            hour,
        )
        for column in ("model_alias", "prediction", "probability", "latency_ms"):
            assert row[column] == r[column], column
        assert row["shadow_of"] == r["shadow_of"] or (
            r["shadow_of"] is None and pd.isna(row["shadow_of"])
        )
        label = labels.get(r["shadow_of"] or r["prediction_id"])
        assert row["label"] == (None if label is None else label_text(label)), r["prediction_id"]
        assert row["probabilities"] == r["probabilities"]
        for name, value in json.loads(r["features"]).items():
            assert row[name] == value or (value is None and pd.isna(row[name])), name


@pytest.fixture(scope="module")
def postgres_url():
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    cluster = Cluster().init()
    cluster.start()
    yield cluster.url
    cluster.destroy()


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'predictions.db'}")
    yield store
    store.close()


@pytest.fixture
def postgres_store(postgres_url):
    store = open_store(postgres_url)
    yield store
    store.close()


@pytest.fixture(params=["sqlite_store", pytest.param("postgres_store", marks=pytest.mark.slow)])
def store(request):
    return request.getfixturevalue(request.param)


def test_the_export_round_trips_every_record_and_label(store, tmp_path):
    _fill(store)
    lake = tmp_path / "lake"
    summary = export_log(store, str(lake))
    assert (summary.rows, summary.labelled) == (
        61,
        len(LABELS) + 1,
    )  # the shadow row has p000's label
    _check(read_export(str(lake)), _records(), LABELS)
    # one file per model, version and hour, where a plain hive reader finds them
    files = sorted(str(p.relative_to(lake)) for p in lake.rglob("*") if p.is_file())
    assert summary.files == len(files) == 7  # versions 1 and 2 in three hours, version 3 in one
    assert files[0] == f"model_name={MODEL}/model_version=1/hour=2026-11-18T08/data.parquet"
    first_hour = pq.read_schema(lake / files[0])
    assert "coupon" not in first_hour.names and first_hour.field("shadow_of").type == pa.string()
    counts = (
        ds.dataset(lake, format="parquet", partitioning="hive")
        .to_table(columns=["prediction_id", "model_version"])
        .to_pandas()["model_version"]
        .value_counts()
    )
    assert counts.to_dict() == {1: 40, 2: 20, 3: 1}


def test_exporting_again_duplicates_nothing_and_keeps_what_the_store_deleted(
    sqlite_store, tmp_path
):
    lake = str(tmp_path / "lake")
    _fill(sqlite_store)
    export_log(sqlite_store, lake)
    first = read_export(lake)
    export_log(sqlite_store, lake)
    pd.testing.assert_frame_equal(read_export(lake), first)
    # a late label, a new prediction in an hour already exported, then retention
    late = {"p001": 1}
    new = {**_records()[1], "prediction_id": "p999", "ts": HOUR0 + 5}
    _fill(sqlite_store, [new], late)
    export_log(sqlite_store, lake, since=HOUR0)
    _check(read_export(lake), _records() + [new], {**LABELS, **late})
    assert sqlite_store.prune(before=HOUR0 + 1800)[0] > 0  # half an hour: that file is rewritten
    export_log(sqlite_store, lake)
    _check(read_export(lake), _records() + [new], {**LABELS, **late})


def test_since_and_until_bound_the_export(sqlite_store, tmp_path, capsys):
    _fill(sqlite_store)
    lake = tmp_path / "lake"
    since, until = HOUR0 + 1800, HOUR0 + 2 * 3600 + 600
    iso = [pd.Timestamp(t, unit="s", tz="UTC").isoformat() for t in (since, until)]
    assert (
        main(
            [
                "export-log",
                "--to",
                str(lake),
                "--since",
                iso[0],
                "--until",
                iso[1],
                "--store-url",
                sqlite_store.url,
            ]
        )
        == 0
    )
    inside = [r for r in _records() if since <= r["ts"] < until]
    assert f"exported {len(inside)} predictions" in capsys.readouterr().out
    _check(read_export(str(lake)), inside, LABELS)


def test_any_fsspec_url(sqlite_store):
    pytest.importorskip("fsspec")
    _fill(sqlite_store)
    export_log(sqlite_store, "memory://lake")
    _check(read_export("memory://lake"), _records(), LABELS)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--since", "2026-12-01T10:00Z", "--until", "2026-12-01T09:00Z"],
            "--since (2026-12-01T10:00:00+00:00) is not before --until",
        ),
        (["--since", "last tuesday"], "--since 'last tuesday' is not a time"),
        (["--until", "soon"], "--until 'soon' is not a time"),
        (["--to", "nosuchscheme://bucket/log"], "cannot write to 'nosuchscheme://bucket/log'"),
        (["--to", " "], "--to is empty"),
        (["--store-url", "mysql://db/log"], "unsupported prediction store URL"),
        (["--store-url", "sqlite:////nonexistent/predictions.db"], "no prediction log at"),
    ],
)
def test_bad_arguments_are_clear_errors(args, message, sqlite_store, tmp_path, capsys):
    _fill(sqlite_store)
    argv = ["export-log", "--to", str(tmp_path / "lake"), "--store-url", sqlite_store.url]
    assert main(argv + args) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists(), "nothing written"


def test_to_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export-log"])
    assert exit_.value.code == 2 and "--to" in capsys.readouterr().err


def test_an_empty_log_exports_nothing(sqlite_store, tmp_path):
    sqlite_store.count()  # creates the tables
    assert export_log(sqlite_store, str(tmp_path / "lake")).files == 0
    assert not Path(tmp_path / "lake").exists()
