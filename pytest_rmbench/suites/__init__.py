"""The published benchmarks as suites: a registry of lazy entries, and the trylast hook that
finds them by name.

Each suite lives in its own module, imported only when its name is asked for. A package
adds suites through the entry point group `pytest_rmbench.suites` (NAME = "module:OBJECT");
a conftest.py or plugin can also implement `pytest_rmbench_make_suite`, which runs first.
"""

from __future__ import annotations

import pytest

from ..registry import Registry, UnknownName
from .base import DataSource, RowError, Rows, Suite, SuiteDataError, SuiteResult

SUITES: Registry[Suite] = Registry("suite", "pytest_rmbench.suites", {
    "rewardbench": "pytest_rmbench.suites.rewardbench:REWARDBENCH",
    "rewardbench2": "pytest_rmbench.suites.rewardbench2:REWARDBENCH2",
    "rmbench": "pytest_rmbench.suites.rm_bench:RMBENCH",
    "m-rewardbench": "pytest_rmbench.suites.mrewardbench:M_REWARDBENCH",
    "rag-rewardbench": "pytest_rmbench.suites.ragrewardbench:RAG_REWARDBENCH",
    "judgebench": "pytest_rmbench.suites.judgebench:JUDGEBENCH",
    "rewardmath": "pytest_rmbench.suites.rewardmath:REWARDMATH",
    "processbench": "pytest_rmbench.suites.processbench:PROCESSBENCH",
    "hh-rlhf": "pytest_rmbench.suites.hhrlhf:HH_RLHF",
    "ppe-human": "pytest_rmbench.suites.ppe:PPE_HUMAN",
    "ppe-bestofk": "pytest_rmbench.suites.ppe:PPE_BESTOFK",
    "vl-rewardbench": "pytest_rmbench.suites.vl_rewardbench:VL_REWARDBENCH",
    "multimodal-rewardbench": "pytest_rmbench.suites.multimodal_rewardbench:MULTIMODAL_REWARDBENCH",
    "mm-rlhf-rewardbench": "pytest_rmbench.suites.mm_rlhf_rewardbench:MM_RLHF_REWARDBENCH",
})

__all__ = ["SUITES", "DataSource", "RowError", "Rows", "Suite", "SuiteDataError", "SuiteResult"]


@pytest.hookimpl(trylast=True)
def pytest_rmbench_make_suite(config, name):
    try:
        return SUITES.get(name)
    except UnknownName:
        return None  # the plugin says which names there are
