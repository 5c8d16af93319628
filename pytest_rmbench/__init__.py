"""pytest-rmbench: reward-model benchmarks as pytest test suites."""

__version__ = "0.1.0"


class RmbenchWarning(UserWarning):
    """Every warning pytest-rmbench gives (unknown fields, merged chat messages, ...): one
    category, so `-W ignore::pytest_rmbench.RmbenchWarning` or `-W error::...` catches them all."""
