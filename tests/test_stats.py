import math

import pytest

from pytest_rmbench.report.stats import wilson_interval


@pytest.mark.parametrize(
    "correct, n, low, high",
    [
        (17, 20, 0.640, 0.948),  # statistics.md
        (170, 200, 0.794, 0.893),
        (0, 10, 0.0, 0.2775),  # hand-computed: z^2/(n+z^2) = 3.8415/13.8415
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_matches_hand_computed_values(correct, n, low, high):
    got_low, got_high = wilson_interval(correct, n)
    assert got_low == pytest.approx(low, abs=6e-4)
    assert got_high == pytest.approx(high, abs=6e-4)


def test_wilson_one_sided_z():
    low, _ = wilson_interval(180, 200, z=1.645)
    assert low == pytest.approx(0.8596, abs=2e-4)


def test_wilson_without_items_is_none():
    assert wilson_interval(0, 0) == (None, None)


from pytest_rmbench.report.stats import binom_cdf, mcnemar_exact, non_inferiority, paired_bootstrap, wilson_decision


def test_mcnemar_matches_statistics_md():
    assert mcnemar_exact(30, 15) == pytest.approx(0.0357, abs=1e-4)
    assert mcnemar_exact(15, 30) == mcnemar_exact(30, 15)
    assert mcnemar_exact(0, 0) == 1.0
    # b=0, c=5: 2 * 0.5^5 = 0.0625, by hand
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)


def test_binom_cdf_by_hand():
    # n=4, p=1/2: P(X<=1) = (1 + 4) / 16
    assert binom_cdf(1, 4) == pytest.approx(5 / 16)
    assert binom_cdf(4, 4) == 1.0 and binom_cdf(-1, 4) == 0.0


def _exact_cdf(k, n):
    """P(X <= k) for X ~ Binomial(n, 1/2) in exact integers, rounded once (correctly) to a float."""
    from fractions import Fraction

    return float(Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n))


# n past ~1,074 is where 0.5**n underflows to 0.0 and a sum started from it loses everything
EXACT_GRID = [
    (n, k)
    for n in (1, 2, 3, 10, 57, 1074, 1075, 1200, 3001)
    for k in sorted({0, 1, n // 10, n // 3, n // 2 - 1, n // 2, (n + 1) // 2, n - 1})
    if 0 <= k <= n
]


@pytest.mark.parametrize("n, k", EXACT_GRID)
def test_binom_cdf_matches_exact_integers(n, k):
    assert binom_cdf(k, n) == pytest.approx(_exact_cdf(k, n), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n, k", EXACT_GRID)
def test_mcnemar_matches_exact_integers(n, k):
    smaller = min(k, n - k)
    exact = min(1.0, 2 * _exact_cdf(smaller, n)) if 2 * smaller + 1 < n else 1.0
    assert mcnemar_exact(k, n - k) == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_mcnemar_is_one_for_balanced_counts_of_any_size():
    for b in (0, 1, 2, 5, 537, 538, 600, 2500, 50_000):
        assert mcnemar_exact(b, b) == 1.0  # 600 vs 600 gave 0.0 when 0.5**1200 underflowed
        assert mcnemar_exact(b, b + 1) == mcnemar_exact(b + 1, b) == 1.0  # each tail holds exactly half


@pytest.mark.parametrize("n", [0, 1, 2, 10, 1074, 1075, 1200, 5000, 100_000])
def test_mcnemar_matches_scipy_binomtest(n):
    from scipy.stats import binomtest

    ks = {0, 1, 2, n // 100, n // 4, n // 2 - 3 * math.isqrt(n), n // 2 - math.isqrt(n), n // 2 - 1, n // 2, n - 1, n}
    for k in sorted(k for k in ks if 0 <= k <= n):
        got = mcnemar_exact(k, n - k)
        assert 0.0 <= got <= 1.0
        want = binomtest(k, n, 0.5).pvalue if n else 1.0
        # scipy's tail reads 0.0 below ~1e-290 (2.716e-300 for k=10, n=1075 in exact integers)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-280), (k, n)


@pytest.mark.parametrize("p", [0.01, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("n", [1, 7, 1000, 100_000])
def test_binom_cdf_matches_scipy_for_any_p(n, p):
    from scipy.stats import binom

    mode = int((n + 1) * p)
    for k in sorted({-1, 0, 1, n // 10, mode - math.isqrt(n) - 1, mode - 1, mode, mode + 1, mode + 3 * math.isqrt(n), n - 1, n}):
        want = float(binom.cdf(k, n, p))
        got = binom_cdf(k, n, p)
        assert 0.0 <= got <= 1.0
        assert got == pytest.approx(want, rel=1e-9, abs=1e-280), (k, n, p)


def test_paired_bootstrap_is_seeded_and_brackets_the_delta():
    before = [True] * 80 + [False] * 20
    after = [True] * 70 + [False] * 10 + [True] * 5 + [False] * 15
    delta, low, high = paired_bootstrap(before, after, resamples=2000, seed=3)
    assert delta == pytest.approx(-0.05)
    assert low < delta < high
    assert (delta, low, high) == paired_bootstrap(before, after, resamples=2000, seed=3)
    # paired standard error sqrt(((b + c)/n - delta^2)/n) = sqrt((0.15 - 0.0025)/100) ~ 0.0384;
    # one-sided 95% ends ~ delta -/+ 1.645 * se
    assert low == pytest.approx(-0.05 - 1.645 * 0.0384, abs=0.015)
    assert high == pytest.approx(-0.05 + 1.645 * 0.0384, abs=0.015)


def test_cluster_bootstrap_widens_the_interval_for_shared_prompts():
    before = [True, True, True] * 20 + [True, True, True] * 20
    after = [False, False, False] * 10 + [True, True, True] * 30
    flat = paired_bootstrap(before, after, resamples=2000)
    clustered = paired_bootstrap(before, after, [f"p{i // 3}" for i in range(120)], resamples=2000)
    assert flat[0] == clustered[0] == pytest.approx(-0.25)
    assert (clustered[2] - clustered[1]) > (flat[2] - flat[1]) * 1.3


def test_non_inferiority_three_values():
    assert non_inferiority(-0.005, 0.02, 0.01) == "pass"
    assert non_inferiority(-0.08, -0.02, 0.01) == "fail"
    assert non_inferiority(-0.03, 0.01, 0.01) == "inconclusive"


def test_wilson_decision():
    assert wilson_decision(17, 20, 0.6)[0] == "pass"  # (0.640, 0.948)
    assert wilson_decision(17, 20, 0.95)[0] == "fail"
    assert wilson_decision(17, 20, 0.8)[0] == "inconclusive"
    assert wilson_decision(0, 0, 0.8)[0] == "not run"
