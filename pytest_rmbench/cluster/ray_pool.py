"""The controller's side of a Ray run: a pool of actors, chunks in flight, outcomes per item.

The pytest process is the controller. At session start it joins (or starts) a Ray cluster and
starts the actors, which begin loading the model while pytest collects. After collection the
chunks (the same plan_chunks as any run) are submitted a bounded number at a time to the least
busy actor; each test waits only for its own chunk, harvesting whatever finished meanwhile and
topping the queue up. Ray restarts a dead actor (max_restarts) and runs its unfinished chunks
again (max_task_retries); a chunk is counted once, whichever attempt returns it, and the
retries are counted from Ray's attempt numbers. The controller alone writes the score cache
and the score file from the rows the actors send back.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from ..engine import BatchLimits, error_outcome, one_line
from ..items import ItemOutcome, Rules
from ..models.base import ModelLoadError, ModelSpec
from .actor import FAULT_ENV, STAT_FIELDS, ChunkWorker

INSTALL = "pip install 'pytest-rmbench[ray]'"
IN_FLIGHT_PER_ACTOR = 2  # chunks queued per actor: one scoring, one waiting, so no actor idles
MAX_RESTARTS = 4  # Ray restarts a dead actor this many times ...
MAX_TASK_RETRIES = 4  # ... and runs its unfinished chunks again this many times
WAIT_TICK = 0.5  # seconds between progress updates while a test waits for its chunk
START_TIMEOUT_ENV = "RMBENCH_RAY_START_TIMEOUT"  # seconds the first actor may take to start and load
START_TIMEOUT = 1800.0  # a 70B model from a slow shared disk fits; an actor Ray cannot place never would


def start_timeout() -> float:
    try:
        return max(1.0, float(os.environ.get(START_TIMEOUT_ENV) or START_TIMEOUT))
    except ValueError:
        return START_TIMEOUT


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached: one line for the user."""


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(f"--rm-ray needs Ray, which is not installed ({one_line(exc)}): {INSTALL}") from None
    return ray


def connect(address: str):
    """The ray module, initialised: `local` starts a private one-machine cluster, `auto` joins
    the one the environment names (RAY_ADDRESS, or `ray start` on this node), else ADDRESS."""
    ray = import_ray()
    if address not in ("local", "auto"):
        reachable(address)
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address == "local":
            ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count(), include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as exc:
        raise RayUnavailable(f"--rm-ray {address}: cannot start or join the Ray cluster: {one_line(exc)}") from None
    return ray


def reachable(address: str, timeout: float = 5.0) -> None:
    """HOST:PORT (or ray://HOST:PORT) answers: Ray itself retries a wrong address for minutes."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise RayUnavailable(f"--rm-ray {address}: nothing answers there ({one_line(exc)}); give the head node's "
                             "HOST:PORT (ray start --head prints it), ray://HOST:10001, auto or local") from None


def actor_resources(ray, wanted: int | None, gpus_per_actor: int) -> tuple[int, float, int]:
    """(actors, CPUs per actor, GPUs per actor): by default as many actors as the cluster's GPUs
    allow at --rm-gpus-per-worker each; without GPUs, CPU actors sharing each node's cores."""
    total = ray.cluster_resources()
    gpus = int(total.get("GPU", 0))
    if gpus:
        count = wanted or max(1, gpus // gpus_per_actor)
        if count * gpus_per_actor > gpus:
            raise RayUnavailable(f"--rm-ray-actors {count} needs {count * gpus_per_actor} GPUs at --rm-gpus-per-worker "
                                 f"{gpus_per_actor}; the cluster has {gpus}")
        return count, 1, gpus_per_actor
    nodes = [n for n in ray.nodes() if n.get("Alive")] or [{"Resources": total}]
    count = wanted or 1
    per_node = -(-count // len(nodes))
    smallest = min(float(n["Resources"].get("CPU", 1)) for n in nodes)
    return count, max(0.01, int(100 * smallest / per_node) / 100), 0


def chunk_requests(keyed_items, pairwise: bool | None, rules: Callable[[bool], Rules]) -> list:
    """The first-pass requests of a chunk (both kinds when only the model can tell), for the
    snapshot of cached scores sent with it."""
    kinds = (False, True) if pairwise is None else (bool(pairwise),)
    return list(dict.fromkeys(
        r for p in kinds for _, item in keyed_items if not (p and item.scalar_only) for r in item.requests(rules(p))
    ))


@dataclass
class ActorFigures:
    """One actor's figures, summed over its chunks (and over its restarts)."""

    index: int
    stats: dict = field(default_factory=lambda: dict.fromkeys(STAT_FIELDS, 0))
    chunks: int = 0
    retried: int = 0
    busy: float = 0.0
    peak_memory_bytes: int | None = None
    node: str | None = None
    pids: list = field(default_factory=list)
    restarted_pids: set = field(default_factory=set)  # processes Ray started again after one died
    load: dict = field(default_factory=dict)

    def add(self, result: dict) -> None:
        self.chunks += 1
        self.retried += result["attempt"] > 0
        self.busy += result["busy"]
        for name in STAT_FIELDS:
            self.stats[name] += result["stats"][name]
        peak = result.get("peak_memory_bytes")
        if peak is not None:
            self.peak_memory_bytes = max(peak, self.peak_memory_bytes or 0)
        self.node = result["node"]
        if result["pid"] not in self.pids:
            self.pids.append(result["pid"])
        if result.get("restarted"):
            self.restarted_pids.add(result["pid"])

    @property
    def restarts(self) -> int:
        """Ray's restarts of this actor that returned a chunk (a dead process may have returned none)."""
        return max(len(self.restarted_pids), len(self.pids) - 1)

    def as_worker(self) -> dict:
        """The report's "workers" entry, as an xdist worker's, with the actor's own figures added."""
        s, load = self.stats, self.load
        return {"worker": f"ray-{self.index}", "items": s["pairs"], "sequences": s["sequences"], "batches": s["batches"],
                "tokens": s["tokens"], "padded_tokens": s["padded_tokens"], "oom_halvings": s["oom_halvings"],
                "cached": s["cached"], "seconds": s["seconds"], "load_seconds": load.get("load_seconds"),
                "load_error": load.get("load_error"), "peak_memory_bytes": self.peak_memory_bytes,
                "device": load.get("device"), "cuda_visible_devices": load.get("cuda_visible_devices"),
                "versions": load.get("versions") or {}, "kind": load.get("kind"), "dtype": load.get("dtype"),
                "from_cache": False, "warnings": [], "node": self.node or load.get("node"), "chunks": self.chunks,
                "busy_seconds": round(self.busy, 3), "retried": self.retried, "restarts": self.restarts}


@dataclass
class Chunk:
    items: list  # [(node id, item)]
    actor: int | None = None  # where it was last submitted
    done: bool = False
    submitted: float | None = None


class RayPool:
    """The actors of one run and the chunks they score; `outcome(key, item)` as ChunkedScorer's."""

    def __init__(self, ray, address: str, spec: ModelSpec, limits: BatchLimits, scorer_options: dict, *,
                 actors: int | None, cache: Callable[[], tuple | None], save_rows: Callable | None):
        self.ray, self.address = ray, address
        self.cache, self.save_rows = cache, save_rows
        self.rules = lambda pairwise: Rules(pairwise=bool(pairwise), **{k: v for k, v in scorer_options.items()
                                                                        if k != "pairwise_hint"})
        self.pairwise = scorer_options.get("pairwise_hint")
        self.count, cpus, gpus = actor_resources(ray, actors, spec.gpus)
        self.resources = (cpus, gpus)
        self.handles = [self._start(i, spec, limits, scorer_options, cpus, gpus) for i in range(self.count)]
        self.loads = [handle.load.remote() for handle in self.handles]
        self.figures = [ActorFigures(i) for i in range(self.count)]
        self.live = list(range(self.count))  # actors that may still get chunks
        self.chunks: list[Chunk] = []
        self.chunk_of: dict[str, int] = {}
        self.pending: dict = {}  # ObjectRef -> chunk index
        self.outcomes: dict[str, ItemOutcome] = {}
        self.load_error: str | None = None
        self.checked = False  # the first actor's load was checked
        self.current: int | None = None  # the chunk whose items the tests are reading
        self.retried = 0
        self.warnings: list[str] = []
        self.progress = None  # the controller's Progress, when it has a terminal
        self.own_seconds = 0.0  # the controller's own time on chunks: cache look-ups, submitting, collecting
        self.started = time.perf_counter()

    def _start(self, index: int, spec: ModelSpec, limits: BatchLimits, scorer_options: dict, cpus: float, gpus: int):
        options = {"num_cpus": cpus, "num_gpus": gpus, "max_restarts": MAX_RESTARTS,
                   "max_task_retries": MAX_TASK_RETRIES, "scheduling_strategy": "SPREAD"}
        if os.environ.get(FAULT_ENV):  # the tests' fault injection reaches the actors' processes
            options["runtime_env"] = {"env_vars": {FAULT_ENV: os.environ[FAULT_ENV]}}
        actor = self.ray.remote(ChunkWorker).options(**options)
        return actor.remote(index, spec, limits, scorer_options, self.cache() is not None)

    # -- planning and submitting -------------------------------------------------------------------
    def plan(self, chunks: list[list]) -> None:
        """The run's chunks, each [(node id, item)]; the first ones are submitted at once."""
        for chunk in chunks:
            self._add(chunk)
        self._top_up()

    def _add(self, items: list) -> int:
        index = len(self.chunks)
        self.chunks.append(Chunk(list(items)))
        self.chunk_of.update((key, index) for key, _ in items)
        return index

    def _top_up(self, first: int | None = None) -> None:
        """Keep IN_FLIGHT_PER_ACTOR chunks per live actor in flight, in plan order (`first` ahead)."""
        if not self._first_load_ok() or not self.live:
            return
        limit = IN_FLIGHT_PER_ACTOR * len(self.live)
        order = ([first] if first is not None else []) + list(range(len(self.chunks)))
        for index in order:
            chunk = self.chunks[index]
            if len(self.pending) >= limit and index != first:
                break
            if not chunk.done and chunk.submitted is None:
                self._submit(index)

    def _submit(self, index: int) -> None:
        started = time.perf_counter()
        chunk = self.chunks[index]
        busy = {a: 0 for a in self.live}
        for i in self.pending.values():
            if self.chunks[i].actor in busy:
                busy[self.chunks[i].actor] += 1
        chunk.actor = min(busy, key=lambda a: (busy[a], a))
        cache = self.cache()
        cached = cache[0].get_many(cache[1], chunk_requests(chunk.items, self.pairwise, self.rules)) if cache else {}
        ref = self.handles[chunk.actor].score.remote(index, chunk.items, cached, self.save_rows is not None)
        chunk.submitted = time.perf_counter()
        self.pending[ref] = index
        self.own_seconds += chunk.submitted - started

    def _first_load_ok(self) -> bool:
        """The model path is checked on the first actor before any chunk goes out: a path no
        node can read fails the run once, with the first actor's error."""
        if not self.checked:
            self.checked = True
            waited = start_timeout()
            try:
                load = self.ray.get(self.loads[0], timeout=waited)
            except self.ray.exceptions.GetTimeoutError:  # e.g. no node has room for the actor: never a hang
                cpus, gpus = getattr(self, "resources", ("?", "?"))
                load = {"load_error": f"the Ray actor did not start and load the model within {waited:g} s (does the "
                                     f"cluster have room for an actor with {cpus} CPU(s) and {gpus} GPU(s)? "
                                     f"{START_TIMEOUT_ENV} sets the wait)"}
            except Exception as exc:  # the actor could not start: e.g. pytest-rmbench missing on its node
                load = {"load_error": f"the Ray actor could not start: {one_line(exc)}"}
            self.figures[0].load = load
            if load.get("load_error"):
                self.load_error = f"on Ray actor ray-0 ({load.get('node', '?')}): {load['load_error']}"
                self.figures[0].load = dict(load, load_error=self.load_error)  # the report's and summary's line
                self.live = []
            else:
                self._remember_model()
        return self.load_error is None

    def _remember_model(self) -> None:
        """The cache records what made its scores, as a run that loads the model in-process does."""
        cache = self.cache()
        try:
            if cache:
                cache[0].put_model_info(cache[1], self.model_info())
        except Exception as exc:
            self.warnings.append(f"the score cache could not record the model: {one_line(exc)}")

    # -- waiting and harvesting ----------------------------------------------------------------------
    def outcome(self, key: str, item) -> ItemOutcome:
        index = self.chunk_of.get(key)
        if index != self.current and self.pending:  # a new chunk's first item: collect what finished, top up
            self.current = index
            ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
            for ref in ready:
                self._harvest(ref)
            self._top_up()
        if key not in self.outcomes:
            if index is None or self.chunks[index].done:  # not planned: scored alone
                index = self._add([(key, item)])
            self._wait_for(index)
        if key not in self.outcomes:
            raise ModelLoadError(self.load_error or "no Ray actor could load the model")
        return self.outcomes.pop(key)

    def _wait_for(self, index: int) -> None:
        while not self.chunks[index].done:
            self._top_up(first=index)
            if self.load_error is not None or not self.pending:
                return
            ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_TICK)
            for ref in ready:
                self._harvest(ref)
            if self.progress is not None:
                self.progress.in_chunk(0)

    def _harvest(self, ref) -> None:
        started = time.perf_counter()
        try:
            self._collect(ref)
        finally:
            self.own_seconds += time.perf_counter() - started

    def _collect(self, ref) -> None:
        index = self.pending.pop(ref)
        chunk = self.chunks[index]
        try:
            result = self.ray.get(ref)
        except Exception as exc:  # the actor died more often than Ray restarts it
            self._lost(index, f"Ray actor ray-{chunk.actor} died ({one_line(exc)})")
            return
        if result["load_error"]:
            figures = self.figures[chunk.actor]
            figures.load = figures.load or {"load_error": result["load_error"], "node": result["node"]}
            self._lost(index, f"Ray actor ray-{chunk.actor} on {result['node']} could not load the model "
                              f"({result['load_error']}); the model path must be readable on every node")
            return
        self.figures[chunk.actor].add(result)
        self.retried += result["attempt"] > 0
        unsaved = self._write(result)
        self.outcomes.update(result["outcomes"])
        if unsaved:  # as under -n 0: an item whose score the cache or score file lacks is an error
            for key, item in chunk.items:
                why = next((unsaved[r] for p in (False, True) if not (p and item.scalar_only)
                            for r in item.requests(self.rules(p)) if r in unsaved), None)
                if why is not None:
                    self.outcomes[key] = error_outcome(why)
        chunk.done = True

    def _lost(self, index: int, why: str) -> None:
        """An actor gone for good: its chunk goes to another actor (a retry), or errors when none is left."""
        chunk = self.chunks[index]
        if chunk.actor in self.live:
            self.live.remove(chunk.actor)
            self.warnings.append(why)
        if self.live:
            chunk.submitted = None
            self.retried += 1
            self._submit(index)
            return
        failed = error_outcome(f"scoring failed: no Ray actor left: {why}")
        self.outcomes.update((key, failed) for key, _ in chunk.items)
        chunk.done = True

    def _write(self, result: dict) -> dict:
        """The controller alone writes the cache and the score file; returns request -> why for the
        scores it could not write (their items error, as under -n 0: the file asked for would be incomplete)."""
        unsaved: dict = {}
        cache = self.cache()
        if cache and result["new_rows"]:
            try:
                cache[0].put_many(cache[1], result["new_rows"])
            except Exception as exc:
                why = f"could not write the score cache {getattr(cache[0], 'path', '')}: {one_line(exc)}"
                unsaved.update((request, why) for request, _ in result["new_rows"])
        if self.save_rows is not None and result["rows"]:
            try:
                self.save_rows(result["rows"])
            except Exception as exc:
                why = str(exc) if type(exc).__name__ == "SaveError" else one_line(exc)
                unsaved.update((request, why) for request, _ in result["rows"] if request not in unsaved)
        return unsaved

    # -- figures and the end ---------------------------------------------------------------------------
    def model_info(self) -> dict | None:
        """What the first actor loaded (kind, dtype, device, versions), for the score cache."""
        load = self.figures[0].load
        return {k: load.get(k) for k in ("kind", "dtype", "device", "versions")} if load and not load.get("load_error") else None

    def progress_detail(self) -> str:
        done = sum(c.done for c in self.chunks)
        return f"; Ray: {done}/{len(self.chunks)} chunks done, {len(self.pending)} in flight, {self.retried} retried"

    def worker_figures(self) -> list[dict]:
        for figures, ref in zip(self.figures, self.loads):
            if not figures.load:
                try:
                    ready, _ = self.ray.wait([ref], timeout=0)
                    figures.load = self.ray.get(ready[0]) if ready else {}
                except Exception:  # an actor that never started has no figures
                    figures.load = {}
        return [f.as_worker() for f in self.figures]

    def summary_lines(self) -> list[str]:
        done = sum(c.done for c in self.chunks)
        wall = time.perf_counter() - self.started
        lines = [f"Ray ({self.address}): {done} chunks on {self.count} actor(s), {self.retried} chunk(s) retried"
                 + (" after an actor died (each item counted once)" if self.retried else "")
                 + f"; {wall:.1f}s from the actors' start, the controller's own work "
                 f"{1000 * self.own_seconds / max(1, len(self.chunks)):.1f} ms per chunk"]
        for f in self.figures:
            lines.append(f"Ray actor ray-{f.index} on {f.node or f.load.get('node') or '?'} ({f.load.get('device') or '?'}): "
                         f"{f.chunks} chunks, {f.busy:.2f}s busy, peak memory {_mib(f.peak_memory_bytes)}"
                         + (f", restarted {f.restarts} time(s)" if f.restarts else ""))
        return lines

    def close(self) -> None:
        """The driver leaves: Ray ends the actors it owns (and a `local` cluster altogether)."""
        self.ray.shutdown()


def _mib(value) -> str:
    return "?" if value is None else f"{value / 2**20:.0f} MiB"
