"""pytest nodes for benchmark files: one test per item, error items for bad ones."""

from __future__ import annotations

import fnmatch
import os

import pytest

from . import RmbenchWarning
from .items import ERROR, INCORRECT, NOT_LOADED, Item, ItemOutcome
from .items.files import FileParseError, ItemProblem, parse_file
from .items.images import item_file, report_thumbnail

DEFAULT_PATTERNS = ["*.rmbench.yaml", "*.rmbench.yml", "*.rmbench.jsonl"]


def matches(path: os.PathLike, patterns: list[str]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(name, p) for p in patterns)


class BenchmarkFile(pytest.File):
    """A `*.rmbench.yaml` / `*.rmbench.jsonl` file; collects one test per item."""

    def collect(self):
        from .items.lfs import LfsPointerFile
        from .items.files import ParsedFile

        try:
            with item_file(str(self.path)):  # relative image paths resolve against the item file's folder
                parsed = parse_file(self._display_path(), self.path.read_bytes())
        except LfsPointerFile as exc:
            # One error item, not a collection error: pytest stops the whole run on a collection
            # error ("Interrupted: 1 error during collection", exit 2), while this file is only
            # not there yet (a clone made without git-lfs). The other files still run; exit 1.
            parsed = ParsedFile(exc.path, entries=[exc.problem()])
            self.config.stash[SESSION_KEY].catalog.note_file(parsed)
            yield BadItem.from_parent(self, name="git-lfs-pointer", problem=parsed.entries[0])
            return
        except FileParseError as exc:
            raise self.CollectError(str(exc)) from None
        if parsed.unknown_fields:
            self.warn(RmbenchWarning(
                f"{self._display_path()}: unknown field(s) ignored: {', '.join(sorted(set(parsed.unknown_fields)))}"
            ))
        self.config.stash[SESSION_KEY].catalog.note_file(parsed)
        yield from make_tests(self, parsed.entries)

    def _display_path(self) -> str:
        # the path part of the node id, as pytest shows it
        return self.nodeid


class BenchmarkSuite(pytest.Collector):
    """A published benchmark (--rm-bench NAME): one test per official unit, with node ids
    `NAME::<the suite's node name>`."""

    def __init__(self, *, suite, source, **kwargs):
        super().__init__(**kwargs)
        self.suite, self.source = suite, source

    def collect(self):
        from .suites import SuiteDataError

        try:
            entries = list(self.suite.load(self.source))
        except SuiteDataError as exc:
            raise self.CollectError(f"{self.name}: {exc}") from None
        self.config.stash[SESSION_KEY].catalog.note_suite(self.suite, self.source, entries)
        yield from make_tests(self, entries)

    def reportinfo(self):
        return self.path, None, self.name

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value.args[0])
        return super().repr_failure(excinfo)


def model_node_name(name: str, model: str | None) -> str:
    """A test's name for one model of several, the pytest way: `subset/id[model]`, or
    `subset/id[item-3-model]` when the name has brackets already; unchanged with one model."""
    if model is None:
        return name
    return f"{name[:-1]}-{model}]" if name.endswith("]") else f"{name}[{model}]"


def one_model_nodeid(nodeid: str, model: str) -> str:
    """model_node_name undone on a node id: what a one-model run calls the test."""
    if nodeid.endswith(f"[{model}]"):
        return nodeid[: -len(model) - 2]
    if nodeid.endswith(f"-{model}]"):
        return nodeid[: -len(model) - 2] + "]"
    return nodeid


def make_tests(parent, entries):
    """One test per item and model, one error test per bad item and model."""
    run = parent.config.stash.get(SESSION_KEY, None)
    several = run is not None and run.settings.several_models
    models = list(run.lanes) if several else [run.primary.name if run is not None and run.primary else None]
    for model in models:  # the session groups the models' tests (RunSession.select)
        for test in _tests(parent, entries, model if several else None):
            test.lane = model
            yield test


def _bracket_id(node):
    """pytest 9 keys --lf and --sw by a structured node id whose params are what follows the
    first '[' of the node id string (NodeId.parse). A test built from a name holding brackets
    (chat/1[cand], subset/id[item-3]) gets that same id, or --lf would never find it again."""
    ident = getattr(node, "_id", None)
    if "[" in node.name and getattr(ident, "params", False) is None and hasattr(type(ident), "parse"):
        node._id = type(ident).parse(str(ident))
    return node


def _tests(parent, entries, model: str | None):
    # Every item of a file has the same fixtures and one of a few markers: compute and
    # build them once per file, not once per item (100,000 items stay cheap to collect).
    fixtureinfo = None
    subset_marks: dict[str, pytest.MarkDecorator] = {}
    for entry in entries:
        if isinstance(entry, ItemProblem):
            yield _bracket_id(BadItem.from_parent(parent, name=model_node_name(_problem_name(entry), model), problem=entry))
            continue
        test = BenchmarkTest.from_parent(parent, name=model_node_name(entry.node_name(), model), callobj=_benchmark_item,
                                         fixtureinfo=fixtureinfo)
        fixtureinfo = test._fixtureinfo
        test.item = entry
        mark = subset_marks.get(entry.subset)
        if mark is None:
            mark = subset_marks[entry.subset] = pytest.mark.rm_subset(entry.subset)
        test.add_marker(mark)
        if entry.strict:
            test.add_marker(pytest.mark.rm_strict)
        test.extra_keyword_matches.update(entry.tags)
        if model is not None:
            test.extra_keyword_matches.add(model)  # -k cand
        yield _bracket_id(test)


def _problem_name(problem: ItemProblem) -> str:
    if problem.subset is not None and problem.id is not None:
        base = f"{problem.subset}/{problem.id}"
        return f"{base}[item-{problem.index}]" if problem.field == "id" else base
    return f"item-{problem.index}"


def _benchmark_item():
    """Placeholder callable: BenchmarkTest.runtest does the work (the fixture machinery needs one)."""


class IncorrectPreference(Exception):
    """The model got the item wrong: a wrong prediction, not a crash."""


class ItemScoringError(Exception):
    """The item could not be scored (NaN score, model that failed to load, ...)."""


class BenchmarkTest(pytest.Function):
    """One benchmark item (for one model of the run). A pytest.Function, so autouse fixtures and markers apply."""

    item: Item
    lane: str | None = None  # the model's name (RunSession.lanes)

    def runtest(self) -> None:
        outcome = self.config.stash[SESSION_KEY].outcome_for(self)
        self.stash[OUTCOME_KEY] = outcome
        # per-testcase <properties> in JUnit XML, for CI dashboards
        self.user_properties.extend([
            ("rm_subset", self.item.subset), ("rm_kind", self.item.kind), ("rm_outcome", outcome.outcome),
            ("rm_credit", outcome.credit), ("rm_chosen_score", outcome.chosen_score),
            ("rm_rejected_score", outcome.rejected_score), ("rm_margin", outcome.margin),
        ])
        if outcome.outcome == ERROR:
            raise ItemScoringError(outcome.error)
        if outcome.outcome == INCORRECT:
            raise IncorrectPreference(incorrect_text(self.item, outcome))

    def reportinfo(self):
        line = self.item.source.rpartition(":")[2]
        return self.path, int(line) - 1 if line.isdigit() else None, self.name

    def repr_failure(self, excinfo):  # pytest's Function.repr_failure takes only excinfo
        if isinstance(excinfo.value, (IncorrectPreference, ItemScoringError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def incorrect_text(item: Item, outcome: ItemOutcome) -> str:
    """Why the item failed, in the words of its kind's rule (the kind's `explain`)."""
    return item.explain(outcome)


class BenchmarkItemError(Exception):
    pass


class BadItem(pytest.Item):
    """An item that failed validation: it errors with a message naming file, line and field."""

    lane: str | None = None  # the model's name (RunSession.lanes)

    def __init__(self, *, problem: ItemProblem, **kwargs):
        super().__init__(**kwargs)
        self.problem = problem

    def runtest(self) -> None:
        raise BenchmarkItemError(self.problem.describe())

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, BenchmarkItemError):
            return f"invalid benchmark item: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, (self.problem.line - 1) if self.problem.line else None, self.name


# the run's RunSession, set at configure time; here so the nodes need not import the session module
SESSION_KEY = pytest.StashKey()
OUTCOME_KEY = pytest.StashKey[ItemOutcome]()


# -- suites: resolved once by name, collected beside the session's files -------------------------
def suite_options(settings) -> dict:
    """--rm-suite-option NAME=VALUE lines, --rm-languages and --rm-prior-sets, for every suite."""
    from .items.files import parse_assignments

    try:
        options = dict(parse_assignments(list(settings.suite_option_lines), "--rm-suite-option"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    options.update({"languages": list(settings.languages), "prior_sets": settings.prior_sets})
    return options


def resolve_suites(config, settings) -> list:
    """The run's suites: --rm-bench names through the hook (a plugin's suite first), then --rm-dataset."""
    found = []
    for name in settings.bench:
        suite = config.hook.pytest_rmbench_make_suite(config=config, name=name)
        if suite is None:
            from .suites import SUITES

            raise pytest.UsageError(
                f"--rm-bench {name!r}: unknown suite; available: {', '.join(SUITES.names())} (or a suite a plugin adds)"
            )
        found.append(suite)
    if settings.datasets:
        from .suites.dataset import DatasetSuite, parse_columns

        try:
            columns = parse_columns(settings.columns)
        except ValueError as exc:
            raise pytest.UsageError(f"--rm-columns: {exc}") from None
        for target in settings.datasets:
            found.append(DatasetSuite.for_target(target, columns, split=settings.dataset_split, config=settings.dataset_config))
    elif settings.columns:
        raise pytest.UsageError("--rm-columns maps the columns of --rm-dataset: give --rm-dataset NAME_OR_PATH too")
    taken = [s.name for s in found]
    duplicates = sorted({n for n in taken if taken.count(n) > 1})
    if duplicates:
        raise pytest.UsageError(f"two suites are named {', '.join(duplicates)}: node ids would clash")
    return found


def suite_collectors(session, suites, settings) -> list:
    from .suites import DataSource

    options = suite_options(settings)
    return [BenchmarkSuite.from_parent(session, name=suite.name, nodeid=suite.name, suite=suite,
                                       source=DataSource(suite=suite.name, data_dir=settings.data_dir,
                                                         revision=settings.revision, options=options))
            for suite in suites]


# -- outcomes on reports ------------------------------------------------------------------------
def item_record(item, index: int) -> dict:
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
        "index": index,
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
        "texts": _texts(item, entry),
        "content_hash": entry.content_hash() if entry else None,
        "prompt_hash": entry.prompt_hash() if entry else None,
        "error": outcome.error,
    }


def _texts(item, entry) -> dict | None:
    """The item's report texts; with --rm-html, an image item's also carry a thumbnail of its
    first image, made here (on the worker, which has the image files) and never an error."""
    if entry is None:
        return None
    texts = entry.report_texts()
    if getattr(entry, "images", ()):
        run = item.config.stash.get(SESSION_KEY, None)
        if run is not None and run.settings.html:
            texts = {**texts, **report_thumbnail(entry)}
    return texts


def test_status(report):
    """The word pytest shows for a benchmark item's outcome (None: pytest's own)."""
    if report.outcome == "rerun":  # a benchmark item whose xdist worker died: it runs again
        return "rerun", "R", ("RERUN", {"yellow": True})
    record = getattr(report, "rmbench", None)
    if record is None or report.when != "call":
        return None
    if record["outcome"] == INCORRECT:
        return "incorrect", "i", ("INCORRECT", {"yellow": True})
    if record["outcome"] == ERROR and record["error"] == NOT_LOADED:
        # one load error, said once at the top of the summary, not once per item
        return "unscored", "E", ("UNSCORED", {"red": True})
    if record["outcome"] == ERROR:
        return "error", "E", ("ERROR", {"red": True})
    return None
