import json

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.drift import ReferenceProfile
from modelwatch.training.simulator import CATEGORICAL_FEATURES, NUMERIC_FEATURES, generate


def test_roundtrip_plain_json(tmp_path):
    df = generate(3000, "baseline", seed=3).drop(columns="defaulted")
    df.loc[::50, "income"] = np.nan
    profile = ReferenceProfile.from_frame(df)
    path = profile.save(tmp_path / "ref")
    assert path.name == "profile.json"
    raw = json.loads(path.read_text())  # plain JSON, no pickle
    assert set(raw["columns"]) == set(df.columns)
    loaded = ReferenceProfile.load(tmp_path / "ref")
    assert loaded.columns == profile.columns
    assert loaded.numeric_columns == NUMERIC_FEATURES
    assert loaded.categorical_columns == CATEGORICAL_FEATURES
    inc = loaded["income"]
    assert inc.n_missing == df["income"].isna().sum()
    assert inc.missing_share == pytest.approx(df["income"].isna().mean())
    assert inc.min == df["income"].min() and inc.max == df["income"].max()
    assert inc.std == pytest.approx(np.std(df["income"].dropna()))
    np.testing.assert_array_equal(np.sort(df["income"].dropna().to_numpy()), inc.expanded())
    assert loaded["region"].frequencies() == pytest.approx(
        df["region"].value_counts(normalize=True).to_dict()
    )


def test_kinds_inferred_from_dtype_or_given():
    df = pd.DataFrame(
        {
            "a": [1, 2, 3],
            "b": ["x", "y", "x"],
            "c": [True, False, True],
            "d": pd.Categorical(["p", "q", "p"]),
            "e": [0.5, np.inf, None],
        }
    )
    p = ReferenceProfile.from_frame(df)
    assert p.numeric_columns == ["a", "e"]
    assert p.categorical_columns == ["b", "c", "d"]
    assert p["e"].n_missing == 2  # inf counts as missing, as Evidently drops it
    assert p["c"].frequencies() == pytest.approx({True: 2 / 3, False: 1 / 3})
    p2 = ReferenceProfile.from_frame(df, categorical=["a", "b"])
    assert p2.categorical_columns == ["a", "b"]
    with pytest.raises(ValueError):
        ReferenceProfile.from_frame(df, categorical=["zzz"])


def test_cdf_and_quantile_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, 1000).astype(float)
    p = ReferenceProfile.from_frame(pd.DataFrame({"x": x}))["x"]
    grid = np.linspace(-5, 55, 200)
    np.testing.assert_allclose(p.cdf(grid), (x[None, :] <= grid[:, None]).mean(axis=1))
    for q in (0.01, 0.25, 0.5, 0.9, 1.0):
        assert p.quantile(q) == np.quantile(x, q, method="inverted_cdf")
