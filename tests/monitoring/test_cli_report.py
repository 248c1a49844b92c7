import json
import warnings

from modelwatch.monitoring.drift import ReferenceProfile
from modelwatch.monitoring.report import drift_report
from modelwatch.training.simulator import FEATURES, generate

from modelwatch.cli.drift import drift_command


def test_drift_command_csv_parquet_profile_and_json(tmp_path, capsys):
    generate(3000, "baseline", seed=51).to_csv(tmp_path / "ref.csv", index=False)
    cur = generate(1500, "covariate", seed=52)
    cur.to_parquet(tmp_path / "cur.parquet")
    assert drift_command(tmp_path / "ref.csv", tmp_path / "cur.parquet", as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"dataset_drift", "drift_share", "drift_share_threshold", "columns"}
    assert [c for c, v in out["columns"].items() if v["drifted"]] == ["income", "region"]
    assert set(out["columns"]["income"]) == {"test", "statistic", "p_value", "threshold", "drifted"}

    # a saved profile as the reference; a window with most columns drifted exits 1
    ReferenceProfile.from_frame(generate(3000, "baseline", seed=51)[FEATURES]).save(
        tmp_path / "prof"
    )
    shifted = cur[FEATURES].copy()
    for col in ["age", "debt_to_income", "credit_score", "loan_amount", "employment_years"]:
        shifted[col] = shifted[col] * 1.5
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    assert drift_command(tmp_path / "prof", tmp_path / "shifted.csv", as_json=False) == 1
    text = capsys.readouterr().out
    assert "Dataset drift: 7 of 11 columns drifted" in text

    assert drift_command(tmp_path / "missing.csv", tmp_path / "cur.parquet", as_json=False) == 2
    assert "error" in capsys.readouterr().err
    (tmp_path / "x.xlsx").write_text("")
    assert drift_command(tmp_path / "ref.csv", tmp_path / "x.xlsx", as_json=False) == 2


def test_drift_report_writes_html(tmp_path):
    ref = generate(400, "baseline", seed=53)[FEATURES]
    cur = generate(200, "covariate", seed=54)[FEATURES]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = drift_report(ref, cur, tmp_path / "reports" / "drift.html")
    html = path.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "income" in html and "region" in html
