"""`modelwatch status` is unhealthy (exit 1) while serving answers with a version the
monitor cannot judge, and says why."""

from modelwatch.cli import status


def _info(served, monitor):
    components = {
        "serving": {"running": True, "healthy": True, "url": "http://s"},
        "monitor": {"running": True, "healthy": True, "url": "http://m"},
    }
    info = {"components": components, "served": served, "monitor": monitor, "alerts": None}
    info["monitored"] = status._monitored(served, monitor)
    return info


def test_a_served_version_the_monitor_cannot_judge_is_reported():
    served = {"name": "wine", "version": "3", "fallback": False}
    monitor = {
        "version": None,
        "monitored": False,
        "last_window": None,
        "not_monitored": {
            "version": "3",
            "reason": "not_onboarded",
            "message": "wine version 3 has no monitoring reference: run `modelwatch onboard ...`",
        },
    }
    info = _info(served, monitor)
    assert info["monitored"] is False
    assert (
        "NOT MONITORED served version 3: wine version 3 has no monitoring reference"
        in status._text(info)
    )


def test_the_judged_version_is_monitored_and_a_fallback_is_not_asked():
    judged = _info({"version": "3", "fallback": False}, {"version": "3", "monitored": True})
    assert judged["monitored"] is True and "NOT MONITORED" not in status._text(judged)
    other = _info({"version": "4", "fallback": False}, {"version": "3", "monitored": True})
    assert other["monitored"] is False  # serving moved on; the monitor has not (yet)
    assert (
        _info({"version": "fallback", "fallback": True}, {"monitored": False})["monitored"] is None
    )
    assert _info(None, {"monitored": False})["monitored"] is None
    no_model = {"error": {"code": "no_model", "message": "no model loaded"}}  # serving's 503 body
    assert (
        _info(no_model, {"monitored": False, "not_monitored": {"reason": "no_alias"}})["monitored"]
        is None
    )


def test_a_stalled_log_and_a_retraining_waiting_for_labels_are_said():
    monitor = {
        "version": "3",
        "monitored": True,
        "last_window": {"rows": 2000, "new_rows": 0, "skipped_windows": 4},
        "retrain_pending": {
            "reason": "DataDriftDetected:builtin",
            "state": "waiting_for_labels",
            "labelled_rows": 120,
            "min_rows": 1000,
        },
    }
    text = status._text(_info({"version": "3", "fallback": False}, monitor))
    assert "2000 rows (0 new)" in text
    assert "no new rows in the last 4 intervals" in text
    assert (
        "pending DataDriftDetected:builtin: waiting for labels (120 of 1000 labelled rows)" in text
    )
