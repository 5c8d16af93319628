"""The JSON report as types: one `Report` whatever it came from (just built, a --rm-report
file, the run store, an older version).

`Report.to_dict()` gives exactly the JSON users parse (tests/test_report_compat.py holds the
key order); `Report.from_dict(d)` reads any report tolerantly: a missing key takes its default,
a key this version does not know is kept (and written back where it was), and the key order
of the input is kept, so `Report.from_dict(d).to_dict() == d` for every report this plugin
writes. Blocks whose keys depend on their kind (gate checks, a check's low/high) leave a key
out when it was not there (`ABSENT`).

Shapes left free on purpose: an item's details/texts/verdicts, a suite's scores and datasets,
library versions: they belong to item kinds, suites and models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


class _Absent:
    """A key the dict did not have and to_dict leaves out."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()


def _one(cls):
    return {"load": lambda v: cls.from_dict(v) if isinstance(v, dict) else v, "dump": _dump}


def _many(cls):
    return {"load": lambda v: [cls.from_dict(x) if isinstance(x, dict) else x for x in v] if isinstance(v, list) else v,
            "dump": _dump}


def _named(cls):
    return {"load": lambda v: {k: cls.from_dict(x) if isinstance(x, dict) else x for k, x in v.items()}
            if isinstance(v, dict) else v, "dump": _dump}


def _dump(value):
    if isinstance(value, Block):
        return value.to_dict()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def nested(kind, cls, default=None, **kw):
    """A field holding a block (`one`), a list of blocks (`many`) or a name -> block dict (`named`)."""
    meta = {"one": _one, "many": _many, "named": _named}[kind](cls)
    if callable(default):
        return field(default_factory=default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def free(factory=None):
    """A field whose value is kept as it is (dicts, lists)."""
    return field(default_factory=factory) if factory else field(default=None)


class Block:
    """Base of every report block: from_dict / to_dict with the key order kept."""

    KEYS: ClassVar[dict[str, str]] = {}  # JSON key -> attribute, where they differ

    @classmethod
    def _fields(cls):
        cached = cls.__dict__.get("_field_cache")
        if cached is None:
            attrs = {v: k for k, v in cls.KEYS.items()}
            cached = [(f.name, attrs.get(f.name, f.name), f.metadata.get("load"))
                      for f in dataclasses.fields(cls) if not f.name.startswith("_") and f.name != "extra"]
            cls._field_cache = cached
        return cached

    @classmethod
    def from_dict(cls, d: dict | None):
        d = d if isinstance(d, dict) else {}
        known = {}
        keys = set()
        for attr, key, load in cls._fields():
            keys.add(key)
            if key in d:
                value = d[key]
                known[attr] = load(value) if load else value
        obj = cls(**known)
        obj.extra = {k: v for k, v in d.items() if k not in keys}
        obj._order = tuple(d)
        return obj

    def to_dict(self) -> dict:
        out = {}
        for attr, key, _ in self._fields():
            value = getattr(self, attr)
            if value is not ABSENT:
                out[key] = _dump(value)
        out.update(getattr(self, "extra", None) or {})
        order = getattr(self, "_order", None)
        if order and tuple(out) != order:
            ranked = {k: i for i, k in enumerate(order)}
            last = len(ranked)
            out = dict(sorted(out.items(), key=lambda kv: ranked.get(kv[0], last)))
        return out

    def get(self, key: str, default=None):
        """dict-style reading, for code written against the report dict."""
        for attr, k, _ in self._fields():
            if k == key:
                value = getattr(self, attr)
                return default if value is ABSENT else value
        return (getattr(self, "extra", None) or {}).get(key, default)

    def __getitem__(self, key: str):
        missing = object()
        value = self.get(key, missing)
        if value is missing:
            raise KeyError(key)
        return value


@dataclass
class _Base(Block):
    extra: dict = field(default_factory=dict, repr=False, compare=False, kw_only=True)
    _order: tuple | None = field(default=None, repr=False, compare=False, kw_only=True)


# -- the run and its items ---------------------------------------------------------------------------

@dataclass
class SuiteVersion(_Base):
    """One benchmark file or suite: how many of its items ran, and a version of their texts."""
    items: int = 0
    version: str = ""


@dataclass
class Run(_Base):
    model: str | None = None
    kind: str | None = None
    dtype: str | None = None
    device: str | None = None
    seed: int | None = None
    versions: dict = free(dict)
    started: str | None = None
    seconds: float | None = None
    pairs_per_second: float | None = None
    scores_from_cache: bool = False
    load_seconds: float | None = None
    load_error: str | None = None
    collected: int | None = None
    ran: int | None = None
    suites: dict[str, SuiteVersion] = nested("named", SuiteVersion, dict)
    id: Any = ABSENT  # the run store's id, once recorded


@dataclass
class Item(_Base):
    """One benchmark item's result (aggregate.ITEM_KEYS, in that order)."""
    nodeid: str | None = None
    file: str | None = None
    id: str | None = None
    subset: str | None = None
    kind: str | None = None
    group: str | None = None
    outcome: str | None = None
    credit: float | None = None
    chosen_score: float | None = None
    rejected_score: float | None = None
    margin: float | None = None
    truncated: bool | None = None
    chosen_longer: bool | None = None
    content_hash: str | None = None
    prompt_hash: str | None = None
    verdicts: list | None = None
    details: dict | None = None
    error: str | None = None
    texts: dict | None = None
    model: str | None = ABSENT  # several models: the model's name


# -- figures --------------------------------------------------------------------------------------------

@dataclass
class Figures(_Base):
    """A subset's or the overall figures: n, credit sum, accuracy, Wilson 95% interval, mean margin, errors."""
    n: int | None = None
    correct: float | None = None
    passed: int | None = None
    accuracy: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    mean_margin: float | None = None
    errors: int | None = None


@dataclass
class SectionFigures(_Base):
    """A weighted mean of subset accuracies; a weight of None is the subset's item count."""
    n: int | None = None
    accuracy: float | None = None
    subsets: list = free(list)
    weights: dict = free(dict)


@dataclass
class LengthBaseline(_Base):
    n: int | None = None
    accuracy: float | None = None
    rule: str | None = None


@dataclass
class Accuracy(_Base):
    n: int | None = None
    accuracy: float | None = None


@dataclass
class LengthBias(_Base):
    chosen_longer: Accuracy = nested("one", Accuracy, Accuracy)
    chosen_shorter: Accuracy = nested("one", Accuracy, Accuracy)


@dataclass
class Judge(_Base):
    """A pairwise judge's position consistency."""
    n: int = 0
    inconsistent: int = 0
    inconsistency: float | None = None


@dataclass
class Steps(_Base):
    """ProcessBench's figures of one subset."""
    n_error: int = 0
    n_correct: int = 0
    acc_error: float | None = None
    acc_correct: float | None = None
    f1: float | None = None


@dataclass
class Heads(_Base):
    """Accuracy per output head of a multi-objective model."""
    n: int = 0
    overall: list = free(list)
    subsets: dict = free(dict)


@dataclass
class Strict(_Base):
    """Strict items (not in the JSON report; the gate reads it)."""
    n: int = 0
    correct: int = 0
    incorrect: int = 0
    failed: list = free(list)


# -- suites ---------------------------------------------------------------------------------------------

@dataclass
class SuiteDatasets(_Base):
    headline: str | None = None
    datasets: list = free(list)
    not_run: list = free(list)
    items: int | None = None


# -- the baseline comparison ------------------------------------------------------------------------------

@dataclass
class Change(_Base):
    """One subset (or overall) against the baseline."""
    n: int = 0
    regressions: int | None = None
    fixes: int | None = None
    before: float | None = None
    after: float | None = None
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    mcnemar_p: float | None = None
    decision: str | None = None


@dataclass
class Baseline(_Base):
    run: Any = None
    label: str | None = None
    shared: int = 0
    edited: int = 0
    margin: float | None = None
    subsets: dict[str, Change] = nested("named", Change, dict)
    overall: Change = nested("one", Change, Change)
    regressed: list = free(list)


# -- the gate -------------------------------------------------------------------------------------------

@dataclass
class Check(_Base):
    """One gate check. Which keys a check has depends on its kind (accuracy, baseline,
    baseline-missing, errors, strict): keys it does not have stay ABSENT."""
    name: str | None = None
    threshold: float | None = None
    value: Any = None
    low: float | None = ABSENT
    high: float | None = ABSENT
    kind: str | None = None
    rule: str | None = None
    source: str | None = ABSENT
    errors: int | None = ABSENT
    passed: bool | None = None
    status: str | None = None
    failed: list = ABSENT
    model: str | None = ABSENT  # several models: the model the check is about


@dataclass
class Gate(_Base):
    configured: bool = False
    passed: bool = True
    checks: list[Check] = nested("many", Check, list)


# -- workers and selection ------------------------------------------------------------------------------

@dataclass
class Worker(_Base):
    worker: str = "main"
    items: int = 0
    sequences: int = 0
    batches: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    oom_halvings: int = 0
    cached: int = 0
    seconds: float = 0.0
    load_seconds: float | None = None
    load_error: str | None = None
    peak_memory_bytes: int | None = None
    device: str | None = None
    cuda_visible_devices: str | None = None
    versions: dict = free(dict)
    kind: str | None = None
    dtype: str | None = None
    from_cache: bool = False
    warnings: list = free(list)


@dataclass
class Selection(_Base):
    """Which files ran, and whether every collected item of them did."""
    files: list = free(list)
    partial: bool = False
    why: list = free(list)


# -- the report -----------------------------------------------------------------------------------------

@dataclass
class Report(_Base):
    run: Run = nested("one", Run, Run)
    items: list[Item] = nested("many", Item, list)
    subsets: dict[str, Figures] = nested("named", Figures, dict)
    sections: dict[str, SectionFigures] = nested("named", SectionFigures, dict)
    overall: Figures = nested("one", Figures, Figures)
    length_baseline: LengthBaseline = nested("one", LengthBaseline, LengthBaseline)
    length_bias: LengthBias | None = nested("one", LengthBias, None)
    truncated: int | None = None
    judge: Judge | None = nested("one", Judge, None)
    steps: dict[str, Steps] | None = nested("named", Steps, None)
    heads: Heads | None = nested("one", Heads, None)
    scores: dict = free(dict)
    datasets: dict[str, SuiteDatasets] = nested("named", SuiteDatasets, dict)
    selection: Selection = nested("one", Selection, Selection)
    workers: list[Worker] = nested("many", Worker, list)
    recovered: list = free(list)
    gate: Gate = nested("one", Gate, Gate)
    baseline: Baseline | None = nested("one", Baseline, None)
    # several models (lineup.py): each model's blocks, and the models compared; absent with one model
    models: dict = ABSENT
    comparison: dict = ABSENT

    @classmethod
    def of(cls, report) -> "Report":
        """A Report from a Report (itself) or a report dict. A Report made by another import of
        this module (pytester's in-process runs re-import the package) is read through its dict."""
        if isinstance(report, Report):
            return report
        return cls.from_dict(report.to_dict() if hasattr(report, "to_dict") else report)

    def headline(self, suite: str):
        """(headline key, value) of a suite's official scores; (None, None) without one."""
        key = getattr(self.datasets.get(suite), "headline", None) if isinstance(self.datasets, dict) else None
        scores = (self.scores or {}).get(suite)
        return key, (scores.get(key) if isinstance(scores, dict) and key else None)
