"""Evidently reports for a window: the human-readable HTML the monitor logs when drift begins.

Our own drift engine (``modelwatch.monitoring.drift``) decides; Evidently renders. The report runs
Evidently's DataDriftPreset with the same column types our profile uses, so the pictures
match the verdicts. The monitor's report (`judged_drift_report`) states modelwatch's rule:
the reference is the profile the window was judged against (its exact distributions, one
column at a time), each column gets the test and threshold modelwatch used, and the
dataset's drift share threshold is the version's bound, so Evidently's headline ("Dataset
Drift is detected ... threshold is 0.15") is modelwatch's verdict.

>>> from modelwatch.training.simulator import generate
>>> ref = generate(500, "baseline", seed=1).drop(columns="defaulted")
>>> cur = generate(300, "covariate", seed=2).drop(columns="defaulted")
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     path = drift_report(ref, cur, pathlib.Path(d) / "drift.html")
...     path.stat().st_size > 10_000
True
>>> evidently_drift(ref, cur)["columns"]["region"]["drifted"]
True

Reference: Evidently AI, "Evidently: an open-source framework to evaluate, test and
monitor ML and LLM-powered systems", https://github.com/evidentlyai/evidently.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from modelwatch.monitoring.drift.profile import CATEGORICAL, NUMERIC, ReferenceProfile, infer_kind


def _definition(
    reference: pd.DataFrame, categorical: list[str] | None, profile: ReferenceProfile | None
):
    """Evidently's DataDefinition with our column kinds.

    Left alone, Evidently would call an int column with <= 10 values categorical and an
    object column of mostly distinct strings text; stating the kinds keeps the two
    engines testing the same thing.
    """
    from evidently import DataDefinition  # noqa: PLC0415 (evidently: only the report needs it)

    kinds = {}
    for name in reference.columns:
        if profile is not None and name in profile.columns:
            kinds[name] = profile.columns[name].kind
        elif categorical is not None:
            kinds[name] = CATEGORICAL if name in categorical else NUMERIC
        else:
            kinds[name] = infer_kind(reference[name])
    return DataDefinition(
        numerical_columns=[n for n, k in kinds.items() if k == NUMERIC],
        categorical_columns=[n for n, k in kinds.items() if k == CATEGORICAL],
    )


def run_data_drift_preset(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str] | None = None,
    profile: ReferenceProfile | None = None,
    drift_share: float = 0.5,
    tests: dict[str, str] | None = None,
    thresholds: dict[str, float] | None = None,
):
    """Run Evidently's DataDriftPreset (with tests) and return its Snapshot. `tests` and
    `thresholds` name a column's test and its threshold (Evidently's choice otherwise)."""
    from evidently import Dataset, Report  # noqa: PLC0415 (evidently, as above)
    from evidently.presets import DataDriftPreset  # noqa: PLC0415 (evidently, as above)

    definition = _definition(reference, categorical, profile)
    columns = list(definition.numerical_columns or []) + list(definition.categorical_columns or [])
    ref = Dataset.from_pandas(reference[columns], data_definition=definition)
    cur = Dataset.from_pandas(current[columns], data_definition=definition)
    preset = DataDriftPreset(
        drift_share=drift_share, per_column_method=tests, per_column_threshold=thresholds
    )
    report = Report([preset], include_tests=True)
    with warnings.catch_warnings():
        # scipy warns on every chi-square against an unseen category; noise in a monitor
        warnings.simplefilter("ignore", RuntimeWarning)
        return report.run(current_data=cur, reference_data=ref)


_COLUMN_TEST = re.compile(r"^Value Drift for column (.+)$")
# Evidently's display names of the tests, back to the registered names we use.
_METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Kullback-Leibler divergence": "kl_div",
}


def evidently_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str] | None = None,
    drift_share: float = 0.5,
) -> dict:
    """Evidently's own verdicts, in the shape of ``DriftResult.to_dict()``.

    ``statistic`` is Evidently's drift score (the p-value for p-value tests). Used to
    check that our engine agrees with Evidently, and by the benchmark.
    """
    return snapshot_verdicts(
        run_data_drift_preset(reference, current, categorical, drift_share=drift_share)
    )


def snapshot_verdicts(snapshot) -> dict:
    """A DataDriftPreset snapshot's verdicts, in the shape of ``DriftResult.to_dict()``."""
    d = snapshot.dict()
    columns: dict[str, dict] = {}
    share = 0.0
    for metric in d["metrics"]:
        cfg = metric["config"]
        if cfg.get("type", "").endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif cfg.get("type", "").endswith("ValueDrift"):
            columns[cfg["column"]] = {
                "test": _METHODS.get(cfg["method"], cfg["method"]),
                "statistic": float(metric["value"]),
                "threshold": float(cfg["threshold"]),
            }
    dataset_drift = False
    for test in d.get("tests", []):
        m = _COLUMN_TEST.match(test["name"])
        if m and m.group(1) in columns:
            columns[m.group(1)]["drifted"] = test["status"] == "FAIL"
        elif test["name"].startswith("Share of Drifted Columns"):
            dataset_drift = test["status"] == "FAIL"
    return {"dataset_drift": dataset_drift, "drift_share": share, "columns": columns}


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    path: str | Path,
    categorical: list[str] | None = None,
    profile: ReferenceProfile | None = None,
    drift_share: float = 0.5,
) -> Path:
    """Write Evidently's DataDriftPreset report of ``current`` against ``reference`` as
    one self-contained HTML file; returns its path (e.g. for ``mlflow.log_artifact``)."""
    snapshot = run_data_drift_preset(reference, current, categorical, profile, drift_share)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path


def judged_drift_report(
    profile: ReferenceProfile, current: pd.DataFrame, drift: dict, path: str | Path
) -> Path:
    """Evidently's report of a window as modelwatch judged it: `drift` is the window's
    verdict (`DriftResult.to_dict()`, `WindowResult.drift`), `profile` what it was judged
    against. Writes one self-contained HTML file; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    judged_snapshot(profile, current, drift).save_html(str(path))
    return path


def judged_snapshot(profile: ReferenceProfile, current: pd.DataFrame, drift: dict):
    """DataDriftPreset on `current` with modelwatch's rule for it (see the module's doc)."""
    columns = list(drift["columns"])
    return run_data_drift_preset(
        profile_frame(profile, columns),
        current.reindex(columns=columns),
        profile=profile,
        drift_share=drift["drift_share_threshold"],
        tests={n: c["test"] for n, c in drift["columns"].items()},
        thresholds={n: c["threshold"] for n, c in drift["columns"].items()},
    )


def profile_frame(profile: ReferenceProfile, columns: list[str]) -> pd.DataFrame:
    """The profile's rows, one column at a time: each column's exact values and counts
    (missing ones as missing). Rows do not pair up across columns; the per-column tests
    read each column alone, so they see the distributions the window was judged against."""
    out = {}
    for name in columns:
        column = profile[name]
        values = np.repeat(column.values, column.counts)
        blanks = np.full(column.n_missing, np.nan if column.kind == NUMERIC else None)
        out[name] = np.concatenate([values, blanks.astype(values.dtype)])
    return pd.DataFrame(out)
