import numpy as np
import pytest
from modelwatch.monitoring.concept import (
    ErrorStreamDetector,
    accuracy_divergence,
    calibration_drift,
)


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
def test_stable_error_rate_no_alarm_and_a_rise_is_caught(method):
    false_alarms, delays = 0, []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        false_alarms += bool(ErrorStreamDetector(method).update_many(rng.random(4000) < 0.2))
        stream = np.concatenate([rng.random(2000) < 0.2, rng.random(2000) < 0.35])
        fired = [i for i in ErrorStreamDetector(method).update_many(stream) if i >= 2000]
        delays.append(fired[0] - 2000 if fired else np.inf)
    assert false_alarms <= 1
    assert max(delays) < 1000


def test_an_improving_model_is_not_concept_drift():
    rng = np.random.default_rng(1)
    stream = np.concatenate([rng.random(2000) < 0.4, rng.random(3000) < 0.1])
    for method in ("adwin", "page_hinkley"):
        assert ErrorStreamDetector(method).update_many(stream) == []


def test_detector_state_and_reset():
    d = ErrorStreamDetector()
    d.update_many([0, 1, 0, 0])
    assert d.state()["n_seen"] == 4
    d.reset()
    assert d.n_seen == 0 and d.detections == []
    with pytest.raises(ValueError):
        ErrorStreamDetector("nope")


def test_accuracy_divergence_needs_a_real_shortfall():
    assert accuracy_divergence(0.70, 0.80, 1000)["drifted"]
    assert not accuracy_divergence(0.79, 0.80, 1000)["drifted"]  # within sampling error
    assert not accuracy_divergence(0.90, 0.80, 1000)["drifted"]  # better than expected
    assert not accuracy_divergence(None, 0.80, 0)["drifted"]
    out = accuracy_divergence(0.70, 0.80, 100)
    assert out["threshold"] == pytest.approx(3 * np.sqrt(0.8 * 0.2 / 100))


def test_calibration_drift_is_spiegelhalters_z():
    rng = np.random.default_rng(3)
    q = rng.uniform(0.05, 0.7, 3000)
    y = (rng.random(3000) < q).astype(float)
    out = calibration_drift(y, q)
    z = np.sum((y - q) * (1 - 2 * q)) / np.sqrt(np.sum((1 - 2 * q) ** 2 * q * (1 - q)))
    assert out["z"] == pytest.approx(z) and not out["drifted"]
    zs = [calibration_drift((rng.random(3000) < q).astype(int), q)["z"] for _ in range(200)]
    assert abs(np.mean(zs)) < 0.25 and 0.8 < np.std(zs) < 1.2  # N(0, 1) when nothing changed
    y_missing = y.astype(object)
    y_missing[:1000] = None
    assert calibration_drift(y_missing, q)["n_labelled"] == 2000
