"""Interval formulas as pure functions (checked by hand in tests/test_stats.py)."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95%


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for correct/n; (None, None) when n is 0."""
    if n <= 0:
        return None, None
    p = correct / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def binom_cdf(k: int, n: int, p: float = 0.5) -> float:
    """P(X <= k) for X ~ Binomial(n, p), to about 1e-12 relative error for any n.

    The sum is taken relative to its largest term (the one next to the mode), whose logarithm
    comes from Loader's saddle-point form, so neither 0.5**n nor a binomial coefficient ever
    overflows or underflows on the way; only a result below ~1e-308 reads as 0.0.
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    q = 1.0 - p
    if k < (n + 1) * p - 1:  # k below the mode: sum the lower tail down from k
        return min(1.0, _tail(k, n, p, q, -1))
    # at or above the mode the upper tail is the smaller one; its complement is accurate here
    return max(0.0, min(1.0, 1.0 - _tail(k + 1, n, p, q, +1)))


def _tail(start: int, n: int, p: float, q: float, step: int) -> float:
    """pmf(start) + pmf(start + step) + ... to the end (0 or n); the terms only shrink on the way."""
    ratio = q / p if step < 0 else p / q
    total = term = 1.0
    i = start
    while (0 < i) if step < 0 else (i < n):  # i < n holds from the start for the lower tail (start = k < n)
        # pmf(i - 1) / pmf(i) = i / (n - i + 1) * q / p;  pmf(i + 1) / pmf(i) = (n - i) / (i + 1) * p / q
        term *= (i / (n - i + 1) if step < 0 else (n - i) / (i + 1)) * ratio
        total += term
        if term < total * 1e-17:
            break
        i += step
    return math.exp(_log_pmf(start, n, p, q) + math.log(total))


def _log_pmf(x: int, n: int, p: float, q: float) -> float:
    """log P(X = x), after C. Loader, "Fast and accurate computation of binomial probabilities" (2000):
    the Stirling-formula errors and the deviance terms are each small and accurate, where
    lgamma(n + 1) - lgamma(x + 1) - lgamma(n - x + 1) would cancel away ~log10(n) digits."""
    if x == 0:
        return n * math.log1p(-p)
    if x == n:
        return n * math.log(p)
    lc = _stirlerr(n) - _stirlerr(x) - _stirlerr(n - x) - _bd0(x, n * p) - _bd0(n - x, n * q)
    lf = math.log(2 * math.pi) + math.log(x) + math.log1p(-x / n)
    return lc - 0.5 * lf


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _stirlerr(n: int) -> float:
    """log(n!) - log(sqrt(2 pi n) (n / e)^n): the error of Stirling's formula."""
    if n <= 15:
        return math.log(math.factorial(n)) - (n + 0.5) * math.log(n) + n - _HALF_LOG_2PI
    nn = float(n) * n  # the series' next term is below 1e-16 from n = 16 on
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / 1188 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, mean: float) -> float:
    """x log(x / mean) + mean - x, without the cancellation when x is near mean."""
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        ej = 2 * x * v
        v2 = v * v
        j = 1
        while True:  # s = (x - mean) v + 2 x (v^3 / 3 + v^5 / 5 + ...)
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return x * math.log(x / mean) + mean - x


def mcnemar_exact(regressions: int, fixes: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c: the exact binomial
    test of min(b, c) against Binomial(b + c, 1/2), correct for any number of discordant items."""
    smaller, discordant = min(regressions, fixes), regressions + fixes
    if 2 * smaller + 1 >= discordant:  # balanced, or one apart: each tail holds at least half
        return 1.0
    return min(1.0, 2 * binom_cdf(smaller, discordant, 0.5))


def paired_bootstrap(
    before: list[bool],
    after: list[bool],
    clusters: list[str] | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """Accuracy change (after - before) with a one-sided (1 - alpha) percentile interval per end.

    Whole clusters (e.g. items sharing one prompt) are resampled together, so pairs that
    share a prompt do not count as independent evidence. Returns (delta, low, high).
    """
    import numpy as np  # a dependency of transformers; imported only when a baseline is compared

    n = len(before)
    if n == 0:
        return 0.0, 0.0, 0.0
    diffs = np.array([int(a) - int(b) for b, a in zip(before, after)], dtype=np.int64)
    delta = float(diffs.sum()) / n
    keys = clusters or [str(i) for i in range(n)]
    index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    cluster_of = np.array([index[key] for key in keys])
    sums = np.bincount(cluster_of, weights=diffs, minlength=len(index))
    sizes = np.bincount(cluster_of, minlength=len(index))
    rng = np.random.default_rng(seed)
    k = len(index)
    estimates = np.empty(resamples)
    step = max(1, 2_000_000 // k)  # bounded memory: at most ~16 MB of indices at a time
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        picks = rng.integers(0, k, size=(stop - start, k))
        estimates[start:stop] = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    estimates.sort()
    low = float(estimates[int(alpha * resamples)])
    high = float(estimates[min(resamples - 1, int((1 - alpha) * resamples))])
    return delta, low, high


def non_inferiority(low: float, high: float, margin: float) -> str:
    """pass: even the pessimistic end loses less than margin; fail: even the optimistic end loses more."""
    if low > -margin:
        return "pass"
    if high < -margin:
        return "fail"
    return "inconclusive"


def wilson_decision(correct: int, n: int, threshold: float) -> tuple[str, float | None, float | None]:
    """Three-valued threshold check on the two-sided 95% Wilson interval."""
    low, high = wilson_interval(correct, n)
    if low is None:
        return "not run", None, None
    if low >= threshold:
        return "pass", low, high
    if high < threshold:
        return "fail", low, high
    return "inconclusive", low, high
