"""Our verdicts against Evidently 0.7.23 itself, on the same frames.

The whole-report comparison runs Evidently's DataDriftPreset (slow: ~1 s a frame), on
a modest number of generated frames of mixed types and sizes with NaNs; every column's
test, score and verdict and the dataset verdict must agree. The per-test comparison
calls Evidently's stattest objects directly, which is fast, on many more columns.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.drift import ReferenceProfile, detect_drift
from modelwatch.monitoring.report import evidently_drift
from modelwatch.training.simulator import generate


def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """Mixed columns exercising every branch of the test choice, with a few NaNs."""
    u = lambda hi: shift * rng.uniform(0, hi)  # noqa: E731 - a random effect size, none for the reference
    d = {
        "cont": rng.normal(u(0.5), 1 + u(0.3), n),
        "cont_nan": rng.lognormal(u(0.3), 1, n),
        "int_many": rng.poisson(30 + 5 * u(1), n),  # int dtype, > 20 values: binned
        "int_few": rng.integers(0, 4 + int(shift * rng.integers(0, 2)), n),  # <= 5 values
        "binary_num": (rng.random(n) < 0.3 + 0.1 * u(1)).astype(int),
        "disc_float": rng.integers(0, 12, n) + shift * rng.integers(0, 3) * (rng.random(n) < 0.2),
        "cat": rng.choice(list("abcdef"), n, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]).astype(object),
        "flag": rng.random(n) < 0.4 + 0.1 * u(1),
    }
    q = 0.5 + 0.1 * shift * rng.uniform(-1, 1)
    d["cat2"] = rng.choice(["yes", "no"], n, p=[q, 1 - q])
    if shift:
        d["cat"][rng.random(n) < rng.uniform(0, 0.15)] = rng.choice(["a", "g"])  # sometimes unseen
    df = pd.DataFrame(d)
    df.loc[rng.random(n) < 0.05, "cont_nan"] = np.nan
    df.loc[rng.random(n) < 0.03, "cat"] = None
    return df


SIZES = [(40, 30), (200, 300), (800, 1000), (1000, 300), (1001, 300), (1500, 1000), (4000, 2500)]


def _cases():
    for seed in range(14):
        rng = np.random.default_rng(seed)
        n_ref, n_cur = SIZES[seed % len(SIZES)]
        yield f"mixed-{seed}", _frame(rng, n_ref, 0.0), _frame(rng, n_cur, 1.0)
    for i, scenario in enumerate(
        ["baseline", "covariate", "concept", "integrity_swap", "integrity_missing", "gradual"]
    ):
        n_ref = 800 if i % 2 else 3000
        yield scenario, generate(n_ref, "baseline", seed=i), generate(600, scenario, seed=100 + i)


@pytest.mark.slow  # Evidently's own report takes seconds a frame
def test_verdicts_agree_with_evidently_data_drift_preset():
    checked = 0
    for name, ref, cur in _cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = evidently_drift(ref, cur)
        ours = detect_drift(ReferenceProfile.from_frame(ref), cur).to_dict()
        assert set(ours["columns"]) == set(theirs["columns"]), name
        for col, t in theirs["columns"].items():
            o = ours["columns"][col]
            assert o["test"] == t["test"], (name, col)
            assert o["threshold"] == t["threshold"], (name, col)
            assert o["drifted"] == t["drifted"], (name, col, o, t)
            score = o["p_value"] if o["p_value"] is not None else o["statistic"]
            if score is None:  # chi-square against an unseen category: infinite, p = 0
                score = 0.0
            assert score == pytest.approx(t["statistic"], rel=1e-6, abs=1e-9), (name, col)
            checked += 1
        assert ours["dataset_drift"] == theirs["dataset_drift"], name
        assert ours["drift_share"] == pytest.approx(theirs["drift_share"]), name
    assert checked > 150


@pytest.mark.parametrize(
    "test", ["ks", "wasserstein", "chisquare", "z", "jensenshannon", "psi", "kl_div"]
)
def test_each_selectable_test_agrees_with_evidentlys_implementation(test):
    from evidently.legacy.calculations import stattests as ev
    from evidently.legacy.core import ColumnType
    from modelwatch.monitoring.drift import ColumnProfile
    from modelwatch.monitoring.drift.detect import column_drift

    impl = {
        "ks": ev.ks_stat_test,
        "wasserstein": ev.wasserstein_stat_test,
        "chisquare": ev.chi_stat_test,
        "z": ev.z_stat_test,
        "jensenshannon": ev.jensenshannon_stat_test,
        "psi": ev.psi_stat_test,
        "kl_div": ev.kl_div_stat_test,
    }[test]
    numeric = test in ("ks", "wasserstein", "jensenshannon", "psi", "kl_div")
    categorical = test in ("chisquare", "z", "jensenshannon", "psi", "kl_div")
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n_ref, n_cur = int(rng.integers(20, 3000)), int(rng.integers(10, 2000))
        shift = rng.uniform(0, 0.4)
        columns = []
        if numeric:
            columns.append(
                (
                    rng.normal(0, 1, n_ref).round(int(rng.integers(0, 4))),
                    rng.normal(shift, 1, n_cur).round(int(rng.integers(0, 4))),
                    ColumnType.Numerical,
                )
            )
            columns.append(
                (rng.poisson(4, n_ref), rng.poisson(4 + 3 * shift, n_cur), ColumnType.Numerical)
            )
        if categorical:
            k = 2 if test == "z" else int(rng.integers(3, 7))
            p = rng.dirichlet(np.ones(k))
            q = (p + shift * rng.dirichlet(np.ones(k))) / (1 + shift)
            levels = np.array([f"c{i}" for i in range(k)])
            columns.append(
                (
                    rng.choice(levels, n_ref, p=p),
                    rng.choice(levels, n_cur, p=q),
                    ColumnType.Categorical,
                )
            )
        for ref, cur, ctype in columns:
            kind = "numeric" if ctype == ColumnType.Numerical else "categorical"
            ours = column_drift(
                ColumnProfile.from_series(pd.Series(ref, name="x"), kind),
                ColumnProfile.from_series(pd.Series(cur, name="x"), kind),
                test,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = impl(pd.Series(ref), pd.Series(cur), ctype, None)
            assert ours.drifted == theirs.drifted, (seed, ours, theirs)
            assert ours.score == pytest.approx(theirs.drift_score, rel=1e-6, abs=1e-12), (
                seed,
                ours,
                theirs,
            )
