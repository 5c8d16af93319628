"""The device worker of a Ray run: one actor, one model, loaded once, scoring whole chunks.

`ChunkWorker` is a plain class; the controller (ray_pool.py) makes it a Ray actor. It builds
the model from its ModelSpec through the kinds' registry (no pytest config), scores each chunk
with the engine's ChunkedScorer, and hands back the outcomes with the score rows: the
controller alone writes the score cache and the score file, so nodes need no shared writable
disk. The cache reaches the actor as a read-only snapshot of the chunk's cached scores.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time

from ..engine import BatchLimits, ChunkedScorer, EngineStats, error_outcome, one_line
from ..models.base import ModelLoadError, ModelSpec, close_model, model_info
from ..models.device import peak_memory_bytes

# fault injection for the tests (forwarded by the controller when set): "exit:ACTOR:CHUNK" ends
# actor ACTOR's first process when it starts chunk CHUNK (a node lost mid-chunk); "hide-model:ACTOR"
# makes the model path unreadable on actor ACTOR (a node without the shared folder)
FAULT_ENV = "RMBENCH_RAY_FAULT"
STAT_FIELDS = tuple(f.name for f in dataclasses.fields(EngineStats))


class SnapshotCache:
    """The score cache as the actor sees it: the controller's rows for this chunk, read-only;
    what the chunk scores anew is kept in `new` for the controller to write."""

    def __init__(self, rows: dict):
        self.rows = rows
        self.new: list = []

    def get_many(self, model, requests) -> dict:
        return {r: self.rows[r] for r in requests if r in self.rows}

    def put_many(self, model, rows) -> None:
        self.new.extend(rows)


def attempt_number() -> int:
    """0 for a task's first run, n for its n-th retry after its actor died (Ray's count)."""
    try:
        import ray

        return int(ray._private.worker.global_worker.core_worker.get_current_task_attempt_number())
    except Exception:  # a private accessor: without it the controller counts no retries
        return 0


def _restarted() -> bool:
    try:
        import ray

        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:
        return False


class ChunkWorker:
    """Scores chunks of (node id, item) on one model; `index` names the actor in figures."""

    def __init__(self, index: int, spec: ModelSpec, limits: BatchLimits, scorer_options: dict, cached: bool):
        self.index = index
        self.spec = spec
        self.cached = cached  # the controller has a score cache: use its snapshots
        self.model = None
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.restarted = _restarted()
        self.pid = os.getpid()
        self.scorer = ChunkedScorer(self._get_model, limits, **scorer_options)
        self.fault = os.environ.get(FAULT_ENV, "").split(":")

    def _get_model(self):
        if self.model is None:
            if self.error is not None:
                raise ModelLoadError(self.error)
            self.model = self._build()
        return self.model

    def _build(self):
        from ..models.kinds import model_builder
        from ..models.resolve import resolve

        started = time.perf_counter()
        spec = self.spec
        if self.fault[:2] == ["hide-model", str(self.index)]:
            spec = dataclasses.replace(spec, model=os.path.join(spec.model, "not-on-this-node"))
        try:
            model = model_builder(resolve(spec).require_kind())(spec)
        except Exception as exc:
            self.error = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {one_line(exc)}"
            raise ModelLoadError(self.error) from None
        self.load_seconds = time.perf_counter() - started
        return model

    def load(self) -> dict:
        """Build the model now; where it runs and what it is, or the load error."""
        try:
            info = model_info(self._get_model())
        except ModelLoadError as exc:
            return dict(self.where(), load_error=str(exc))
        return dict(self.where(), load_error=None, load_seconds=self.load_seconds, **info)

    def where(self) -> dict:
        return {"actor": self.index, "node": socket.gethostname(), "pid": self.pid, "restarted": self.restarted,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}

    def score(self, index: int, keyed_items: list, cached: dict, want_rows: bool) -> dict:
        """One chunk: its outcomes by node id, the rows the controller must write, and figures."""
        if self.fault[:1] == ["exit"] and self.fault[1:] == [str(self.index), str(index)] and not self.restarted:
            os._exit(3)  # the process dies mid-chunk, as an OOM-killed or preempted one does
        started = time.perf_counter()
        before = dataclasses.asdict(self.scorer.stats)
        snapshot = SnapshotCache(cached)
        rows: list = []
        self.scorer.cache = (lambda: (snapshot, "snapshot")) if self.cached else (lambda: None)
        self.scorer.on_scores = [rows.extend] if want_rows else []
        out = {"index": index, "attempt": attempt_number(), "load_error": None}
        try:
            out["outcomes"] = self.scorer.score_items(keyed_items)
        except ModelLoadError as exc:
            out["load_error"] = str(exc)
            return dict(out, **self.where())
        except Exception as exc:  # a bug costs this chunk's items, as in ChunkedScorer.outcome
            failed = error_outcome(f"scoring failed: {one_line(exc)}")
            out["outcomes"] = {key: failed for key, _ in keyed_items}
        after = dataclasses.asdict(self.scorer.stats)
        out["stats"] = {name: after[name] - before[name] for name in STAT_FIELDS}
        out.update(new_rows=snapshot.new, rows=rows, busy=time.perf_counter() - started,
                   peak_memory_bytes=peak_memory_bytes(), **self.where())
        return out

    def close(self) -> None:
        close_model(self.model)
