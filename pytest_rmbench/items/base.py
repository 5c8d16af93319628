"""What every item kind shares: the requests an item asks the model to score, the results
and outcomes, the `Item` base class, prompts, digests, report texts, and the two plain
records collection hands around (`ItemProblem`, a bad item; `Section`, pooled subsets).

No pytest, no torch, no YAML here: the kinds, the file parser and the suites build on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

from ..text import clip as clip_text
from .images import image_fields, image_parts

Prompt = Union[str, tuple]  # a string, or a tuple of (role, content) messages (hashable)

CORRECT = "correct"
INCORRECT = "incorrect"
ERROR = "error"
# the error of an item not scored because the model did not load: said once, at the top of the summary
NOT_LOADED = "not scored: the reward model could not be loaded (the load error is at the top of the rmbench summary)"

ANSWER_PREVIEW = 160  # characters of an answer shown in a failure text
TEXT_LIMIT = 20_000  # characters of one prompt or answer kept in the report (the HTML page shows them)


# -- requests: what an item asks the model to score ---------------------------------------
@dataclass(frozen=True)
class ScoreRequest:
    """One (prompt, answer) sequence to score; equal requests are scored once per chunk.

    rubric, reference and checklist (GRADING_FIELDS) are the item's, for a grader
    (--rm-kind grader); other models ignore them. Absent, they leave equality and keys as before.
    images (ImageRef, items/images.py) likewise: only a model that sees images may score them."""

    prompt: Prompt
    answer: str
    rubric: str | None = None
    reference: str | None = None
    checklist: tuple = ()
    images: tuple = ()

    def grading(self) -> dict:
        return grading_of(self)

    def messages(self) -> list[dict]:
        return prompt_messages(self.prompt) + [{"role": "assistant", "content": self.answer}]

    def prompt_key(self) -> str:
        return prompt_key(self.prompt)


@dataclass(frozen=True)
class JudgeRequest:
    """A pairwise judge's question: which of answer_a and answer_b is better?

    Its score is log p(label A) - log p(label B) after the judge prompt (or +1 / -1 / 0 for
    a parsed verdict): positive means A>B, negative B>A, zero a tie.
    """

    prompt: Prompt
    answer_a: str
    answer_b: str
    rubric: str | None = None  # GRADING_FIELDS: see ScoreRequest
    reference: str | None = None
    checklist: tuple = ()
    images: tuple = ()  # see ScoreRequest

    def prompt_key(self) -> str:
        return prompt_key(self.prompt)

    def grading(self) -> dict:
        return grading_of(self)

    def messages(self) -> list[dict]:
        return prompt_messages(self.prompt)


@dataclass(frozen=True)
class StepsRequest:
    """A solution given as steps; a process reward model answers with one score per step
    (a probability that the step is right), as a tuple."""

    prompt: Prompt
    steps: tuple

    def prompt_key(self) -> str:
        return prompt_key(self.prompt)

    def messages(self) -> list[dict]:
        return prompt_messages(self.prompt)


# optional item fields a grader reads (pair, judged, best_of_n): on the item and its requests,
# and part of the content hash and the request keys only when present
GRADING_FIELDS = ("rubric", "reference", "checklist")


def grading_of(obj) -> dict:
    """The GRADING_FIELDS an item or request has (rubric, reference, checklist), by name; {} when none."""
    return {name: getattr(obj, name) for name in GRADING_FIELDS if getattr(obj, name, None)}


def grading_parts(obj) -> list[str]:
    """The grading fields as key parts: [] when there are none, so earlier keys and hashes stay as they were."""
    found = grading_of(obj)
    if not found:
        return []
    return ["\x00grading", json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in found.items()},
                                      ensure_ascii=False, sort_keys=True)]


def request_parts(request) -> list[str]:
    """What identifies a request's text (the score cache and score files key on it)."""
    if isinstance(request, JudgeRequest):
        return ["judge", request.prompt_key(), request.answer_a, request.answer_b, *grading_parts(request),
                *image_parts(request)]
    if isinstance(request, StepsRequest):
        return ["steps", request.prompt_key(), *request.steps]
    return [request.prompt_key(), request.answer, *grading_parts(request), *image_parts(request)]


# -- results and outcomes -----------------------------------------------------------------
class MultiHeadScore(float):
    """A reward that also carries every output of a multi-objective model, for per-head figures."""

    heads: tuple

    def __new__(cls, value: float, heads):
        score = super().__new__(cls, value)
        score.heads = tuple(float(h) for h in heads)
        return score

    def __reduce__(self):
        return (MultiHeadScore, (float(self), self.heads))


@dataclass
class ScoreResult:
    score: Any  # a float; a tuple of floats for a StepsRequest; None when it failed
    truncated: bool = False
    error: str | None = None


@dataclass
class ItemOutcome:
    outcome: str
    chosen_score: float | None = None
    rejected_score: float | None = None
    truncated: bool = False
    error: str | None = None
    details: dict = field(default_factory=dict)
    credit: float | None = None  # None: 1 when correct, 0 when incorrect

    def __post_init__(self):
        if self.credit is None and self.outcome != ERROR:
            self.credit = 1.0 if self.outcome == CORRECT else 0.0

    @property
    def margin(self) -> float | None:
        if self.chosen_score is None or self.rejected_score is None:
            return None
        return self.chosen_score - self.rejected_score


@dataclass(frozen=True)
class Rules:
    """What the pass rules need to know about the model."""

    pairwise: bool = False  # a judge of (prompt, A, B), not a scorer of single answers
    step_threshold: float = 0.5
    null_answer: str | None = None  # --rm-null-answer: pair and judged items also compare the chosen answer with it
    pairwise_rule: str = "round_robin"  # best_of_n under a pairwise model: round_robin or tournament
    # how a pairwise model's two orders decide: "counter" (JudgeBench: both verdicts, a tie in one
    # order may pass) or "difference" (PairRM's compare: M[A][B] - M[B][A] > 0)
    both_orders: str = "counter"


# -- bad items and sections: plain records for collection and the report --------------------
@dataclass
class ItemProblem:
    """An item that failed validation; collected as an error test."""

    index: int
    line: int | None
    field: str
    message: str
    id: str | None = None
    subset: str | None = None
    path: str = ""

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        who = f"item #{self.index}" + (f" (id {self.id!r})" if self.id is not None else "")
        return f"{where}: {who}: field '{self.field}': {self.message}"


@dataclass
class Section:
    """Subsets pooled into one score; weight None means 'the subset's item count'."""

    name: str
    weights: dict[str, float | None]


# -- the item base class ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Item:
    """One benchmark item. A kind subclasses it and owns, in its own module:

    - `kind` (its name in files and reports) and `FIELDS` (the fields it reads from a file);
    - `from_fields(raw)`: the kind's fields of a raw mapping, validated (items/fields.py);
    - `requests(rules)` and `outcome(results, rules)`: what to score and its pass rule;
    - `explain(outcome)`: why it failed, in the words of its rule;
    - `texts()` (the content hash) and `report_texts()` (the report's readers).
    """

    id: str
    subset: str
    strict: bool = False
    tags: tuple = ()
    source: str = ""  # "path:line" or "dataset#row", for messages
    order: int = 0  # position in its file or suite
    node: str = ""  # the pytest node name; "subset/id" when empty
    group: str = ""  # a label for a suite's own scoring (JudgeBench's response set), reported as is
    rubric: str | None = None  # GRADING_FIELDS, for a grader; only the kinds that list them in FIELDS read them
    reference: str | None = None
    checklist: tuple = ()
    images: tuple = ()  # ImageRefs (items/images.py); only the kinds that list "images" in FIELDS read them

    kind: ClassVar[str] = ""
    scalar_only: ClassVar[bool] = True  # a pairwise judge cannot score it
    FIELDS: ClassVar[tuple] = ()  # the kind's own fields in an item file (others draw a warning)
    REPORT_BLOCK: ClassVar[str | None] = None  # the JSON report's key for report_block(), if the kind has one

    @classmethod
    def report_block(cls, records: list[dict]) -> dict | None:
        """The kind's own figures over its item records in a run (the report's `REPORT_BLOCK` key);
        None when there is nothing to say."""
        return None

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        """The kind's fields of one raw item (a file's mapping), validated; raises FieldError."""
        raise NotImplementedError

    def node_name(self) -> str:
        return self.node or f"{self.subset}/{self.id}"

    def requests(self, rules: Rules = Rules()) -> list:
        raise NotImplementedError

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        raise NotImplementedError

    def explain(self, outcome: ItemOutcome) -> str:
        """Why the item failed, in the words of its kind's rule."""
        text = f"incorrect {self.kind} ({self.source})"
        if outcome.chosen_score is not None and outcome.rejected_score is not None:
            text += (f"\n  chosen score {outcome.chosen_score:.6g}, rejected score {outcome.rejected_score:.6g}"
                     f"\n  margin {outcome.margin:+.6g} (must be > 0)")
        return text

    def texts(self) -> list:
        """Every text of the item, in a fixed order (the content hash)."""
        raise NotImplementedError

    def report_texts(self) -> dict:
        """The item's prompt and answers for the report's readers (the HTML page expands them),
        each clipped at TEXT_LIMIT characters."""
        prompt = getattr(self, "prompt", None)
        return {"prompt": prompt_text(prompt)} if prompt is not None else {}

    def content_hash(self) -> str:
        """Changes whenever the item's text changes: a baseline leaves edited items out."""
        return _digest([self.kind, *map(_text_key, self.texts()), *grading_parts(self), *image_parts(self)])

    def grading(self) -> dict:
        """The optional fields the item's requests carry: its grading fields (rubric, reference,
        checklist) and its images; {} when none."""
        return {**grading_of(self), **image_fields(self)}

    def prompt_hash(self) -> str:
        """Items sharing a prompt are resampled together by the paired bootstrap."""
        return _digest([prompt_key(getattr(self, "prompt", ""))])

    def chosen_longer(self) -> bool | None:
        """Whether the preferred answer is the longer one (length-bias figures); None: not a pair."""
        return None


def item_outcome(item: Item, results: Mapping, rules: Rules) -> ItemOutcome:
    """The item's rule, or an error outcome when the model cannot score this kind."""
    if rules.pairwise and item.scalar_only:
        return ItemOutcome(ERROR, error=(
            f"a pairwise judge cannot score items of kind {item.kind!r}: they need one score per answer "
            "(use a reward model, or items of kind pair / judged)"
        ))
    outcome = item.outcome(results, rules)
    _add_votes(item, outcome, results, rules)
    if outcome.outcome == INCORRECT:
        _add_grader_outputs(item, outcome, results, rules)
    return outcome


NO_MAJORITY = "no answer won more than half of the sampled verdicts (VL-RewardBench leaves such items out)"


def _add_votes(item: Item, outcome: ItemOutcome, results: Mapping, rules: Rules) -> None:
    """A voting grader's tally (models/grader.py, vl-rewardbench mode) of the item's first request
    (for a pair: chosen shown as A) goes into its details; with no majority the item is `excluded`
    (its suite may leave it out of its official scores; it still fails here: a tie is no preference)."""
    requests = item.requests(rules) if rules.pairwise else ()
    first = results.get(requests[0]) if requests and hasattr(results, "get") else None
    votes = getattr(getattr(first, "score", None), "votes", None)
    if votes:
        outcome.details = {**outcome.details, "votes": dict(votes),
                           **({"excluded": NO_MAJORITY} if votes.get("verdict") is None else {})}


GRADER_OUTPUT_LIMIT = 2_000  # characters of one grader verdict text kept in a failed item's details


def _add_grader_outputs(item: Item, outcome: ItemOutcome, results: Mapping, rules: Rules) -> None:
    """A grader's verdict texts (scores carrying `grader_outputs`, models/grader.py) go into a failed
    item's details, clipped; nothing for any other model."""
    texts, voted = [], False
    for request in item.requests(rules):
        score = getattr(results.get(request) if hasattr(results, "get") else None, "score", None)
        texts.extend(getattr(score, "grader_outputs", None) or ())
        voted = voted or bool(getattr(score, "votes", None))
    if voted:  # the vl-rewardbench mode's two orders share their k outputs: each once
        texts = list(dict.fromkeys(texts))
    if texts:
        outcome.details = {**outcome.details, "grader_outputs": [
            clip_text(t, GRADER_OUTPUT_LIMIT, marker="[... {more:,} more characters]") for t in texts]}


# -- prompts ----------------------------------------------------------------------------
def freeze_prompt(prompt: Any) -> Prompt:
    """Chat messages as a hashable tuple of (role, content) pairs; strings stay strings."""
    if isinstance(prompt, str):
        return prompt
    return tuple((m["role"], m["content"]) for m in prompt)


def prompt_messages(prompt: Prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": role, "content": content} for role, content in prompt]


def prompt_key(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)


# -- texts for people -----------------------------------------------------------------------
def clip(text) -> str:
    """A text for the report: at most TEXT_LIMIT characters, then a marker saying how many more."""
    return clip_text(text, TEXT_LIMIT, marker="[... {more:,} more characters]")


def prompt_text(prompt):
    """A prompt for the report: a clipped string, or messages with clipped contents."""
    return clip(prompt) if isinstance(prompt, str) else [{"role": r, "content": clip(c)} for r, c in prompt]


def preview(text) -> str:
    """An answer on one line, cut at ANSWER_PREVIEW characters (failure texts)."""
    return clip_text(text, ANSWER_PREVIEW, squash=True, marker="...")


def score_list(values) -> str:
    return "[" + ", ".join(format(v, ".4g") for v in values) + "]"


# -- digests ----------------------------------------------------------------------------
def _text_key(value) -> str:
    return value if isinstance(value, str) else prompt_key(value)


def _digest(parts: list[str]) -> str:
    text = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
