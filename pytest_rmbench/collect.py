"""pytest nodes for benchmark files: one test per item, error items for bad ones."""

from __future__ import annotations

import fnmatch
import os

import pytest

from .items import ERROR, INCORRECT, Item, ItemOutcome
from .items.files import FileParseError, ItemProblem, parse_file

DEFAULT_PATTERNS = ["*.rmbench.yaml", "*.rmbench.yml", "*.rmbench.jsonl"]
ANSWER_PREVIEW = 160


class RmbenchWarning(pytest.PytestWarning):
    """Warnings from pytest-rmbench (unknown fields, merged messages, partial gates)."""


def matches(path: os.PathLike, patterns: list[str]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(name, p) for p in patterns)


class BenchmarkFile(pytest.File):
    """A `*.rmbench.yaml` / `*.rmbench.jsonl` file; collects one test per item."""

    def collect(self):
        from .lfs import LfsPointerFile
        from .items.files import ParsedFile

        try:
            parsed = parse_file(self._display_path(), self.path.read_bytes())
        except LfsPointerFile as exc:
            # One error item, not a collection error: pytest stops the whole run on a collection
            # error ("Interrupted: 1 error during collection", exit 2), while this file is only
            # not there yet (a clone made without git-lfs). The other files still run; exit 1.
            parsed = ParsedFile(exc.path, entries=[exc.problem()])
            self.config.stash[PLUGIN_KEY].note_file(parsed)
            yield BadItem.from_parent(self, name="git-lfs-pointer", problem=parsed.entries[0])
            return
        except FileParseError as exc:
            raise self.CollectError(str(exc)) from None
        if parsed.unknown_fields:
            self.warn(RmbenchWarning(
                f"{self._display_path()}: unknown field(s) ignored: {', '.join(sorted(set(parsed.unknown_fields)))}"
            ))
        self.config.stash[PLUGIN_KEY].note_file(parsed)
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
        self.config.stash[PLUGIN_KEY].note_suite(self.suite, self.source, entries)
        yield from make_tests(self, entries)

    def reportinfo(self):
        return self.path, None, self.name

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value.args[0])
        return super().repr_failure(excinfo)


def make_tests(parent, entries):
    """One test per item, one error test per bad item."""
    # Every item of a file has the same fixtures and one of a few markers: compute and
    # build them once per file, not once per item (100,000 items stay cheap to collect).
    fixtureinfo = None
    subset_marks: dict[str, pytest.MarkDecorator] = {}
    for entry in entries:
        if isinstance(entry, ItemProblem):
            yield BadItem.from_parent(parent, name=_problem_name(entry), problem=entry)
            continue
        test = BenchmarkTest.from_parent(parent, name=entry.node_name(), callobj=_benchmark_item, fixtureinfo=fixtureinfo)
        fixtureinfo = test._fixtureinfo
        test.item = entry
        mark = subset_marks.get(entry.subset)
        if mark is None:
            mark = subset_marks[entry.subset] = pytest.mark.rm_subset(entry.subset)
        test.add_marker(mark)
        if entry.strict:
            test.add_marker(pytest.mark.rm_strict)
        test.extra_keyword_matches.update(entry.tags)
        yield test


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
    """One benchmark item. A pytest.Function, so autouse fixtures and markers apply."""

    item: Item

    def runtest(self) -> None:
        plugin = self.config.stash[PLUGIN_KEY]
        outcome = plugin.outcome_for(self)
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


def _preview(text) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ANSWER_PREVIEW else text[:ANSWER_PREVIEW] + "..."


def _scores(values) -> str:
    return "[" + ", ".join(format(v, ".4g") for v in values) + "]"


def incorrect_text(item: Item, outcome: ItemOutcome) -> str:
    """Why the item failed, in the words of its kind's rule."""
    d = outcome.details
    head = f"incorrect {item.kind} ({item.source})"
    if item.kind == "steps":
        where = "no wrong step" if d["label"] == -1 else f"the first wrong step is {d['label']}"
        said = "no wrong step" if d["prediction"] == -1 else f"step {d['prediction']}"
        return f"{head}\n  {where}; the model flagged {said}\n  step scores {_scores(d['step_scores'])}"
    if item.kind == "style_matrix":
        rows = "\n".join("    " + " ".join("+" if c else "-" for c in row) for row in d["matrix"])
        return (f"{head}\n  chosen style i beats rejected style j (+) or not (-):\n{rows}\n"
                f"  hard {d['hard']:.3g}  normal {d['normal']:.3g}  easy {d['easy']:.3g}  credit {outcome.credit:.3g}")
    if item.kind in ("best_of_n", "ties"):
        return (f"{head}\n  chosen scores   {_scores(d['chosen_scores'])}\n  rejected scores {_scores(d['rejected_scores'])}\n"
                f"  credit {outcome.credit:.3g} (must be 1)")
    if item.kind == "judged" and "verdicts" in d:
        return f"{head}\n  label {d['label']}; the judge said {d['verdicts'][0]} and, with A and B swapped, {d['verdicts'][1]}"
    if item.kind == "judged":
        return (f"{head}\n  label {d['label']}; score(A) {outcome.chosen_score if item.label == 'A>B' else outcome.rejected_score:.6g}, "
                f"score(B) {outcome.rejected_score if item.label == 'A>B' else outcome.chosen_score:.6g}: the verdict is {d['verdict']}")
    if item.kind == "consistency":
        return (f"{head}\n  under its own prompt   {outcome.chosen_score:.6g}\n  under the contrast prompt {outcome.rejected_score:.6g}\n"
                f"  margin {outcome.margin:+.6g} (must be > 0)")
    if "verdicts" in d:  # a pair judged in both orders
        return (f"incorrect preference ({item.source})\n  the judge said {d['verdicts'][0]} with chosen as A and "
                f"{d['verdicts'][1]} with chosen as B")
    return (
        f"incorrect preference ({item.source})\n"
        f"  chosen   score {outcome.chosen_score:.6g}: {_preview(item.chosen)}\n"
        f"  rejected score {outcome.rejected_score:.6g}: {_preview(item.rejected)}\n"
        f"  margin {outcome.margin:+.6g} (must be > 0)"
    )


class BenchmarkItemError(Exception):
    pass


class BadItem(pytest.Item):
    """An item that failed validation: it errors with a message naming file, line and field."""

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


# set by plugin.py; here so the nodes need not import the plugin module
PLUGIN_KEY = pytest.StashKey()
OUTCOME_KEY = pytest.StashKey[ItemOutcome]()
