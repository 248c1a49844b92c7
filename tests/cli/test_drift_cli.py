"""`modelwatch drift REFERENCE CURRENT [--json]`, run as the installed console script on
real files from the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from modelwatch.training.simulator import FEATURES, generate

MODELWATCH = str(Path(sys.executable).parent / "modelwatch")


def modelwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MODELWATCH, *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("drift-files")
    generate(3000, "baseline", seed=11).to_csv(d / "ref.csv", index=False)
    generate(2000, "baseline", seed=12).to_parquet(d / "same.parquet")
    generate(2000, "covariate", seed=13).to_parquet(d / "cur.parquet")
    shifted = generate(2000, "baseline", seed=14)
    for col in [
        "age",
        "debt_to_income",
        "credit_score",
        "loan_amount",
        "employment_years",
        "num_credit_lines",
    ]:
        shifted[col] = shifted[col] * 1.6
    shifted.to_csv(d / "shifted.csv", index=False)
    (d / "notes.xlsx").write_text("not a table")
    return d


def table_rows(out: str) -> dict[str, str]:
    """column -> its verdict ("ok" or "DRIFT") from the text table."""
    rows = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if parts and parts[0] in FEATURES + ["defaulted"]:
            rows[parts[0]] = parts[-1]
    return rows


def test_same_distribution_exits_0_with_nothing_drifted(files):
    done = modelwatch("drift", files / "ref.csv", files / "same.parquet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:3] == ["column", "test", "statistic"]
    rows = table_rows(done.stdout)
    assert set(FEATURES) <= set(rows) and set(rows.values()) == {"ok"}
    assert "No dataset drift: 0 of" in done.stdout


def test_covariate_drift_names_income_and_region(files):
    done = modelwatch("drift", files / "ref.csv", files / "cur.parquet")
    # two columns of twelve: below the dataset-drift share, so exit 0, but both named
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert {c for c, v in rows.items() if v == "DRIFT"} == {"income", "region"}
    assert "No dataset drift: 2 of 12 columns drifted" in done.stdout


def test_json_output_is_the_library_result(files):
    done = modelwatch("drift", files / "ref.csv", files / "cur.parquet", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # nothing but JSON on stdout
    assert set(result) == {"dataset_drift", "drift_share", "drift_share_threshold", "columns"}
    assert result["dataset_drift"] is False
    assert result["drift_share"] == pytest.approx(2 / 12)
    assert sorted(c for c, v in result["columns"].items() if v["drifted"]) == ["income", "region"]
    for column in result["columns"].values():
        assert set(column) == {"test", "statistic", "p_value", "threshold", "drifted"}


def test_dataset_drift_exits_1(files):
    done = modelwatch("drift", files / "ref.csv", files / "shifted.csv", "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["dataset_drift"] is True and result["drift_share"] >= 0.5
    done = modelwatch("drift", files / "ref.csv", files / "shifted.csv")
    assert done.returncode == 1 and "\nDataset drift: " in done.stdout


@pytest.mark.parametrize(
    "reference, current, message",
    [
        ("missing.csv", "cur.parquet", "no such file"),
        ("ref.csv", "missing.parquet", "no such file"),
        ("ref.csv", "notes.xlsx", "expected a .csv or .parquet file"),
    ],
)
def test_unreadable_input_exits_2_with_a_message_not_a_traceback(
    files, reference, current, message
):
    done = modelwatch("drift", files / reference, files / current)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "modelwatch drift: error:" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors(files):
    done = modelwatch("drift", files / "ref.csv")
    assert done.returncode == 2 and "usage: modelwatch drift" in done.stderr
    done = modelwatch()
    assert done.returncode == 2 and "drift" in done.stdout
