"""pytest hooks of pytest-rmbench: a table of one-liners into the run's `RunSession`.

The data path reads straight through: collect items (collect.py), chunk them and score a
chunk in batches (engine.py, models/), attach outcomes to reports (collect.item_record),
aggregate on the controller, gate and write (finish.py, report/, storage/). Nothing heavy
is imported here: torch and transformers load only when a transformers model is built.
"""

from __future__ import annotations

import pytest

from . import hookspecs
from .collect import SESSION_KEY, BadItem, BenchmarkFile, BenchmarkTest, matches, suite_collectors, test_status
from .models.base import ModelLoadError
from .models.resolve import resolve
from .options import Settings, add_options
from .session import SKIP_REASON, RunSession

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

        run.xdist = XdistHooks(config, run.is_benchmark_nodeid, run.settings.chunk_size, run.settings.gpus_per_worker,
                               run.lane_of if run.settings.several_models else None)
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
    spec = Settings.from_config(config).model
    if spec is None or not resolve(spec).one_worker_per_gpu:  # builtin:, http://, scores: use no GPU here
        return None
    from .xdist import auto_workers

    return auto_workers(spec.gpus)


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
        return test_status(report)

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

