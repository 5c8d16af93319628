"""pytest-rmbench: reward-model benchmarks as pytest test suites."""

__version__ = "0.1.0"
