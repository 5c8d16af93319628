"""The published benchmarks as suites, and the trylast hook that finds them by name.

Each suite lives in its own module, imported only when its name is asked for; a plugin
or conftest.py adds its own by implementing `pytest_rmbench_make_suite`.
"""

from __future__ import annotations

import importlib

import pytest

from .base import DataSource, RowError, Rows, Suite, SuiteDataError, SuiteResult

# suite name -> (module under pytest_rmbench.suites, attribute holding the suite)
BUILTIN_SUITES = {
    "rewardbench": ("rewardbench", "REWARDBENCH"),
    "rewardbench2": ("rewardbench2", "REWARDBENCH2"),
    "rmbench": ("rmbench", "RMBENCH"),
    "m-rewardbench": ("mrewardbench", "M_REWARDBENCH"),
    "rag-rewardbench": ("ragrewardbench", "RAG_REWARDBENCH"),
    "judgebench": ("judgebench", "JUDGEBENCH"),
    "rewardmath": ("rewardmath", "REWARDMATH"),
    "processbench": ("processbench", "PROCESSBENCH"),
    "hh-rlhf": ("hhrlhf", "HH_RLHF"),
    "ppe-human": ("ppe", "PPE_HUMAN"),
    "ppe-bestofk": ("ppe", "PPE_BESTOFK"),
}

__all__ = ["BUILTIN_SUITES", "DataSource", "RowError", "Rows", "Suite", "SuiteDataError", "SuiteResult", "builtin_suite"]


def builtin_suite(name: str):
    """The built-in suite of that name, or None."""
    if name not in BUILTIN_SUITES:
        return None
    module_name, attribute = BUILTIN_SUITES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, attribute)


@pytest.hookimpl(trylast=True)
def pytest_rmbench_make_suite(config, name):
    return builtin_suite(name)
