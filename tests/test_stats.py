"""skillmix.scoring.stats against hand-computed values and against scipy/statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from skillmix.scoring.stats import (
    Z95,
    Estimate,
    benjamini_hochberg,
    bootstrap_estimate,
    bootstrap_statistic,
    cluster_bootstrap_totals,
    clustered_mcnemar_p,
    f_sf,
    holm,
    regularized_beta,
    t_quantile,
    t_two_sided_p,
    t_upper_p,
    two_sided_p,
    upper_p,
    wald,
    wilson_interval,
    z_quantile,
)

NAN = float("nan")
pvalues = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30)


# --- multiple comparisons ---------------------------------------------------------------------


def test_holm_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4/1, 4/2, 4/3, 4/4: 0.02, 0.02, 0.04, 0.04
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_untested_values_stay_nan_and_do_not_count():
    adjusted = holm([NAN, 0.01, 0.02])
    assert math.isnan(adjusted[0])
    assert adjusted[1:] == pytest.approx([0.02, 0.02])  # a family of two, not three
    adjusted = benjamini_hochberg([0.02, NAN, 0.04])
    assert math.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.04)
    assert holm([]) == [] and benjamini_hochberg([]) == []


def test_adjustments_match_statsmodels():
    rng = np.random.default_rng(0)
    families = [rng.uniform(0, 0.1, size=n).round(3) for n in (1, 2, 5, 12, 30)]
    families += [rng.beta(0.3, 1, size=20), np.array([0.01, 0.01, 0.5, 0.5, 1.0])]
    for ps in families:
        assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
        expected = multipletests(ps, method="fdr_bh")[1]
        assert benjamini_hochberg(ps) == pytest.approx(list(expected))


@given(pvalues)
def test_adjusted_p_values_are_ordered_and_bounded(ps):
    h, bh = holm(ps), benjamini_hochberg(ps)
    for raw, a, b in zip(ps, h, bh, strict=True):
        assert raw <= b + 1e-12 and b <= a + 1e-12 and a <= 1.0
    order = np.argsort(ps, kind="stable")
    assert all(np.diff(np.asarray(h)[order]) >= -1e-12)


# --- normal, t and F -----------------------------------------------------------------------------


def test_normal_tails_and_quantiles():
    assert two_sided_p(Z95) == pytest.approx(0.05)
    assert upper_p(1.6448536269514722) == pytest.approx(0.05)
    assert upper_p(-1.6448536269514722) == pytest.approx(0.95)
    assert two_sided_p(0.0) == 1.0
    assert math.isnan(two_sided_p(NAN)) and math.isnan(upper_p(NAN))
    assert z_quantile(0.95) == Z95
    assert z_quantile(0.90) == pytest.approx(1.6448536269514722)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 19, 29, 100, 4000])
def test_student_t_matches_scipy(df):
    for t in (0.0, 0.3, 1.0, 1.96, 2.5, 4.0, 8.0, -2.5):
        expected = 2 * scipy_stats.t.sf(abs(t), df)
        assert t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert t_upper_p(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-9, abs=1e-15)
    for level in (0.8, 0.95, 0.99):
        assert t_quantile(level, df) == pytest.approx(scipy_stats.t.ppf(0.5 + level / 2, df))


def test_student_t_edges():
    assert t_two_sided_p(math.inf, 5) == 0.0
    assert math.isnan(t_two_sided_p(NAN, 5))
    with pytest.raises(ValueError):
        t_two_sided_p(1.0, 0)
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)


@pytest.mark.parametrize(("d1", "d2"), [(1, 1), (1, 19), (2, 5), (3, 29), (5, 1000)])
def test_f_tail_matches_scipy(d1, d2):
    for x in (0.01, 0.5, 1.0, 3.0, 10.0, 50.0):
        assert f_sf(x, d1, d2) == pytest.approx(scipy_stats.f.sf(x, d1, d2), rel=1e-9)
    assert f_sf(0.0, d1, d2) == 1.0


@given(
    st.floats(0.05, 200),
    st.floats(0.05, 200),
    st.floats(0, 1 - 1e-9),  # nearer 1, scipy rounds 1 - x where we keep it exact
)
@settings(max_examples=200)
def test_regularized_beta_matches_scipy(a, b, x):
    assert regularized_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), abs=1e-10)


# --- intervals ----------------------------------------------------------------------------------


def test_wilson_interval_matches_statsmodels():
    for successes, n in ((8, 10), (0, 12), (12, 12), (37, 200)):
        expected = proportion_confint(successes, n, method="wilson")
        assert wilson_interval(successes, n) == pytest.approx(expected)
    low, high = wilson_interval(0, 0)
    assert math.isnan(low) and math.isnan(high)


def test_wald_normal_and_student():
    e = wald(1.0, 0.5, 40)
    assert (e.low, e.high) == pytest.approx((1 - Z95 * 0.5, 1 + Z95 * 0.5))
    assert e.p == pytest.approx(two_sided_p(2.0)) and e.n == 40
    t = wald(1.0, 0.5, 40, df=9)
    q = scipy_stats.t.ppf(0.975, 9)
    assert (t.low, t.high) == pytest.approx((1 - q * 0.5, 1 + q * 0.5))
    assert t.p == pytest.approx(2 * scipy_stats.t.sf(2.0, 9))
    assert wald(0.2, 0.1, 5, null=0.2).p == pytest.approx(1.0)
    assert wald(0.3, 0.0, 5).p == 0.0 and wald(0.0, 0.0, 5).p == 1.0
    assert math.isnan(wald(0.3, NAN, 5).p)


# --- the bootstrap ------------------------------------------------------------------------------


def test_cluster_bootstrap_totals_draws_whole_clusters():
    rng = np.random.default_rng(0)
    totals = np.column_stack([rng.integers(0, 5, 30), rng.integers(5, 10, 30), np.ones(30)])
    boot = cluster_bootstrap_totals(totals, resamples=3000, seed=1, chunk=500)
    assert boot.shape == (3000, 3)
    assert np.all(boot[:, 2] == 30)  # every resample draws 30 clusters
    # a resample's totals are counts times rows: each column's mean is its total
    assert boot.mean(axis=0) == pytest.approx(totals.sum(axis=0), rel=0.01)
    # the spread of a column total is that of a sum of 30 draws with replacement
    expected_sd = math.sqrt(30 * totals[:, 0].var())
    assert boot[:, 0].std() == pytest.approx(expected_sd, rel=0.08)
    same = cluster_bootstrap_totals(totals, resamples=3000, seed=1, chunk=500)
    assert np.array_equal(boot, same)  # seeded: a report reads the same every time


def test_cluster_bootstrap_totals_edges():
    assert np.isnan(cluster_bootstrap_totals(np.zeros((0, 2)), resamples=4)).all()
    with pytest.raises(ValueError):
        cluster_bootstrap_totals([1.0, 2.0])


def test_bootstrap_estimate_interval_and_tests():
    replicates = np.linspace(-1, 1, 2001) + 0.5
    e = bootstrap_estimate(0.5, replicates, 20)
    assert (e.low, e.high) == pytest.approx((-0.45, 1.45))
    se = float(np.std(replicates, ddof=1))
    assert e.p == pytest.approx(two_sided_p(0.5 / se)) and e.n == 20
    greater = bootstrap_estimate(0.5, replicates, 20, null=0.1, alternative="greater")
    assert greater.p == pytest.approx(upper_p(0.4 / se))
    clustered = bootstrap_estimate(0.5, replicates, 20, clusters=10)
    assert clustered.p == pytest.approx(t_two_sided_p(0.5 / (se * math.sqrt(10 / 9)), 9))
    assert clustered.p > e.p  # fewer clusters, less certainty
    with pytest.raises(ValueError):
        bootstrap_estimate(0.5, replicates, 20, alternative="less")


def test_bootstrap_estimate_degenerate_replicates():
    constant = bootstrap_estimate(0.0, np.zeros(100), 5)
    assert (constant.low, constant.high, constant.p) == (0.0, 0.0, 1.0)
    assert bootstrap_estimate(0.2, np.full(100, 0.2), 5).p == 0.0
    assert bootstrap_estimate(0.05, np.full(100, 0.05), 5, null=0.1, alternative="greater").p == 1.0
    with_nan = bootstrap_estimate(0.5, [NAN, 0.4, 0.6, NAN], 3)
    assert with_nan.low == pytest.approx(0.405) and not math.isnan(with_nan.p)
    empty = bootstrap_estimate(0.5, [NAN, NAN], 3)
    assert math.isnan(empty.low) and math.isnan(empty.p) and empty.value == 0.5


def test_bootstrap_statistic_resamples_groups():
    groups = [[1.0, 1.0], [0.0], [1.0, 0.0, 1.0], [0.0, 0.0]]
    low, high = bootstrap_statistic(groups, np.mean, resamples=500, seed=3)
    assert 0 <= low <= 0.5 <= high <= 1
    assert bootstrap_statistic(groups, np.mean, resamples=500, seed=3) == (low, high)
    assert all(math.isnan(v) for v in bootstrap_statistic([], np.mean))
    with pytest.raises(TypeError):
        bootstrap_statistic(groups, "mean")


# --- McNemar -------------------------------------------------------------------------------------


def test_clustered_mcnemar_is_mcnemar_with_one_pair_per_cluster():
    # 15 pairs where the first says met and the second not, 5 the other way, 30 agreeing
    differences = [1] * 15 + [-1] * 5 + [0] * 30
    expected = mcnemar([[20, 15], [5, 10]], exact=False, correction=False).pvalue
    assert clustered_mcnemar_p(differences) == pytest.approx(expected)
    assert clustered_mcnemar_p([0, 0, 0]) == 1.0


def test_clustered_mcnemar_counts_correlated_pairs_once_per_cluster():
    # the same 20 discordant pairs, but in clusters of 5 that move together: less evidence
    independent = clustered_mcnemar_p([1] * 15 + [-1] * 5)
    clustered = clustered_mcnemar_p([5, 5, 5, -5])
    assert clustered > independent
    assert clustered == pytest.approx(two_sided_p(10 / math.sqrt(100)))


def test_estimate_to_dict():
    assert Estimate(0.1, 0.0, 0.2, 0.03, 7).to_dict() == {
        "value": 0.1,
        "low": 0.0,
        "high": 0.2,
        "p": 0.03,
        "n": 7,
    }
