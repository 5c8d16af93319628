"""One pytest-rmbench run: its settings, its model, and what it opens and must close.

`RunSession` is made once per pytest process at configure time. The hooks in plugin.py and
the collection nodes in collect.py talk to it and to nothing else. It owns the resolved
settings, the model (loaded on first use, once), the score cache, the score file, the run
store, the chunk scorer, and what collection and the items' reports taught it; `close()`
releases everything it opened, whatever way the run ended.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from .catalog import Catalog
from .collect import BadItem, BenchmarkTest, item_record, matches, one_model_nodeid, resolve_suites, suite_options
from .engine import chunk_size_for, error_outcome, one_line, plan_chunks
from .items import INCORRECT, NOT_LOADED, ItemOutcome
from .lanes import ModelLane
from .models.base import ModelLoadError
from .options import Settings
from .progress import Progress
from .storage import history
from .storage.outputs import OutputError, check_output_file, check_output_folder


SKIP_REASON = "no reward model: run with --rm-model=PATH (or --rm-model=builtin:length) to score benchmark items"


@dataclass
class RunState:
    """What the run has learned so far: the controller's records and the facts for the summary."""

    records: dict[str, dict] = field(default_factory=dict)  # node id -> item record
    positions: dict[str, int] = field(default_factory=dict)  # node id -> collection order
    workers: list[dict] = field(default_factory=list)  # each scoring process's figures
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts for the summary that are not warnings
    explanations: dict[str, str] = field(default_factory=dict)  # node id -> why an INCORRECT item failed
    other_failures: int = 0  # failed tests that are not benchmark items
    collection_failed: bool = False
    deselected: int = 0
    deselected_by_model: Counter = field(default_factory=Counter)  # several models: each model's deselected tests
    usage_error: str | None = None
    report_error: str | None = None
    report: dict | None = None


class RunSession:
    """Per-process state of a run; the one object collection nodes and hooks talk to."""

    def __init__(self, config):
        self.config = config
        self.settings = Settings.from_config(config)
        self.spec = self.settings.model  # the first model's: the run's primary model
        self.is_worker = hasattr(config, "workerinput")
        self.started = time.time()
        self.state = RunState()
        self.catalog = Catalog()
        self.suites: list | None = None  # resolved once, at session start
        self.suite_names: set[str] = set()
        self.xdist = None  # the controller's xdist hooks, when xdist runs the items
        self.ray_pool = None  # the controller's Ray actors, when --rm-ray scores the items (cluster/)
        self.progress: Progress | None = None  # in the process that owns the terminal
        self._cache = False  # the score cache file all models share; False: not opened yet
        self._store = None
        if self.spec is not None and not self.is_worker:
            self._check_outputs()  # before a score file is emptied and before any scoring
            if self.settings.ray:
                self._check_ray()
        several = self.settings.several_models
        # one lane per --rm-model, in the order given: its resolved kind, its model (built on first use), its scorer
        self.lanes = {name: ModelLane(self, name, spec, several) for name, spec in self.settings.models}
        self.primary: ModelLane | None = next(iter(self.lanes.values()), None)
        # longest first, so that "b-a" is never read as "a" (lane_of)
        self._suffixes = sorted(self.lanes, key=len, reverse=True) if several else []

    # -- start-up ---------------------------------------------------------------------------
    def _check_outputs(self) -> None:
        """Every file the run will write must be writable now: a usage error (exit 4) beats a lost run."""
        s = self.settings
        from .lanes import score_file_for

        files = [("--rm-save-scores", score_file_for(s.save_scores, name, s.several_models) if s.save_scores else None,
                  None) for name, _ in s.models]
        files += [("--rm-report", s.report, None), ("--rm-html", s.html, None), ("--rm-markdown", s.markdown, None)]
        if s.store and "://" not in s.store and not s.no_store:
            files.append(("--rm-store", history.store_target(s.store, str(self.config.rootpath)), s.store))
        try:
            for option, path, shown in files:
                if path:
                    check_output_file(option, path, shown)
            if not s.no_cache and s.cache_dir:
                check_output_folder("--rm-cache-dir", s.cache_dir)
        except OutputError as exc:
            raise pytest.UsageError(f"pytest-rmbench: {exc}") from None

    def _check_ray(self) -> None:
        """--rm-ray without Ray installed: one line naming the install command (exit 4)."""
        from .cluster import RayUnavailable, import_ray

        try:
            import_ray()
        except RayUnavailable as exc:
            raise pytest.UsageError(f"pytest-rmbench: {exc}") from None

    def _start_ray(self) -> None:
        """The actors start (and load the model) while pytest collects; models that need none say so."""
        kind, spec = self.resolved.kind, self.spec
        hooks = [i.plugin_name for i in self.config.hook.pytest_rmbench_make_model.get_hookimpls()]
        if kind in ("http", "scores") or "://" in spec.model:
            self.state.notes.append(f"--rm-ray: a {kind} model needs no Ray actors: it was scored in this process")
            return
        if any(name != "rmbench-kinds" for name in hooks):
            self.state.notes.append("--rm-ray: a pytest_rmbench_make_model hook builds the model, which Ray actors "
                                    "cannot run: it was scored in this process")
            return
        from .cluster import RayPool, RayUnavailable, connect

        if kind is not None and os.path.exists(spec.model):  # actors build this kind from this path
            spec = dataclasses.replace(spec, kind=kind, model=os.path.abspath(spec.model))
        s, lane = self.settings, self.primary  # --rm-ray runs one model (options.Settings)
        scorer = lane.scorer
        options = {"pairwise_hint": scorer.pairwise_hint, "step_threshold": s.step_threshold, "null_answer": s.null_answer,
                   "pairwise_rule": s.pairwise_rule, "both_orders": scorer.both_orders}
        try:
            self.ray_pool = RayPool(connect(s.ray), s.ray, spec, s.limits(), options, actors=s.ray_actors,
                                    cache=lane.score_cache,
                                    save_rows=lane.save_scores if lane.save_scores_path else None)
        except RayUnavailable as exc:
            raise pytest.UsageError(f"pytest-rmbench: {exc}") from None

    # -- the models ---------------------------------------------------------------------------
    @property
    def resolved(self):
        return self.primary.resolved if self.primary is not None else None

    @property
    def model_name(self) -> str:
        """The first --rm-model as reports, logs and the store may show it: no credentials from a URL."""
        return self.primary.display_name

    def lane_of(self, nodeid: str) -> str | None:
        """The model a test belongs to: with several models its node id ends in [NAME] (or -NAME])."""
        if not self._suffixes:
            return self.primary.name if self.primary is not None else None
        if nodeid.endswith("]"):
            for name in self._suffixes:
                if nodeid.endswith((f"[{name}]", f"-{name}]")):
                    return name
        return None

    def base_nodeid(self, nodeid: str) -> str:
        """The node id a one-model run gives the item: [NAME] (or -NAME) taken off."""
        name = self.lane_of(nodeid) if self._suffixes else None
        return nodeid if name is None else one_model_nodeid(nodeid, name)

    def make_room(self, lane) -> None:
        """Before `lane` loads its model: the other models this process holds are freed (one
        model per worker), unless --rm-keep-models."""
        if self.settings.keep_models:
            return
        for other in self.lanes.values():
            if other is not lane and other.free():
                other.freed += 1

    def start(self) -> None:
        """The controller resolves the suites here: a bad --rm-bench name or suite option is one
        usage error, not one per xdist worker; the scheduler needs the names to keep chunks whole."""
        if not self.is_worker:
            self.suite_names = {suite.name for suite in self.resolve_suites()}
            suite_options(self.settings)
            if self.settings.ray and self.spec is not None and not self.config.option.collectonly:
                self._start_ray()

    def resolve_suites(self) -> list:
        if self.suites is None:
            self.suites = resolve_suites(self.config, self.settings)
        return self.suites

    def is_benchmark_nodeid(self, nodeid: str) -> bool:
        head = nodeid.split("::", 1)[0]
        return head in self.suite_names or matches(head, self.settings.file_patterns)

    # -- collection -------------------------------------------------------------------------
    def collection_failed(self) -> None:
        self.state.collection_failed = True

    def deselected(self, items) -> None:
        self.state.deselected += len(items)
        if self.settings.several_models:
            self.state.deselected_by_model.update(getattr(item, "lane", None) for item in items)

    def select(self, config, items) -> None:
        """After -k/-m/--lf: --rm-rerun-regressions narrows further; without a model, items skip."""
        if self.settings.rerun_regressions:
            self._select_regressions(config, items)
        if self.settings.sample:
            self._draw_sample(config, items)
        if self.settings.several_models:
            self._group_by_model(items)
        if self.spec is None:
            skip = pytest.mark.skip(reason=SKIP_REASON)
            for item in items:
                if isinstance(item, BenchmarkTest):
                    item.add_marker(skip)

    def _group_by_model(self, items) -> None:
        """Several models: the benchmark tests of one model together (in the order the models were
        given), in the slots the benchmark tests held, so that chunks never mix models and each
        worker switches model as seldom as it can. Other tests keep their places."""
        order = {name: i for i, name in enumerate(self.lanes)}
        slots = [i for i, item in enumerate(items) if isinstance(item, (BenchmarkTest, BadItem))]
        grouped = sorted((items[i] for i in slots), key=lambda item: order.get(item.lane, len(order)))
        for i, item in zip(slots, grouped):
            items[i] = item

    def _draw_sample(self, config, items) -> None:
        """--rm-sample: keep a stratified sample of the benchmark items (sample.py); other tests stay."""
        from .collect import BenchmarkSuite
        from .sample import choose

        def subset(item) -> str:  # the report's subset key (collect.item_record)
            return f"{item.parent.name}/{item.item.subset}" if isinstance(item.parent, BenchmarkSuite) else item.item.subset

        # several models: drawn over the items (node ids without [NAME]), so every model gets the same ones
        bench = [item for item in items if isinstance(item, BenchmarkTest)]
        units = {self.base_nodeid(item.nodeid): subset(item) for item in bench}
        population = dict(Counter(units.values()))
        strata = [(nodeid, (nodeid.split("::", 1)[0], name)) for nodeid, name in units.items()]
        chosen = choose(strata, self.settings.sample, self.settings.sample_seed)
        drop = [item for item in bench if self.base_nodeid(item.nodeid) not in chosen]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = [item for item in items
                        if not isinstance(item, BenchmarkTest) or self.base_nodeid(item.nodeid) in chosen]
        self.catalog.sample = {"size": self.settings.sample, "seed": self.settings.sample_seed, "drawn": len(chosen),
                               "of": len(units), "population": population}

    def _select_regressions(self, config, items) -> None:
        """Keep only the items that regressed in the latest recorded run."""
        try:
            latest = self.open_store().find_run("latest")
        except Exception as exc:
            raise pytest.UsageError(f"--rm-rerun-regressions: cannot read the run store: {exc}") from None
        if latest is None:
            raise pytest.UsageError("--rm-rerun-regressions: the run store holds no recorded run yet")
        regressed = set(((latest.get("baseline") or {}).get("regressed")) or ())
        keep = [item for item in items if self.base_nodeid(item.nodeid) in regressed]
        drop = [item for item in items if self.base_nodeid(item.nodeid) not in regressed]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        self.state.warnings.append(
            f"--rm-rerun-regressions: running the {len(keep)} item(s) that regressed in run {latest['run'].get('id')}"
        )

    def plan(self, session) -> None:
        """Chunks over the selected items, the same in every process; the controller's progress line."""
        self.state.positions = {item.nodeid: i for i, item in enumerate(session.items)}
        keys = [item.nodeid for item in session.items if isinstance(item, (BenchmarkTest, BadItem))]
        pairs = {item.nodeid: item.item for item in session.items if isinstance(item, BenchmarkTest)}
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1) if self.is_worker else 1
        workers = self.ray_pool.count if self.ray_pool is not None else workers
        chunks = plan_chunks(keys, chunk_size_for(self.settings.chunk_size, len(keys), workers),
                             self.lane_of if self.settings.several_models else None)
        keyed = [[(key, pairs[key]) for key in chunk if key in pairs] for chunk in chunks]
        if self.ray_pool is not None:
            self.ray_pool.plan([chunk for chunk in keyed if chunk])
        else:  # each model's scorer gets its own chunks (a chunk never mixes models)
            by_lane: dict = {}
            for chunk in keyed:
                if chunk:
                    by_lane.setdefault(self.lane_of(chunk[0][0]), []).append(chunk)
            for name, lane in self.lanes.items():
                lane.scorer.plan(by_lane.get(name, []))
        if self.is_worker:
            self.config.workeroutput["rmbench_catalog"] = self.catalog.to_dict()
        elif self.spec is not None:
            self.progress = Progress(self.config, total=len(keys))
            for lane in self.lanes.values():
                lane.scorer.on_progress = self.progress.in_chunk
            if self.ray_pool is not None:
                self.ray_pool.progress, self.progress.detail = self.progress, self.ray_pool.progress_detail
            from .finish import GateConfigError, gate_config

            try:
                gate_config(self.settings, self.catalog)
            except GateConfigError as exc:
                raise pytest.UsageError(f"pytest-rmbench: {exc}") from None

    # -- the first model (the reward_model fixture's), the cache file, the store: opened on first use
    def get_model(self):
        return self.primary.get_model()

    def open_cache(self):
        """The score cache file every model of the run shares; None when caching is off."""
        if self._cache is False:
            self._cache = None
            if not self.settings.no_cache:
                from .storage.cache import ScoreCache

                folder = self.settings.cache_dir or os.path.join(str(self.config.rootpath), ".rmbench")
                try:
                    self._cache = ScoreCache(os.path.join(folder, "scores.sqlite"))
                except Exception as exc:  # the cache saves time; without it the run still scores everything
                    self.state.warnings.append(f"the score cache is off for this run: {one_line(exc)}")
        return self._cache

    def open_store(self):
        if self._store is None:
            from .storage.store import open_store

            self._store = open_store(history.store_target(self.settings.store, str(self.config.rootpath)))
        return self._store

    # -- running ----------------------------------------------------------------------------
    def outcome_for(self, item: BenchmarkTest) -> ItemOutcome:
        """Never raises: whatever goes wrong costs this item (or its chunk), not the run."""
        try:
            return (self.ray_pool or self.lanes[item.lane].scorer).outcome(item.nodeid, item.item)
        except ModelLoadError:
            return error_outcome(NOT_LOADED)  # the load error itself is printed once, in the summary
        except Exception as exc:
            return error_outcome(f"scoring failed: {one_line(exc)}")
        finally:
            if self.progress is not None:
                self.progress.chunk_finished()

    def record(self, item) -> dict:
        record = item_record(item, self.state.positions.get(item.nodeid, 0))
        if self.settings.several_models:
            record["model"] = item.lane
        return record

    def reported(self, report) -> None:
        """An item's report reached this process (the controller, under xdist): keep its record."""
        record = getattr(report, "rmbench", None)
        if record is not None and report.when == "call":
            record["start"], record["stop"] = getattr(report, "start", None), getattr(report, "stop", None)
            self.state.records[report.nodeid] = record  # one per node id, even if a worker died mid-chunk
            if self.progress is not None:
                self.progress.item_done()
            if record["outcome"] == INCORRECT and report.longrepr is not None:
                self.state.explanations[report.nodeid] = str(report.longrepr)  # scores and answers, for -v / -r i
        elif report.failed:
            self.state.other_failures += 1

    def workers_collected(self, ids) -> None:
        """The controller of an xdist run: progress from the items' reports as they arrive."""
        if self.spec is not None and self.progress is None:
            self.progress = Progress(self.config, total=sum(map(self.is_benchmark_nodeid, ids)))

    def worker_down(self, node) -> None:
        output = getattr(node, "workeroutput", None) or {}
        catalog = output.get("rmbench_catalog")
        if catalog and not self.catalog.items:
            self.catalog = Catalog.from_dict(catalog)
        self.state.workers.extend(output.get("rmbench_workers") or ())

    def worker_figures(self) -> list[dict]:
        """This process's scoring figures, one per model it scored, for the report's "workers"."""
        from .finish import worker_figures

        return worker_figures(self)

    # -- the end ----------------------------------------------------------------------------
    def finish(self, session, exitstatus) -> None:
        for lane in self.lanes.values():
            lane.close_files()
        if self.is_worker:
            if self.spec is not None:
                self.config.workeroutput["rmbench_workers"] = self.worker_figures()
            return
        if self.spec is None or not self.state.records:
            return
        from .finish import finish_run

        try:
            finish_run(self, session, exitstatus)
        except Exception as exc:  # the reports, the store and the exit status must never become INTERNALERROR
            self.state.report_error = f"pytest-rmbench: the run's report could not be built: {one_line(exc)}"
            if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def summary(self, terminalreporter, config) -> None:
        from .report import terminal

        tr, state = terminalreporter, self.state
        for message in (state.usage_error, state.report_error):
            if message:
                tr.write_line(message, red=True)
        if state.report is not None:
            terminal.write_summary(
                tr, state.report, list(state.records.values()), state.warnings, notes=state.notes,
                explanations=state.explanations, verbose=config.option.verbose, maxfail=config.option.maxfail,
                explain="i" in (config.option.reportchars or ""),
                report_path=None if state.report_error else self.settings.report,
            )

    def close(self) -> None:
        """Whatever the run opened, it closes: the model (an HTTP pool), the score cache, the store."""
        opened = [*self.lanes.values(), self._cache or None, self._store, self.ray_pool]
        for close in [thing.close for thing in opened if thing is not None]:
            try:
                close()
            except Exception:  # closing must not turn a finished run into an error
                pass

