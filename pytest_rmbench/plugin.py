"""pytest hooks of pytest-rmbench: a table of one-liners into the run's `RunSession`.

The data path reads straight through: collect items (collect.py), chunk them and score a
chunk in batches (engine.py, models/), attach outcomes to reports (collect.item_record),
aggregate on the controller, gate and write (finish.py, report/, storage/). Nothing heavy
is imported here: torch and transformers load only when a transformers model is built.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import time
from types import SimpleNamespace

import pytest

from . import __version__, hookspecs
from .collect import SESSION_KEY, BadItem, BenchmarkFile, BenchmarkTest, matches, suite_collectors, test_status
from .items import ERROR
from .models.base import ModelLoadError
from .options import add_options, number, setting
from .report.terminal import NOT_LOADED
from .session import RunSession

SKIP_REASON = "no reward model: run with --rm-model=PATH (or --rm-model=builtin:length) to score benchmark items"


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser):
    add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "rm_subset(name): the benchmark subset of a pytest-rmbench item")
    config.addinivalue_line("markers", "rm_strict: a pytest-rmbench item that must pass for the gate to pass")
    run = config.stash[SESSION_KEY] = RunSession(config)
    config.pluginmanager.register(RunHooks(run), "rmbench-session")
    if run.spec is not None and not run.is_worker and config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistHooks  # pytest-randomly's habit: xdist hooks only when xdist is there

        run.xdist = XdistHooks(config, run.is_benchmark_nodeid, run.settings.chunk_size, run.settings.gpus_per_worker)
        config.pluginmanager.register(run.xdist, "rmbench-xdist")
    from . import suites
    from .models import kinds

    for module, name in ((kinds, "rmbench-kinds"), (suites, "rmbench-suites")):
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, name)


def pytest_unconfigure(config):
    run = config.stash.get(SESSION_KEY, None)
    if run is not None:
        run.close()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` with a GPU model: one worker per GPU (or per --rm-gpus-per-worker GPUs)."""
    model = setting(config, "rm_model")
    if not model or model.startswith("builtin:"):
        return None
    from .xdist import auto_workers

    return auto_workers(number(config, "rm_gpus_per_worker"))


@pytest.fixture(scope="session")
def reward_model(pytestconfig):
    """The session's reward model: `score(prompt, answer)` and `prefers(prompt, chosen, rejected)`."""
    from .api import RewardModel

    run = pytestconfig.stash[SESSION_KEY]
    if run.spec is None:
        pytest.skip(SKIP_REASON)
    try:
        return RewardModel(run.get_model(), run.settings.limits())
    except ModelLoadError as exc:
        pytest.fail(f"the reward model could not be loaded: {exc}", pytrace=False)


class RunHooks:
    """The hooks that need the run; each hands its arguments to the RunSession."""

    def __init__(self, run: RunSession):
        self.run = run

    def pytest_sessionstart(self, session):
        self.run.start()

    def pytest_collect_file(self, file_path, parent):
        if matches(file_path, self.run.settings.file_patterns):
            return BenchmarkFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        """The session's collectors, plus one per --rm-bench / --rm-dataset suite."""
        report = yield
        if isinstance(collector, pytest.Session) and report.passed:
            report.result.extend(suite_collectors(collector, self.run.resolve_suites(), self.run.settings))
        return report

    def pytest_collectreport(self, report):
        if report.failed:
            self.run.collection_failed()

    @pytest.hookimpl(trylast=True)  # after -k/-m/--lf have made their selection
    def pytest_collection_modifyitems(self, config, items):
        self.run.select(config, items)

    def pytest_deselected(self, items):
        self.run.deselected(items)

    def pytest_collection_finish(self, session):
        self.run.plan(session)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.when == "call" and isinstance(item, (BenchmarkTest, BadItem)):
            report.rmbench = self.run.record(item)
        return report

    def pytest_report_teststatus(self, report, config):
        return test_status(report, NOT_LOADED)

    def pytest_runtest_logreport(self, report):
        self.run.reported(report)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.run.workers_collected(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        self.run.worker_down(node)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.run.finish(session, exitstatus)

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        self.run.summary(terminalreporter, config)


# -- TEMPORARY bridges, removed when items/ and report/ carry these ------------------------------
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


def build_report_dict(run, summary: dict, gate: dict) -> dict:
    state = run.state
    # the model ran in the workers (or the cache holds its scores): describe it from their figures
    model = next((SimpleNamespace(**w) for w in state.workers if w.get("kind")), None)
    scored = [r for r in state.records.values() if r["outcome"] != ERROR]
    starts = [r["start"] for r in scored if r.get("start")]
    stops = [r["stop"] for r in scored if r.get("stop")]
    busy = (max(stops) - min(starts)) if starts and stops else None
    versions = {"python": platform.python_version(), "pytest": pytest.__version__, "pytest-rmbench": __version__}
    for worker in state.workers:  # the libraries the model actually ran on, as its worker saw them
        versions.update(worker.get("versions") or {})
    report = {
        "run": {
            "model": run.model_name,
            "kind": getattr(model, "kind", None) or run.spec.kind,
            "dtype": getattr(model, "dtype", None) or run.spec.dtype,
            "device": getattr(model, "device", None) or run.spec.device,
            "seed": run.spec.seed,
            "versions": versions,
            "started": _dt.datetime.fromtimestamp(run.started, _dt.timezone.utc).isoformat(),
            "seconds": time.time() - run.started,
            "pairs_per_second": len(scored) / busy if busy else None,
            "scores_from_cache": bool(model is not None and model.from_cache),
            "load_seconds": next((w["load_seconds"] for w in state.workers if w.get("load_seconds")), None),
            "load_error": next((w["load_error"] for w in state.workers if w.get("load_error")), None),
            "collected": len(run.catalog.items),
            "ran": len(state.records),
            "suites": suite_versions(state.records.values()),
        },
    }
    report.update(summary)
    report.pop("strict", None)
    report["workers"] = sorted(state.workers, key=lambda w: str(w["worker"]))
    report["recovered"] = list(run.xdist.crashed) if run.xdist else []
    report["gate"] = gate
    return report
