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
