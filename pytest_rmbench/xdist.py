"""pytest-xdist integration: whole chunks per worker, one GPU (or K) per worker.

Registered only when xdist is loaded (pytest-randomly's pattern). The scheduler relies on
LoadScopeScheduling._split_scope, a private method: the xdist version range is pinned in
pyproject.toml and tests/test_xdist.py fails if its behaviour changes.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable

import pytest
from xdist.scheduler import LoadScopeScheduling

from .engine import chunk_size_for, plan_chunks

GPU_COUNT_ENV = "RMBENCH_GPU_COUNT"  # overrides GPU detection (tests fake GPUs with it)


class ChunkScheduling(LoadScopeScheduling):
    """LoadScope with one work unit per chunk of benchmark items.

    Other tests keep one unit per test, as with `--dist load`.
    """

    def __init__(self, config, log, is_benchmark: Callable[[str], bool], chunk_size: int, lane_of=None):
        super().__init__(config, log)
        self._is_benchmark = is_benchmark
        self._chunk_size = chunk_size
        self._lane_of = lane_of  # several models: a chunk is one model's (engine.plan_chunks)
        self._scopes: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._scopes is None:
            keys = [n for n in self.collection or () if self._is_benchmark(n)]
            size = chunk_size_for(self._chunk_size, len(keys), self.numnodes)
            self._scopes = {
                key: f"rmbench-chunk-{index}" for index, chunk in enumerate(plan_chunks(keys, size, self._lane_of))
                for key in chunk
            }
        return self._scopes.get(nodeid, nodeid)


def visible_gpus() -> list[str]:
    """GPU ids this controller may hand out, honouring a CUDA_VISIBLE_DEVICES the user set."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    faked = os.environ.get(GPU_COUNT_ENV)
    if faked is not None:
        return [str(i) for i in range(int(faked))]
    if not (shutil.which("nvidia-smi") or os.path.exists("/dev/nvidia0") or os.path.exists("/dev/kfd")):
        return []  # no GPU driver: do not pay for importing torch
    from .models.device import cuda_device_count

    return [str(i) for i in range(cuda_device_count())]


def assign_gpus(gpus: list[str], workers: int, per_worker: int) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES for each worker: disjoint groups of per_worker GPUs.

    With more workers than groups, groups are shared round-robin (the caller warns).
    """
    groups = [gpus[i : i + per_worker] for i in range(0, len(gpus) - per_worker + 1, per_worker)]
    if not groups:
        return [None] * workers
    return [",".join(groups[i % len(groups)]) for i in range(workers)]


def auto_workers(gpus_per_worker: int) -> int | None:
    gpus = visible_gpus()
    return max(1, len(gpus) // gpus_per_worker) if gpus else None


class XdistHooks:
    """Controller-side xdist hooks of a session that runs a model."""

    def __init__(self, config, is_benchmark: Callable[[str], bool], chunk_size: int, gpus_per_worker: int,
                 lane_of=None):
        self.config = config
        self.lane_of = lane_of
        self.is_benchmark = is_benchmark
        self.chunk_size = chunk_size
        self.gpus_per_worker = gpus_per_worker
        self.gpu_assignment: list[str | None] = []
        self.crashed: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getoption("dist") in ("each", "no"):
            return None
        return ChunkScheduling(config, log, self.is_benchmark, self.chunk_size, self.lane_of)

    def pytest_xdist_setupnodes(self, config, specs):
        gpus = visible_gpus()
        self.gpu_assignment = assign_gpus(gpus, len(specs), self.gpus_per_worker)
        for spec, devices in zip(specs, self.gpu_assignment):
            if devices is not None:
                # set before the worker starts, so CUDA sees only these; restarts reuse the spec
                spec.env["CUDA_VISIBLE_DEVICES"] = devices

    def pytest_handlecrashitem(self, crashitem, report, sched):
        if self.is_benchmark(crashitem):
            # the scheduler re-queues the unfinished chunk: the item is scored again elsewhere
            report.outcome = "rerun"
            self.crashed.append(crashitem)
