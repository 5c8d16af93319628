import pytest

from pytest_rmbench.stats import wilson_interval


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
