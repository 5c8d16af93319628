"""pytest hooks of pytest-rmbench: options, collection, outcomes on reports, summary, exit status.

Thin on purpose: each hook hands plain data to the modules that do the work
(parse/collect -> engine -> report -> gate). Nothing heavy is imported here: torch and
transformers load only when a transformers model is built.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import sys
import time
from types import SimpleNamespace

import pytest

from . import __version__, hookspecs
from .report import terminal
from .storage import history
from .report import baseline as baseline_mod
from .collect import OUTCOME_KEY, PLUGIN_KEY, BadItem, BenchmarkFile, BenchmarkSuite, BenchmarkTest, matches
from .engine import BatchLimits, ChunkedScorer, SaveError, chunk_size_for, error_outcome, one_line, plan_chunks
from .report.gate import INCONCLUSIVE, RULES, GateConfig, GateConfigError, evaluate, merge_sections, merge_thresholds, validate
from .items import ERROR, INCORRECT, ItemOutcome
from .models.base import ModelLoadError
from .models.kinds import pairwise_hint
from .options import add_options, check_settings, float_setting, int_setting, model_spec, setting
from .report.progress import Progress
from .items.files import ItemProblem, ParsedFile, Section, parse_assignments, parse_section_assignment, parse_threshold_value
from .storage.outputs import OutputError, append_text, check_output_file, check_output_folder, write_text
from .report.aggregate import aggregate, write_json
from .report.terminal import NOT_LOADED

SKIP_REASON = "no reward model: run with --rm-model=PATH (or --rm-model=builtin:length) to score benchmark items"


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser):
    add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "rm_subset(name): the benchmark subset of a pytest-rmbench item")
    config.addinivalue_line("markers", "rm_strict: a pytest-rmbench item that must pass for the gate to pass")
    plugin = RmbenchPlugin(config)
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "rmbench-session")
    if plugin.spec is not None and not plugin.is_worker and config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistHooks

        plugin.xdist = XdistHooks(config, plugin.is_benchmark_nodeid, plugin.chunk_size, plugin.gpus_per_worker)
        config.pluginmanager.register(plugin.xdist, "rmbench-xdist")
    from . import suites
    from .models import kinds

    for module, name in ((kinds, "rmbench-kinds"), (suites, "rmbench-suites")):
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, name)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` with a GPU model: one worker per GPU (or per --rm-gpus-per-worker GPUs)."""
    model = setting(config, "rm_model")
    if not model or model.startswith("builtin:"):
        return None
    from .xdist import auto_workers

    return auto_workers(int_setting(config, "rm_gpus_per_worker"))


@pytest.fixture(scope="session")
def reward_model(pytestconfig):
    """The session's reward model: `score(prompt, answer)` and `prefers(prompt, chosen, rejected)`."""
    from .api import RewardModel

    plugin = pytestconfig.stash[PLUGIN_KEY]
    if plugin.spec is None:
        pytest.skip(SKIP_REASON)
    try:
        return RewardModel(plugin.get_model(), plugin.batch_limits())
    except ModelLoadError as exc:
        pytest.fail(f"the reward model could not be loaded: {exc}", pytrace=False)


TEXT_LIMIT = 20_000  # characters of one prompt or answer kept in the report (the HTML page shows them)


def _clip(text) -> str:
    text = str(text)
    return text if len(text) <= TEXT_LIMIT else f"{text[:TEXT_LIMIT]}[... {len(text) - TEXT_LIMIT:,} more characters]"


def _prompt(prompt):
    return _clip(prompt) if isinstance(prompt, str) else [{"role": r, "content": _clip(c)} for r, c in prompt]


def item_texts(entry) -> dict:
    """The item's prompt and answers, for the report's readers (the HTML page expands them)."""
    kind = entry.kind
    if kind == "judged":
        better_a = entry.label == "A>B"
        chosen, rejected = (entry.response_a, entry.response_b) if better_a else (entry.response_b, entry.response_a)
        return {"prompt": _prompt(entry.question), "chosen": _clip(chosen), "rejected": _clip(rejected)}
    if kind == "steps":
        return {"prompt": _clip(entry.problem),
                "answers": [{"label": f"step {k + 1}", "text": _clip(s)} for k, s in enumerate(entry.steps)]}
    if kind == "consistency":
        return {"prompt": _prompt(entry.prompt), "answers": [
            {"label": "contrast prompt", "text": _clip(entry.contrast_prompt if isinstance(entry.contrast_prompt, str)
                                                       else _prompt(entry.contrast_prompt))},
            {"label": "answer", "text": _clip(entry.answer)}]}
    chosen, rejected = entry.chosen, entry.rejected
    if isinstance(chosen, (list, tuple)):
        return {"prompt": _prompt(entry.prompt), "chosen": [_clip(c) for c in chosen], "rejected": [_clip(r) for r in rejected]}
    return {"prompt": _prompt(entry.prompt), "chosen": _clip(chosen), "rejected": _clip(rejected)}


def suite_versions(records) -> dict:
    """Per benchmark file: how many of its items ran, and a version that changes with any item's text."""
    by_file: dict[str, list[str]] = {}
    for r in records:
        by_file.setdefault(r["file"], []).append(r.get("content_hash") or "")
    return {
        name: {"items": len(hashes), "version": hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]}
        for name, hashes in sorted(by_file.items())
    }


def peak_memory_bytes() -> int | None:
    """Peak memory of this process: the GPU's if a CUDA model ran, else resident memory."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated())
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RmbenchPlugin:
    """Per-session state: the model (loaded lazily), the chunk scorer, collected names, results."""

    def __init__(self, config):
        self.config = config
        check_settings(config)
        self.spec = model_spec(config)
        self.max_sequences = int_setting(config, "rm_batch_size")
        self.max_tokens = int_setting(config, "rm_max_batch_tokens")
        self.min_fill = float_setting(config, "rm_min_batch_fill", 0.0, 1.0)
        self.chunk_size = int_setting(config, "rm_chunk_size")
        self.patterns = config.getini("rm_file_patterns")
        self.gpus_per_worker = int_setting(config, "rm_gpus_per_worker")
        self.xdist = None
        self.suite_names: set[str] = set()
        self._suite_list: list | None = None
        self.workers: list[dict] = []
        self._model = None
        self.model_error: str | None = None  # why the model could not be loaded: tried once per process
        self.load_seconds: float | None = None
        self.scorer = ChunkedScorer(self.get_model, self.batch_limits(), self.score_cache, self._pairwise_hint(),
                                    step_threshold=float_setting(config, "rm_step_threshold", 0.0, 1.0))
        self._cache: tuple | None | bool = False  # False: not opened yet
        self._score_writer = None
        self.save_scores_path = setting(config, "rm_save_scores") or None
        self.warnings: list[str] = []
        self.is_worker = hasattr(config, "workerinput")
        if self.spec is not None and not self.is_worker:
            self._check_outputs()  # before the score file is emptied and before any scoring
        if self.save_scores_path and self.spec is not None:
            from .storage.scorefile import start_score_file

            self.save_scores_path = os.path.abspath(self.save_scores_path)
            if not self.is_worker:  # emptied once, before any xdist worker starts
                start_score_file(self.save_scores_path)
            self.scorer.on_scores.append(self.save_scores)
        self.files: dict[str, ParsedFile] = {}
        self.catalog = {"files": {}, "items": [], "suites": {}}  # every collected item, selected or not
        self.positions: dict[str, int] = {}
        self.records: dict[str, dict] = {}
        self.other_failures = 0
        self.collection_failed = False
        self.started = time.time()
        self.report: dict | None = None
        self.usage_error: str | None = None
        self.report_error: str | None = None
        self.notes: list[str] = []  # facts for the summary that are not warnings
        self.explanations: dict[str, str] = {}  # node id -> why an INCORRECT item failed
        self.progress: Progress | None = None  # in the process that owns the terminal
        self.deselected = 0
        self._store = None

    def _check_outputs(self) -> None:
        """Every file the run will write must be writable now: a usage error (exit 4) beats a lost run."""
        config = self.config
        files = [("--rm-save-scores", self.save_scores_path, None), ("--rm-report", setting(config, "rm_report"), None),
                 ("--rm-html", setting(config, "rm_html"), None), ("--rm-markdown", setting(config, "rm_markdown"), None)]
        store = setting(config, "rm_store")
        if store and "://" not in store and not setting(config, "rm_no_store"):
            files.append(("--rm-store", history.store_target(store, str(config.rootpath)), store))
        try:
            for option, path, shown in files:
                if path:
                    check_output_file(option, path, shown)
            if not setting(config, "rm_no_cache") and setting(config, "rm_cache_dir"):
                check_output_folder("--rm-cache-dir", setting(config, "rm_cache_dir"))
        except OutputError as exc:
            raise pytest.UsageError(f"pytest-rmbench: {exc}") from None

    # -- collection ---------------------------------------------------------------------
    def pytest_collect_file(self, file_path, parent):
        if matches(file_path, self.patterns):
            return BenchmarkFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        """The session's collectors, plus one per --rm-bench / --rm-dataset suite."""
        report = yield
        if isinstance(collector, pytest.Session) and report.passed:
            report.result.extend(self._suite_collectors(collector))
        return report

    def _suite_collectors(self, session) -> list:
        from .suites import DataSource

        options = self._suite_options()
        collectors = []
        for suite in self._suites():
            source = DataSource(suite=suite.name, data_dir=setting(self.config, "rm_data_dir") or None,
                                revision=setting(self.config, "rm_revision") or None, options=options)
            collectors.append(BenchmarkSuite.from_parent(session, name=suite.name, nodeid=suite.name, suite=suite, source=source))
        return collectors

    def _suite_options(self) -> dict:
        try:
            options = dict(parse_assignments(setting(self.config, "rm_suite_options") or [], "--rm-suite-option"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        options.update({
            "languages": [c.strip() for c in (setting(self.config, "rm_languages") or "").split(",") if c.strip()],
            "prior_sets": bool(setting(self.config, "rm_prior_sets")),
        })
        return options

    def _suites(self) -> list:
        """The run's suites, resolved once (start-up checks, collection and scoring share them)."""
        if self._suite_list is None:
            self._suite_list = self._resolve_suites()
        return self._suite_list

    def _resolve_suites(self) -> list:
        names = list(dict.fromkeys(setting(self.config, "rm_bench") or []))
        found = []
        for name in names:
            suite = self.config.hook.pytest_rmbench_make_suite(config=self.config, name=name)
            if suite is None:
                from .suites import SUITES

                raise pytest.UsageError(
                    f"--rm-bench {name!r}: unknown suite; available: {', '.join(SUITES.names())} (or a suite a plugin adds)"
                )
            found.append(suite)
        datasets = list(dict.fromkeys(setting(self.config, "rm_dataset") or []))
        if datasets:
            from .suites.dataset import DatasetSuite, parse_columns

            try:
                columns = parse_columns(setting(self.config, "rm_columns") or "")
            except ValueError as exc:
                raise pytest.UsageError(f"--rm-columns: {exc}") from None
            for target in datasets:
                found.append(DatasetSuite.for_target(target, columns, split=setting(self.config, "rm_dataset_split") or None,
                                                     config=setting(self.config, "rm_dataset_config") or None))
        elif setting(self.config, "rm_columns"):
            raise pytest.UsageError("--rm-columns maps the columns of --rm-dataset: give --rm-dataset NAME_OR_PATH too")
        taken = [s.name for s in found]
        duplicates = sorted({n for n in taken if taken.count(n) > 1})
        if duplicates:
            raise pytest.UsageError(f"two suites are named {', '.join(duplicates)}: node ids would clash")
        return found

    def note_suite(self, suite, source, entries) -> None:
        name = suite.name
        subsets = {e.subset for e in entries if not isinstance(e, ItemProblem)}
        sections = suite.sections(subsets) or {}
        self.catalog["files"][name] = {
            "name": name,
            "strict": False,
            "sections": {f"{name}/{n}": {f"{name}/{k}": w for k, w in s.weights.items()} for n, s in sections.items()},
            "gate": {},
        }
        self.catalog["suites"][name] = {
            "headline": suite.headline,
            "items": len(entries),
            "datasets": source.used,
            "not_run": source.not_run,
        }
        for entry in entries:
            subset = getattr(entry, "subset", None)
            self.catalog["items"].append(f"{name}/{subset}" if subset is not None else None)

    @property
    def model_name(self) -> str:
        """--rm-model as reports, logs and the store may show it: no credentials from a URL."""
        if "://" not in self.spec.model:
            return self.spec.model
        from .models.http import strip_credentials

        return strip_credentials(self.spec.model)

    def _pairwise_hint(self) -> bool | None:
        if self.spec is None:
            return False
        try:
            return pairwise_hint(self.spec)
        except ModelLoadError:
            return False  # the same error comes again, once, when the model is built

    def batch_limits(self) -> BatchLimits:
        return BatchLimits(self.max_sequences, self.max_tokens, self.min_fill)

    def is_benchmark_nodeid(self, nodeid: str) -> bool:
        head = nodeid.split("::", 1)[0]
        return head in self.suite_names or matches(head, self.patterns)

    def note_file(self, parsed: ParsedFile) -> None:
        self.catalog["files"][parsed.path] = {
            "name": parsed.name,
            "strict": parsed.strict,
            "sections": {n: s.weights for n, s in parsed.sections.items()},
            "gate": parsed.gate,
        }
        for entry in parsed.entries:
            self.catalog["items"].append(getattr(entry, "subset", None))

    def pytest_sessionstart(self, session):
        if not self.is_worker:
            # a bad --rm-bench name or suite option is a usage error here, not once per xdist worker;
            # the xdist scheduler needs the names to keep suite items in whole chunks
            self.suite_names = {suite.name for suite in self._suites()}
            self._suite_options()

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_failed = True

    @pytest.hookimpl(trylast=True)  # after -k/-m/--lf have made their selection
    def pytest_collection_modifyitems(self, config, items):
        if config.option.rm_rerun_regressions:
            self._select_regressions(config, items)
        if self.spec is None:
            skip = pytest.mark.skip(reason=SKIP_REASON)
            for item in items:
                if isinstance(item, BenchmarkTest):
                    item.add_marker(skip)

    def _select_regressions(self, config, items) -> None:
        """Keep only the items that regressed in the latest recorded run."""
        try:
            latest = self.open_store().find_run("latest")
        except Exception as exc:
            raise pytest.UsageError(f"--rm-rerun-regressions: cannot read the run store: {exc}") from None
        if latest is None:
            raise pytest.UsageError("--rm-rerun-regressions: the run store holds no recorded run yet")
        regressed = set(((latest.get("baseline") or {}).get("regressed")) or ())
        keep = [item for item in items if item.nodeid in regressed]
        drop = [item for item in items if item.nodeid not in regressed]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        self.warnings.append(
            f"--rm-rerun-regressions: running the {len(keep)} item(s) that regressed in run {latest['run'].get('id')}"
        )

    def pytest_collection_finish(self, session):
        self.positions = {item.nodeid: i for i, item in enumerate(session.items)}
        keys = [item.nodeid for item in session.items if isinstance(item, (BenchmarkTest, BadItem))]
        pairs = {item.nodeid: item.item for item in session.items if isinstance(item, BenchmarkTest)}
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1) if self.is_worker else 1
        chunks = plan_chunks(keys, chunk_size_for(self.chunk_size, len(keys), workers))
        self.scorer.plan([[(key, pairs[key]) for key in chunk if key in pairs] for chunk in chunks])
        if self.is_worker:
            self.config.workeroutput["rmbench_catalog"] = self.catalog
        elif self.spec is not None:
            self.progress = Progress(self.config, total=len(keys))
            self.scorer.on_progress = self.progress.in_chunk
            try:
                self.gate_config()
            except GateConfigError as exc:
                raise pytest.UsageError(f"pytest-rmbench: {exc}") from None

    def gate_config(self) -> GateConfig:
        files = self.catalog["files"]
        try:
            cli_sections = {n: parse_section_assignment(n, v) for n, v in parse_assignments(self.config.option.rm_sections, "--rm-section")}
            ini_sections = {n: parse_section_assignment(n, v) for n, v in parse_assignments(self.config.getini("rm_sections"), "rm_sections")}
            cli = {n: parse_threshold_value(n, v) for n, v in parse_assignments(self.config.option.rm_min_accuracy, "--rm-min-accuracy")}
            ini = {n: parse_threshold_value(n, v) for n, v in parse_assignments(self.config.getini("rm_min_accuracy"), "rm_min_accuracy")}
        except ValueError as exc:
            raise GateConfigError(str(exc)) from None
        file_sections = [(path, {n: Section(n, w) for n, w in f["sections"].items()}) for path, f in files.items()]
        config = GateConfig(
            thresholds=merge_thresholds([(p, f["gate"]) for p, f in files.items()] + [("ini", ini), ("command line", cli)]),
            sections=merge_sections(file_sections + [("ini", ini_sections), ("command line", cli_sections)]),
            rule=setting(self.config, "rm_gate_rule") or "point",
            inconclusive=setting(self.config, "rm_inconclusive") or "pass",
        )
        if config.rule not in RULES or config.inconclusive not in INCONCLUSIVE:
            raise GateConfigError(f"rm_gate_rule must be one of {RULES} and rm_inconclusive one of {INCONCLUSIVE}")
        validate(config, {s for s in self.catalog["items"] if s is not None}, set(self.catalog.get("suites") or ()))
        return config

    def _suite_scores(self) -> tuple[dict, dict]:
        """Each suite's official scores from its items' results, and the datasets it read."""
        from .suites import SuiteResult

        scores, datasets = {}, {}
        for name, info in (self.catalog.get("suites") or {}).items():
            datasets[name] = {"headline": info["headline"], "datasets": info["datasets"], "not_run": info["not_run"],
                              "items": info["items"]}
            results = [
                SuiteResult(r["id"], r["suite_subset"], r["outcome"], r.get("credit"), r.get("details") or {}, r.get("group") or "")
                for r in self.records.values() if r["file"] == name and r.get("suite_subset") is not None
            ]
            if not results:
                continue
            suite = next((s for s in self._suites() if s.name == name), None)
            try:
                scores[name] = suite.score(results) if suite is not None else None
            except Exception as exc:  # a scorer's bug must not lose the run's item results
                self.warnings.append(f"{name}: the official score could not be computed: {type(exc).__name__}: {exc}")
                scores[name] = None
        return scores, datasets


    # -- running ------------------------------------------------------------------------
    def get_model(self):
        if self._model is None:
            if self.model_error is not None:
                raise ModelLoadError(self.model_error)
            started = time.perf_counter()
            # builtin models load instantly; xdist workers have no terminal
            announce = self.progress if self.progress is not None and not self.spec.model.startswith("builtin:") else None
            if announce:
                announce.loading(self.model_name)
            try:
                model = self.config.hook.pytest_rmbench_make_model(config=self.config, spec=self.spec)
                if model is None:
                    raise ModelLoadError(f"no installed plugin builds a model of kind {self.spec.kind!r} for {self.model_name!r}")
            except Exception as exc:
                self.model_error = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
                if announce:
                    announce.loaded(self.model_name, None)
                raise ModelLoadError(self.model_error) from exc
            self.load_seconds = time.perf_counter() - started
            if announce:
                announce.loaded(self.model_name, self.load_seconds, model)
            self._model = model
            cache = self.score_cache()
            if cache:  # so that a later, fully cached run can say what its scores came from
                try:
                    cache[0].put_model_info(cache[1], self._model_info(model))
                except Exception as exc:
                    self.warnings.append(f"the score cache could not record the model: {one_line(exc)}")
        return self._model

    @staticmethod
    def _model_info(model) -> dict:
        return {"kind": getattr(model, "kind", None), "dtype": getattr(model, "dtype", None),
                "device": getattr(model, "device", None),
                "versions": {str(k): str(v) for k, v in (getattr(model, "versions", None) or {}).items()}}

    def score_cache(self):
        """(cache, model fingerprint), opened on first use; None when caching is off for this model."""
        if self._cache is False:
            self._cache = None
            if not setting(self.config, "rm_no_cache"):
                try:
                    fingerprint = self.config.hook.pytest_rmbench_model_fingerprint(config=self.config, spec=self.spec)
                except ModelLoadError as exc:  # e.g. a kind that cannot be told: it is the model's load error
                    self.model_error = str(exc)
                    raise
                if fingerprint:
                    from .storage.cache import ScoreCache

                    folder = setting(self.config, "rm_cache_dir") or os.path.join(str(self.config.rootpath), ".rmbench")
                    try:
                        self._cache = (ScoreCache(os.path.join(folder, "scores.sqlite")), fingerprint)
                    except Exception as exc:  # the cache saves time; without it the run still scores everything
                        self.warnings.append(f"the score cache is off for this run: {one_line(exc)}")
        return self._cache

    def save_scores(self, rows) -> None:
        """--rm-save-scores: every process appends its scores to the one file."""
        from .storage.scorefile import ScoreWriter

        if self._score_writer is None:
            self._score_writer = ScoreWriter(self.save_scores_path)
        try:
            self._score_writer.write(rows)
        except Exception as exc:
            raise SaveError(f"could not write --rm-save-scores={self.save_scores_path}: {one_line(exc)}") from exc

    def outcome_for(self, item: BenchmarkTest) -> ItemOutcome:
        """Never raises: whatever goes wrong costs this item (or its chunk), not the run."""
        try:
            return self.scorer.outcome(item.nodeid, item.item)
        except ModelLoadError:
            return error_outcome(NOT_LOADED)  # the load error itself is printed once, in the summary
        except Exception as exc:
            return error_outcome(f"scoring failed: {one_line(exc)}")
        finally:
            if self.progress is not None:
                self.progress.chunk_finished()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.when == "call" and isinstance(item, (BenchmarkTest, BadItem)):
            report.rmbench = self._record(item)
        return report

    def _record(self, item) -> dict:
        """What the controller learns about one item: plain data, carried on the test report."""
        suite = isinstance(item.parent, BenchmarkSuite)
        if isinstance(item, BadItem):
            p = item.problem
            outcome, entry = ItemOutcome(ERROR, error=p.describe()), None
            subset, item_id = p.subset or "(invalid)", p.id
        else:
            outcome = item.stash.get(OUTCOME_KEY, None) or ItemOutcome(ERROR, error="the item did not run")
            entry = item.item
            subset, item_id = entry.subset, entry.id
        chosen_longer = entry.chosen_longer() if entry is not None else None
        return {
            "index": self.positions.get(item.nodeid, 0),
            "nodeid": item.nodeid,
            "file": item.nodeid.split("::", 1)[0],
            "id": item_id,
            # suites share subset names (Safety, Math, ...): the report keeps them apart
            "subset": f"{item.parent.name}/{subset}" if suite else subset,
            "suite_subset": subset if suite else None,
            "kind": entry.kind if entry is not None else None,
            "group": (entry.group or None) if entry is not None else None,
            "outcome": outcome.outcome,
            "credit": outcome.credit,
            "chosen_score": outcome.chosen_score,
            "rejected_score": outcome.rejected_score,
            "margin": outcome.margin,
            "truncated": outcome.truncated,
            "strict": bool(entry and entry.strict),
            "length_correct": entry.length_prefers_chosen() if chosen_longer is not None else None,
            "chosen_longer": chosen_longer,
            "verdicts": outcome.details.get("verdicts"),
            "details": outcome.details or None,
            "texts": item_texts(entry) if entry else None,
            "content_hash": entry.content_hash() if entry else None,
            "prompt_hash": entry.prompt_hash() if entry else None,
            "error": outcome.error,
        }

    def pytest_report_teststatus(self, report, config):
        if report.outcome == "rerun":  # a benchmark item whose xdist worker died: it runs again
            return "rerun", "R", ("RERUN", {"yellow": True})
        record = getattr(report, "rmbench", None)
        if record is None or report.when != "call":
            return None
        if record["outcome"] == "incorrect":
            return "incorrect", "i", ("INCORRECT", {"yellow": True})
        if record["outcome"] == ERROR and record["error"] == NOT_LOADED:
            # one load error, said once at the top of the summary, not once per item
            return "unscored", "E", ("UNSCORED", {"red": True})
        if record["outcome"] == ERROR:
            return "error", "E", ("ERROR", {"red": True})
        return None

    def pytest_runtest_logreport(self, report):
        record = getattr(report, "rmbench", None)
        if record is not None and report.when == "call":
            record["start"], record["stop"] = getattr(report, "start", None), getattr(report, "stop", None)
            self.records[report.nodeid] = record  # one per node id, even if a worker died mid-chunk
            if self.progress is not None:
                self.progress.item_done()
            if record["outcome"] == INCORRECT and report.longrepr is not None:
                self.explanations[report.nodeid] = str(report.longrepr)  # scores and answers, for -v / -r i
        elif report.failed:
            self.other_failures += 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """The controller of an xdist run: progress from the items' reports as they arrive."""
        if self.spec is not None and self.progress is None:
            self.progress = Progress(self.config, total=sum(map(self.is_benchmark_nodeid, ids)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        output = getattr(node, "workeroutput", None) or {}
        catalog = output.get("rmbench_catalog")
        if catalog and not self.catalog["items"]:
            self.catalog = catalog
            self.catalog.setdefault("suites", {})
        if output.get("rmbench_worker"):
            self.workers.append(output["rmbench_worker"])

    # -- the end: aggregate, gate, report, exit status --------------------------------------
    def worker_figures(self) -> dict:
        stats = self.scorer.stats
        model = self._model
        info = {} if model is None else self._model_info(model)
        if model is None and stats.cached:  # every score came from the cache: say what made them
            cache = self.score_cache()
            try:
                info = dict(cache[0].model_info(cache[1]) or {}, from_cache=True) if cache else {}
            except Exception:
                info = {}
        return {
            "worker": getattr(self.config, "workerinput", {}).get("workerid", "main"),
            "items": stats.pairs,
            "sequences": stats.sequences,
            "batches": stats.batches,
            "tokens": stats.tokens,
            "padded_tokens": stats.padded_tokens,
            "oom_halvings": stats.oom_halvings,
            "cached": stats.cached,
            "seconds": stats.seconds,
            "load_seconds": self.load_seconds,
            "load_error": self.model_error,
            "peak_memory_bytes": peak_memory_bytes(),
            "device": info.get("device"),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "versions": info.get("versions") or {},
            "kind": info.get("kind"),
            "dtype": info.get("dtype"),
            "from_cache": bool(info.get("from_cache")),
            "warnings": list(self.warnings) if self.is_worker else [],
        }

    def pytest_deselected(self, items):
        self.deselected += len(items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self._score_writer is not None:
            self._score_writer.close()
        if self.is_worker:
            if self.spec is not None:
                self.config.workeroutput["rmbench_worker"] = self.worker_figures()
            return
        if self.spec is None or not self.records:
            return
        try:
            self._finish(session, exitstatus)
        except Exception as exc:  # the reports, the store and the exit status must never become INTERNALERROR
            self.report_error = f"pytest-rmbench: the run's report could not be built: {one_line(exc)}"
            if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finish(self, session, exitstatus) -> None:
        if not self.config.pluginmanager.hasplugin("dsession"):  # not distributed: this process scored
            self.workers = [self.worker_figures()]
        for worker in self.workers:
            self.warnings.extend(w for w in worker.get("warnings") or () if w not in self.warnings)
        try:
            gate_config = self.gate_config()
        except GateConfigError as exc:  # under xdist the names are known only now
            self.usage_error = f"pytest-rmbench: {exc}"
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        summary = aggregate(list(self.records.values()), gate_config.sections)
        summary["scores"], summary["datasets"] = self._suite_scores()
        suites = self.catalog.get("suites") or {}
        summary["headlines"] = {n: (sc or {}).get(suites[n]["headline"]) for n, sc in summary["scores"].items()}
        summary["selection"] = self._selection(exitstatus)
        comparison, baseline_checks = self._compare_with_baseline(summary["items"], gate_config.inconclusive)
        gate = evaluate(gate_config, summary, baseline_checks)
        summary.pop("headlines")
        self.report = self._build_report(summary, gate)
        self.report["baseline"] = comparison
        self._record_run()
        self._junit_properties()
        self._write_files()
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return  # interrupted, internal or usage errors keep pytest's own code
        ok = gate["passed"] and not self.other_failures and not self.collection_failed and not self.report_error
        session.exitstatus = pytest.ExitCode.OK if ok else pytest.ExitCode.TESTS_FAILED

    def _selection(self, exitstatus) -> dict:
        """Which files ran, and whether every collected item of them did: a partial run
        (-k, -m, --lf, --rm-rerun-regressions, a crash) is never the `latest` baseline of a full one."""
        option = self.config.option
        why = []
        if self.deselected:
            why.append(f"{self.deselected} item(s) deselected (-k, -m, --lf, ...)")
        if getattr(option, "lf", False):
            why.append("--lf")
        if option.rm_rerun_regressions:
            why.append("--rm-rerun-regressions")
        if self.collection_failed:
            why.append("collection errors")
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            why.append(f"the session ended early ({pytest.ExitCode(exitstatus).name.lower()})")
        missing = len(self.catalog["items"]) - len(self.records)
        if missing > 0 and not self.deselected:
            why.append(f"{missing} collected item(s) did not run")
        return {"files": sorted({r["file"] for r in self.records.values()}), "partial": bool(why), "why": why}

    def open_store(self):
        if self._store is None:
            from .storage.store import open_store

            self._store = open_store(history.store_target(setting(self.config, "rm_store"), str(self.config.rootpath)))
        return self._store

    def _compare_with_baseline(self, items: list[dict], inconclusive: str) -> tuple[dict | None, list[dict]]:
        """(the comparison, its gate checks). A baseline the user named that cannot be used fails
        the gate: a typo must not switch the regression gate off. Only `latest` with no earlier
        complete run passes, with a line saying so."""
        ref = setting(self.config, "rm_baseline")
        if not ref:
            return None, []
        files = sorted({i["file"] for i in items})
        try:
            baseline, label = history.load_baseline(ref, self.open_store, items, files)
        except history.BaselineError as exc:
            return None, [baseline_mod.unusable_check(str(exc))]
        except Exception as exc:  # e.g. an unreadable store
            return None, [baseline_mod.unusable_check(f"--rm-baseline={ref}: the run store cannot be read: {one_line(exc)}")]
        if baseline is None:  # latest, and no earlier complete run of these files
            self.notes.append(f"baseline: {label}")
            return None, []
        margin = float(setting(self.config, "rm_max_regression") or 0.01)
        comparison = baseline_mod.compare(items, baseline["items"], margin, seed=self.spec.seed)
        comparison = {"run": baseline.get("run", {}).get("id", label), "label": label, **comparison}
        if not comparison["shared"] and not comparison["edited"] and ref != "latest":
            return comparison, [baseline_mod.unusable_check(f"--rm-baseline={ref}: {label} has no item of this run")]
        if not comparison["shared"]:
            return comparison, [baseline_mod.inconclusive_check(
                f"{label} shares no unedited item with this run ({comparison['edited']} edited)", inconclusive)]
        return comparison, baseline_mod.checks(comparison, inconclusive)

    def _record_run(self) -> None:
        if setting(self.config, "rm_no_store"):
            return
        try:
            fingerprint = self.config.hook.pytest_rmbench_model_fingerprint(config=self.config, spec=self.spec)
            # the texts are in the files the items came from: the store keeps the results
            stored = dict(self.report, items=[{k: v for k, v in i.items() if k != "texts"} for i in self.report["items"]])
            run_id = self.open_store().record_run(
                stored, fingerprint=fingerprint or self.model_name, git_commit=history.git_commit(str(self.config.rootpath))
            )
            self.report["run"]["id"] = run_id
        except Exception as exc:  # the history is a convenience: never lose the run over it
            self.warnings.append(f"the run could not be recorded in the run store: {type(exc).__name__}: {exc}")

    def _junit_properties(self) -> None:
        """Run-level figures as <testsuite> properties (pytest's junitxml writes after this hook)."""
        try:
            from _pytest.junitxml import xml_key  # no public accessor; guarded in case it moves
        except ImportError:
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        report = self.report
        xml.add_global_property("rm_model", report["run"]["model"])
        xml.add_global_property("rm_gate_passed", report["gate"]["passed"])
        xml.add_global_property("rm_accuracy_overall", report["overall"]["accuracy"])
        if report["run"].get("load_error"):
            xml.add_global_property("rm_load_error", report["run"]["load_error"])
        for kind, blocks in (("subset", report["subsets"]), ("section", report["sections"])):
            for name, block in blocks.items():
                xml.add_global_property(f"rm_accuracy_{kind}_{name}", block["accuracy"])

    def _write_files(self) -> None:
        outputs = [(setting(self.config, "rm_report"), write_json)]
        markdown = setting(self.config, "rm_markdown") or os.environ.get("GITHUB_STEP_SUMMARY")
        if markdown:
            from .report.markdown import render_markdown

            outputs.append((markdown, lambda report, path: append_text(path, render_markdown(report))))
        html = setting(self.config, "rm_html")
        if html:
            from .report.html import render_html

            outputs.append((html, lambda report, path: write_text(path, render_html(report))))
        for path, write in outputs:
            if not path:
                continue
            try:
                write(self.report, path)
            except Exception as exc:  # one output lost, not the others
                self.report_error = f"pytest-rmbench: could not write {path!r}: {exc}"

    def _build_report(self, summary: dict, gate: dict) -> dict:
        # the model ran in the workers (or the cache holds its scores): describe it from their figures
        model = next((SimpleNamespace(**w) for w in self.workers if w.get("kind")), None)
        scored = [r for r in self.records.values() if r["outcome"] != ERROR]
        starts = [r["start"] for r in scored if r.get("start")]
        stops = [r["stop"] for r in scored if r.get("stop")]
        busy = (max(stops) - min(starts)) if starts and stops else None
        report = {
            "run": {
                "model": self.model_name,
                "kind": getattr(model, "kind", None) or self.spec.kind,
                "dtype": getattr(model, "dtype", None) or self.spec.dtype,
                "device": getattr(model, "device", None) or self.spec.device,
                "seed": self.spec.seed,
                "versions": self._versions(),
                "started": _dt.datetime.fromtimestamp(self.started, _dt.timezone.utc).isoformat(),
                "seconds": time.time() - self.started,
                "pairs_per_second": len(scored) / busy if busy else None,
                "scores_from_cache": bool(model is not None and model.from_cache),
                "load_seconds": next((w["load_seconds"] for w in self.workers if w.get("load_seconds")), None),
                "load_error": next((w["load_error"] for w in self.workers if w.get("load_error")), None),
                "collected": len(self.catalog["items"]),
                "ran": len(self.records),
                "suites": suite_versions(self.records.values()),
            },
        }
        report.update(summary)
        report.pop("strict", None)
        report["workers"] = sorted(self.workers, key=lambda w: str(w["worker"]))
        report["recovered"] = list(self.xdist.crashed) if self.xdist else []
        report["gate"] = gate
        return report

    def _versions(self) -> dict:
        versions = {"python": platform.python_version(), "pytest": pytest.__version__, "pytest-rmbench": __version__}
        for worker in self.workers:  # the libraries the model actually ran on, as its worker saw them
            versions.update(worker.get("versions") or {})
        return versions

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        tr = terminalreporter
        for message in (self.usage_error, self.report_error):
            if message:
                tr.write_line(message, red=True)
        if self.report is not None:
            terminal.write_summary(
                tr, self.report, list(self.records.values()), self.warnings, notes=self.notes,
                explanations=self.explanations, verbose=config.option.verbose, maxfail=config.option.maxfail,
                explain="i" in (config.option.reportchars or ""),
                report_path=None if self.report_error else setting(config, "rm_report"),
            )

    def pytest_unconfigure(self, config):
        """Whatever the run opened, it closes: the model (an HTTP pool), the score cache, the store."""
        opened = [self._model, self._cache[0] if self._cache else None, self._store, self._score_writer]
        for thing in opened:
            close = getattr(thing, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # closing must not turn a finished run into an error
                    pass
