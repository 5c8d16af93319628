"""pytest nodes for benchmark files: one test per item, error items for bad ones."""

from __future__ import annotations

import fnmatch
import os

import pytest

from .items import ERROR, INCORRECT, PairItem, PairOutcome
from .parse import FileParseError, ItemProblem, parse_file

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
        try:
            parsed = parse_file(self._display_path(), self.path.read_bytes())
        except FileParseError as exc:
            raise self.CollectError(str(exc)) from None
        if parsed.unknown_fields:
            self.warn(RmbenchWarning(
                f"{self._display_path()}: unknown field(s) ignored: {', '.join(sorted(set(parsed.unknown_fields)))}"
            ))
        self.config.stash[PLUGIN_KEY].note_file(parsed)
        # Every item of a file has the same fixtures and one of a few markers: compute and
        # build them once per file, not once per item (100,000 items stay cheap to collect).
        fixtureinfo = None
        subset_marks: dict[str, pytest.MarkDecorator] = {}
        for entry in parsed.entries:
            if isinstance(entry, ItemProblem):
                yield BadItem.from_parent(self, name=_problem_name(entry), problem=entry)
                continue
            item = PairTest.from_parent(
                self, name=f"{entry.subset}/{entry.id}", callobj=_benchmark_pair, fixtureinfo=fixtureinfo
            )
            fixtureinfo = item._fixtureinfo
            item.pair = entry
            mark = subset_marks.get(entry.subset)
            if mark is None:
                mark = subset_marks[entry.subset] = pytest.mark.rm_subset(entry.subset)
            item.add_marker(mark)
            if entry.strict:
                item.add_marker(pytest.mark.rm_strict)
            item.extra_keyword_matches.update(entry.tags)
            yield item

    def _display_path(self) -> str:
        # the path part of the node id, as pytest shows it
        return self.nodeid


def _problem_name(problem: ItemProblem) -> str:
    if problem.subset is not None and problem.id is not None:
        base = f"{problem.subset}/{problem.id}"
        return f"{base}[item-{problem.index}]" if problem.field == "id" else base
    return f"item-{problem.index}"


def _benchmark_pair():
    """Placeholder callable: PairTest.runtest does the work (the fixture machinery needs one)."""


class IncorrectPreference(Exception):
    """The model did not score chosen above rejected: a wrong prediction, not a crash."""


class ItemScoringError(Exception):
    """The item could not be scored (NaN score, model that failed to load, ...)."""


class PairTest(pytest.Function):
    """One preference pair. A pytest.Function, so autouse fixtures and markers apply."""

    pair: PairItem

    def runtest(self) -> None:
        plugin = self.config.stash[PLUGIN_KEY]
        outcome = plugin.outcome_for(self)
        self.stash[OUTCOME_KEY] = outcome
        # per-testcase <properties> in JUnit XML, for CI dashboards
        self.user_properties.extend([
            ("rm_subset", self.pair.subset), ("rm_outcome", outcome.outcome),
            ("rm_chosen_score", outcome.chosen_score), ("rm_rejected_score", outcome.rejected_score),
            ("rm_margin", outcome.margin),
        ])
        if outcome.outcome == ERROR:
            raise ItemScoringError(outcome.error)
        if outcome.outcome == INCORRECT:
            raise IncorrectPreference(incorrect_text(self.pair, outcome))

    def reportinfo(self):
        line = self.pair.source.rpartition(":")[2]
        return self.path, int(line) - 1 if line.isdigit() else None, self.name

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (IncorrectPreference, ItemScoringError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


def incorrect_text(pair: PairItem, outcome: PairOutcome) -> str:
    def preview(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= ANSWER_PREVIEW else text[:ANSWER_PREVIEW] + "..."

    return (
        f"incorrect preference ({pair.source})\n"
        f"  chosen   score {outcome.chosen_score:.6g}: {preview(pair.chosen)}\n"
        f"  rejected score {outcome.rejected_score:.6g}: {preview(pair.rejected)}\n"
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
OUTCOME_KEY = pytest.StashKey[PairOutcome]()
