"""Each drift statistic against scipy or its textbook formula, on raw samples."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from modelwatch.monitoring.drift import ColumnProfile, get_stattest
from modelwatch.monitoring.drift.stattests import STAT_TESTS, default_stattest, sturges_edges
from scipy import stats
from scipy.spatial import distance


def prof(x, kind=None):
    return ColumnProfile.from_series(pd.Series(x, name="x"), kind)


def run(name, ref, cur, kind=None):
    return STAT_TESTS[name].compute(prof(ref, kind), prof(cur, kind))


@pytest.fixture
def samples():
    rng = np.random.default_rng(11)
    return rng.normal(0, 1, 700), rng.normal(0.2, 1.1, 400)


@pytest.mark.filterwarnings("ignore:ks_2samp")
@pytest.mark.parametrize("n_ref,n_cur", [(700, 400), (30, 12000), (15000, 20000)])
def test_ks_matches_scipy_exact_and_asymptotic(n_ref, n_cur):
    rng = np.random.default_rng(n_ref)
    ref, cur = rng.normal(0, 1, n_ref).round(2), rng.normal(0.05, 1, n_cur).round(2)  # ties too
    d, p = run("ks", ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_wasserstein_is_scipy_over_reference_std(samples):
    ref, cur = samples
    w, p = run("wasserstein", ref, cur)
    assert p is None
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-10)
    # a constant reference: the std floor of 0.001 keeps the ratio finite
    w, _ = run("wasserstein", np.ones(50), np.full(20, 1.5))
    assert w == pytest.approx(0.5 / 0.001)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=80),
    st.lists(st.integers(-50, 50), min_size=1, max_size=80),
)
def test_ks_and_wasserstein_property(a, b):
    a, b = np.array(a, float), np.array(b, float)
    d, _ = run("ks", a, b)
    assert d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    w, _ = run("wasserstein", a, b)
    assert w == pytest.approx(
        stats.wasserstein_distance(a, b) / max(np.std(a), 0.001), rel=1e-9, abs=1e-12
    )


def test_chisquare_matches_scipy():
    rng = np.random.default_rng(2)
    ref = rng.choice(list("abcd"), 900, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(list("abcd"), 300, p=[0.3, 0.3, 0.2, 0.2])
    stat, p = run("chisquare", ref, cur)
    keys = list("abcd")
    obs = np.array([(cur == k).sum() for k in keys])
    exp = np.array([(ref == k).sum() for k in keys]) * len(cur) / len(ref)
    expected = stats.chisquare(obs, exp)
    assert stat == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    # a category the reference never had: infinite statistic, p = 0, as scipy gives
    stat, p = run("chisquare", ref, np.append(cur, "e"))
    assert np.isinf(stat) and p == 0.0


def test_ztest_is_the_two_proportion_z_test():
    rng = np.random.default_rng(3)
    ref = rng.random(800) < 0.30
    cur = rng.random(500) < 0.38
    z, p = run("z", ref.astype(int), cur.astype(int), kind="categorical")
    # z^2 of the two-proportion test is the 2x2 chi-square without continuity correction
    table = np.array([[ref.sum(), (~ref).sum()], [cur.sum(), (~cur).sum()]])
    chi2, p_chi, _, _ = stats.chi2_contingency(table, correction=False)
    assert z**2 == pytest.approx(chi2)
    assert p == pytest.approx(p_chi)
    assert run("z", ["a"] * 10, ["a"] * 5)[1] == 1.0  # one identical value on both sides


def test_jensenshannon_matches_scipy_on_sturges_bins(samples):
    ref, cur = samples
    js, _ = run("jensenshannon", ref, cur)
    bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    r = np.histogram(ref, bins)[0] / len(ref)
    c = np.histogram(cur, bins)[0] / len(cur)
    assert js == pytest.approx(distance.jensenshannon(r, c))


def test_jensenshannon_categorical_matches_scipy():
    ref = np.array(list("aaabbc"))
    cur = np.array(list("abccdd"))
    js, _ = run("jensenshannon", ref, cur)
    keys = list("abcd")
    r = np.array([(ref == k).mean() for k in keys])
    c = np.array([(cur == k).mean() for k in keys])
    assert js == pytest.approx(distance.jensenshannon(r, c))


def _filled(p):
    m = p[p > 0].min()
    return np.where(p == 0, m / 1e6 if m <= 1e-4 else 1e-4, p)


def test_psi_and_kl_formulas(samples):
    ref, cur = samples
    bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    r = _filled(np.histogram(ref, bins)[0] / len(ref))
    c = _filled(np.histogram(cur, bins)[0] / len(cur))
    psi, _ = run("psi", ref, cur)
    assert psi == pytest.approx(np.sum((r - c) * np.log(r / c)))
    kl, _ = run("kl_div", ref, cur)
    assert kl == pytest.approx(stats.entropy(r, c))
    # identical samples: zero for every distance
    for name in ("psi", "kl_div", "jensenshannon", "wasserstein"):
        assert run(name, ref, ref)[0] == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(0, 1e4), st.integers(2, 200000), st.booleans())
@example(lo=0.0, width=5e-324, size=2, integer=False)  # found by hypothesis: OverflowError
def test_sturges_edges_match_numpy(lo, width, size, integer):
    hi = lo + width
    if integer:
        lo, hi = float(np.floor(lo)), float(np.floor(hi))
        data = np.array([lo] + [hi] * (size - 1), dtype=np.int64)
    else:
        data = np.array([lo] + [hi] * (size - 1))
    np.testing.assert_array_equal(
        sturges_edges(lo, hi, size, integer), np.histogram_bin_edges(data, "sturges")
    )


def test_binned_tests_survive_a_range_whose_bin_width_underflows():
    # 21 subnormal values 1 ulp apart, each seen 2**40 times: the Sturges width (range / 46)
    # rounds to 0, which crashed every binned test before numpy's one-bin rule was followed.
    values = np.arange(21) * 5e-324
    counts = np.full(21, 2**40, dtype=np.int64)
    col = ColumnProfile("x", "numeric", "float64", int(counts.sum()), 0, values, counts)
    for name in ("psi", "kl_div", "jensenshannon"):
        assert STAT_TESTS[name].compute(col, col)[0] == pytest.approx(0.0, abs=1e-12)


def test_default_selection_follows_evidently_rules():
    rng = np.random.default_rng(4)
    small, big = rng.normal(size=1000), rng.normal(size=1001)
    assert default_stattest(prof(small), prof(small)).name == "ks"
    assert default_stattest(prof(big), prof(big)).name == "wasserstein"
    assert default_stattest(prof(np.arange(1000) % 4), prof(np.arange(10) % 4)).name == "chisquare"
    assert default_stattest(prof(np.arange(1000) % 2), prof(np.arange(10) % 2)).name == "z"
    assert (
        default_stattest(prof(np.arange(2000) % 5), prof(np.arange(10) % 5)).name == "jensenshannon"
    )
    # the union of both samples' values decides: 5 in the reference, 6 with the current
    assert default_stattest(prof(np.arange(900) % 5), prof(np.arange(10) % 6)).name == "ks"
    cat = np.array(list("abc") * 400)
    assert default_stattest(prof(cat), prof(cat)).name == "jensenshannon"
    assert default_stattest(prof(cat[:900]), prof(cat)).name == "chisquare"
    assert (
        get_stattest("Chi-Square").name == "chisquare"
        and get_stattest("js").name == "jensenshannon"
    )
    with pytest.raises(ValueError):
        get_stattest("nope")
