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
    """P(X <= k) for X ~ Binomial(n, p), summed exactly in floating point."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    total = 0.0
    term = (1 - p) ** n  # P(X = 0)
    for i in range(k + 1):
        total += term
        term *= (n - i) / (i + 1) * p / (1 - p)
    return min(1.0, total)


def mcnemar_exact(regressions: int, fixes: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c."""
    discordant = regressions + fixes
    if discordant == 0:
        return 1.0
    return min(1.0, 2 * binom_cdf(min(regressions, fixes), discordant, 0.5))


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
