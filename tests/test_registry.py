"""The one registry type behind item kinds, model kinds and suites: lazy entries, entry points,
collisions and the 'unknown X; available: ...' message; and a kind added from a conftest.py."""

import importlib.metadata
import json
import sys

import pytest

from pytest_rmbench.items import ITEM_KINDS
from pytest_rmbench.registry import Registry, RegistryError, UnknownName


@pytest.fixture
def lazy_module(tmp_path, monkeypatch):
    """A module on sys.path that records being imported."""
    (tmp_path / "lazy_target.py").write_text("import sys\nsys.modules['lazy_target'].IMPORTED = True\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_target", raising=False)
    return "lazy_target"


def test_entries_are_imported_on_first_use_only(lazy_module):
    registry = Registry("thing", builtin={"answer": f"{lazy_module}:VALUE"})
    assert "answer" in registry and registry.names() == ["answer"]
    assert lazy_module not in sys.modules  # listing and membership import nothing
    assert registry.get("answer") == 42
    assert sys.modules[lazy_module].IMPORTED


def test_an_unknown_name_lists_the_names_there_are():
    registry = Registry("suite", builtin={"b": object(), "a": object()})
    with pytest.raises(UnknownName, match=r"^unknown suite 'c'; available: b, a$"):
        registry.get("c")
    with pytest.raises(UnknownName, match=r"available: none"):
        Registry("suite").get("c")


def test_a_name_registered_twice_is_an_error_naming_both():
    registry = Registry("item kind", builtin={"pair": "pkg.pair:PairItem"})
    registry.register("pair", "pkg.pair:PairItem")  # the same target again is harmless
    with pytest.raises(RegistryError, match=r"item kind 'pair' is registered twice: by pkg.pair:PairItem and by other:Pair"):
        registry.register("pair", "other:Pair")
    registry.register("pair", "other:Pair", replace=True)
    registry.unregister("pair")
    assert "pair" not in registry


def test_a_target_that_cannot_be_imported_names_it():
    registry = Registry("model kind", builtin={"gone": "no_such_module_anywhere:build"})
    with pytest.raises(RegistryError, match=r"model kind 'gone': cannot load no_such_module_anywhere:build"):
        registry.get("gone")


def test_entry_points_are_read_once_and_only_when_a_name_is_missing(monkeypatch, lazy_module):
    calls = []

    def entry_points(group):
        calls.append(group)
        return [importlib.metadata.EntryPoint("third", f"{lazy_module}:VALUE", group)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = Registry("suite", "pytest_rmbench.suites", builtin={"builtin": object()})
    registry.get("builtin")
    assert calls == []  # a built-in name needs no scan
    assert registry.get("third") == 42
    assert registry.names() == ["builtin", "third"] and registry.builtin_names() == ["builtin", "third"]
    with pytest.raises(UnknownName, match="available: builtin, third"):
        registry.get("fourth")
    assert calls == ["pytest_rmbench.suites"]


# A kind written in a conftest.py: one class and one registry line, as a new built-in kind is
# one module and one line in items/__init__.py.
THRESHOLD_KIND = '''
from dataclasses import dataclass
from typing import ClassVar

from pytest_rmbench.items import CORRECT, INCORRECT, ITEM_KINDS, Item, ItemOutcome, ScoreRequest, fields
from pytest_rmbench.items.rules import _problem


@dataclass(frozen=True, kw_only=True)
class ThresholdItem(Item):
    """One answer whose reward must exceed an absolute bar (a calibration check)."""

    prompt: str
    answer: str
    min_score: float
    kind: ClassVar[str] = "threshold"
    FIELDS: ClassVar[tuple] = ("prompt", "answer", "min_score")

    @classmethod
    def from_fields(cls, raw):
        value = raw.get("min_score")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fields.FieldError("min_score", f"must be a number, got {value!r}")
        return {"prompt": fields.prompt(raw), "answer": fields.string(raw, "answer"), "min_score": float(value)}

    def requests(self, rules):
        return [ScoreRequest(self.prompt, self.answer)]

    def outcome(self, results, rules):
        found = results[ScoreRequest(self.prompt, self.answer)]
        problem = _problem([found])
        if problem:
            return problem
        passed = found.score > self.min_score
        return ItemOutcome(CORRECT if passed else INCORRECT, found.score, self.min_score, found.truncated)

    def explain(self, outcome):
        return f"incorrect threshold ({self.source})\\n  score {outcome.chosen_score:g} is not above {self.min_score:g}"

    def texts(self):
        return [self.prompt, self.answer, repr(self.min_score)]

    def report_texts(self):
        return {"prompt": self.prompt, "answers": [{"label": "answer", "text": self.answer}]}


ITEM_KINDS.register("threshold", ThresholdItem)


def pytest_unconfigure(config):
    ITEM_KINDS.unregister("threshold")  # pytester runs share this process
'''


def test_a_kind_from_a_conftest_runs_with_its_rule_schema_and_failure_text(pytester):
    pytester.makeconftest(THRESHOLD_KIND)
    pytester.makefile(".rmbench.yaml", bar="""
items:
  - {kind: threshold, id: high, subset: bar, prompt: p, answer: aaaaa, min_score: 3}
  - {kind: threshold, id: low, subset: bar, prompt: p, answer: aa, min_score: 3, colour: red}
  - {kind: threshold, id: bad, subset: bar, prompt: p, answer: aa, min_score: lots}
""")
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json", "--rm-no-store", "-ri")
    items = {i["id"]: i for i in json.loads((pytester.path / "run.json").read_text())["items"]}
    assert (items["high"]["kind"], items["high"]["outcome"], items["high"]["chosen_score"]) == ("threshold", "correct", 5.0)
    assert items["low"]["outcome"] == "incorrect"
    assert items["high"]["texts"] == {"prompt": "p", "answers": [{"label": "answer", "text": "aaaaa"}]}
    assert items["bad"]["outcome"] == "error"
    assert "field 'min_score': must be a number, got 'lots'" in items["bad"]["error"]
    result.stdout.fnmatch_lines(["*score 2 is not above 3*"])  # the kind's own failure text
    result.stdout.fnmatch_lines(["*unknown field(s) ignored: colour*"])  # its FIELDS drive the warning
    assert "threshold" not in ITEM_KINDS  # the conftest took its kind away again
