import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.multivariate import ReconstructionDrift


def correlated(rng, n, rho):
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": x,
            "b": rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n),
            "c": rng.normal(size=n),
            "g": rng.choice(["u", "v"], n),
        }
    )


def test_broken_correlation_with_intact_marginals_is_caught(tmp_path):
    rng = np.random.default_rng(0)
    det = ReconstructionDrift().fit(correlated(rng, 8000, 0.9))
    assert not det.detect(correlated(rng, 1000, 0.9))["drifted"]
    broken = det.detect(correlated(rng, 1000, -0.9))
    assert broken["drifted"] and broken["reconstruction_error"] > broken["upper"]
    # JSON round trip gives the same numbers
    loaded = ReconstructionDrift.load(det.save(tmp_path / "mv.json"))
    cur = correlated(rng, 500, 0.9)
    assert loaded.detect(cur) == pytest.approx(det.detect(cur))


def test_false_alarm_rate_and_band_scales_with_window():
    rng = np.random.default_rng(1)
    det = ReconstructionDrift().fit(correlated(rng, 6000, 0.7))
    alarms = sum(det.detect(correlated(rng, 300, 0.7))["drifted"] for _ in range(100))
    assert alarms <= 5
    lo1, hi1 = det.bounds(100)
    lo2, hi2 = det.bounds(10000)
    assert hi1 - lo1 > hi2 - lo2 > 0


def test_missing_values_and_unseen_categories_are_handled():
    rng = np.random.default_rng(2)
    det = ReconstructionDrift().fit(correlated(rng, 3000, 0.8))
    cur = correlated(rng, 500, 0.8)
    cur.loc[:10, "a"] = np.nan
    cur.loc[:5, "g"] = "new"
    assert np.isfinite(det.score(cur))
    with pytest.raises(ValueError):
        ReconstructionDrift().fit(correlated(rng, 50, 0.8))
