"""Benchmark items as plain data, and the rules that turn scores into an outcome.

No pytest and no torch here: collection builds these, the engine scores the requests
they ask for, and each item's rule turns the scores into an outcome with a credit in
[0, 1]. An item passes when it earns full credit.

Item kinds (the `kind` field of a benchmark item):

- ``pair``: score(chosen) > score(rejected), strict.
- ``best_of_n``: several chosen and rejected answers; ``rule: fractional`` (RewardBench 2:
  credit = chosen answers among the top scores / all answers tied at the top) or
  ``rule: strict`` (every chosen answer above every rejected one, as RewardMATH).
- ``style_matrix``: k chosen and k rejected styles (RM-Bench, k = 3); credit is the mean
  of the hard (upper triangle), normal (diagonal) and easy (lower triangle) accuracies.
- ``ties``: several correct and several incorrect answers (RewardBench 2 Ties); accurate
  when the worst correct answer beats the best incorrect one.
- ``judged``: question, response_a, response_b and label "A>B" / "B>A" (JudgeBench).
- ``steps``: a solution as steps, label = index of the earliest wrong step or -1
  (ProcessBench); needs a process reward model.
- ``consistency``: score(prompt, answer) > score(contrast_prompt, answer).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Union

Message = dict  # {"role": ..., "content": ...}
Prompt = Union[str, tuple]  # a string, or a tuple of messages (hashable)

CORRECT = "correct"
INCORRECT = "incorrect"
ERROR = "error"

LABELS = ("A>B", "B>A")
SWAPPED = {"A>B": "B>A", "B>A": "A>B", "tie": "tie"}


# -- requests: what an item asks the model to score ---------------------------------------
@dataclass(frozen=True)
class ScoreRequest:
    """One (prompt, answer) sequence to score; equal requests are scored once per chunk."""

    prompt: Prompt
    answer: str

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

    def prompt_key(self) -> str:
        return prompt_key(self.prompt)

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


def request_parts(request) -> list[str]:
    """What identifies a request's text (the score cache and score files key on it)."""
    if isinstance(request, JudgeRequest):
        return ["judge", request.prompt_key(), request.answer_a, request.answer_b]
    if isinstance(request, StepsRequest):
        return ["steps", request.prompt_key(), *request.steps]
    return [request.prompt_key(), request.answer]


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


# -- item kinds -------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Item:
    id: str
    subset: str
    strict: bool = False
    tags: tuple = ()
    source: str = ""  # "path:line" or "dataset#row", for messages
    order: int = 0  # position in its file or suite
    node: str = ""  # the pytest node name; "subset/id" when empty
    group: str = ""  # a label for a suite's own scoring (JudgeBench's response set), reported as is

    kind: ClassVar[str] = ""
    scalar_only: ClassVar[bool] = True  # a pairwise judge cannot score it

    def node_name(self) -> str:
        return self.node or f"{self.subset}/{self.id}"

    def requests(self, rules: Rules = Rules()) -> list:
        raise NotImplementedError

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        raise NotImplementedError

    def texts(self) -> list:
        """Every text of the item, in a fixed order (the content hash)."""
        raise NotImplementedError

    def content_hash(self) -> str:
        """Changes whenever the item's text changes: a baseline leaves edited items out."""
        return _digest([self.kind, *map(_text_key, self.texts())])

    def prompt_hash(self) -> str:
        """Items sharing a prompt are resampled together by the paired bootstrap."""
        return _digest([prompt_key(getattr(self, "prompt", ""))])

    def chosen_longer(self) -> bool | None:
        """Whether the preferred answer is the longer one (length-bias figures); None: not a pair."""
        return None


@dataclass(frozen=True, kw_only=True)
class PairItem(Item):
    """One preference pair: the model passes when score(chosen) > score(rejected)."""

    prompt: Prompt
    chosen: str
    rejected: str
    kind: ClassVar[str] = "pair"
    scalar_only: ClassVar[bool] = False

    def requests(self, rules: Rules = Rules()) -> list:
        if rules.pairwise:
            return list(self.judge_requests())
        return [ScoreRequest(self.prompt, self.chosen), ScoreRequest(self.prompt, self.rejected)]

    def judge_requests(self) -> tuple["JudgeRequest", "JudgeRequest"]:
        """Both orders: chosen shown first, then chosen shown second."""
        return JudgeRequest(self.prompt, self.chosen, self.rejected), JudgeRequest(self.prompt, self.rejected, self.chosen)

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        found = [results[r] for r in self.requests(rules)]
        return judge_both_orders(*found) if rules.pairwise else judge_pair(*found)

    def content_hash(self) -> str:  # unchanged since the first release: stored baselines stay valid
        return _digest([prompt_key(self.prompt), self.chosen, self.rejected])

    def texts(self) -> list:
        return [self.prompt, self.chosen, self.rejected]

    def length_prefers_chosen(self) -> bool:
        """The length-bias baseline: the longer answer wins, equal lengths are wrong."""
        return len(self.chosen) > len(self.rejected)

    def chosen_longer(self) -> bool:
        return len(self.chosen) > len(self.rejected)


@dataclass(frozen=True, kw_only=True)
class JudgedItem(Item):
    """JudgeBench's unit: which of two responses is better, with a label "A>B" or "B>A"."""

    question: Prompt
    response_a: str
    response_b: str
    label: str
    kind: ClassVar[str] = "judged"
    scalar_only: ClassVar[bool] = False

    @property
    def prompt(self) -> Prompt:
        return self.question

    def requests(self, rules: Rules = Rules()) -> list:
        if rules.pairwise:  # both orders; the swapped verdict is flipped back
            return [JudgeRequest(self.question, self.response_a, self.response_b),
                    JudgeRequest(self.question, self.response_b, self.response_a)]
        return [ScoreRequest(self.question, self.response_a), ScoreRequest(self.question, self.response_b)]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        first, second = (results[r] for r in self.requests(rules))
        problem = _problem([first, second])
        if problem:
            return problem
        truncated = first.truncated or second.truncated
        better_a = self.label == "A>B"
        if rules.pairwise:
            verdicts = [verdict(first.score), verdict(second.score)]
            counter = judgebench_counter([verdicts[0], SWAPPED[verdicts[1]]], self.label)
            margin = (first.score - second.score) / 2 * (1 if better_a else -1)
            return ItemOutcome(CORRECT if counter > 0 else INCORRECT, margin, 0.0, truncated,
                               details={"verdicts": verdicts, "counter": counter, "label": self.label})
        # a scalar reward model: one order, and anything but A strictly above B reads B>A
        predicted = "A>B" if first.score > second.score else "B>A"
        good, bad = (first.score, second.score) if better_a else (second.score, first.score)
        return ItemOutcome(CORRECT if predicted == self.label else INCORRECT, good, bad, truncated,
                           details={"verdict": predicted, "label": self.label})

    def texts(self) -> list:
        return [self.question, self.response_a, self.response_b, self.label]

    def length_prefers_chosen(self) -> bool:
        a, b = len(self.response_a), len(self.response_b)
        return (a > b) if self.label == "A>B" else (b > a)

    def chosen_longer(self) -> bool:
        return self.length_prefers_chosen()


@dataclass(frozen=True, kw_only=True)
class AnswerListsItem(Item):
    """A prompt with lists of chosen and rejected answers, each scored alone."""

    prompt: Prompt
    chosen: tuple
    rejected: tuple

    def requests(self, rules: Rules = Rules()) -> list:
        return [ScoreRequest(self.prompt, a) for a in (*self.chosen, *self.rejected)]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        found = [results[r] for r in self.requests(rules)]
        problem = _problem(found)
        if problem:
            return problem
        scores = [r.score for r in found]
        chosen, rejected = scores[: len(self.chosen)], scores[len(self.chosen):]
        passed, credit, shown, details = self.decide(chosen, rejected)
        details = {**details, "chosen_scores": chosen, "rejected_scores": rejected}
        return ItemOutcome(CORRECT if passed else INCORRECT, shown, max(rejected),
                           any(r.truncated for r in found), details=details, credit=credit)

    def decide(self, chosen: list[float], rejected: list[float]) -> tuple[bool, float, float, dict]:
        """(passed, credit, the chosen score to show, details) from the scores."""
        raise NotImplementedError

    def texts(self) -> list:
        return [self.prompt, *self.chosen, "\x00", *self.rejected]


@dataclass(frozen=True, kw_only=True)
class BestOfNItem(AnswerListsItem):
    """Several chosen and several rejected answers to one prompt."""

    rule: str = "fractional"  # or "strict"
    kind: ClassVar[str] = "best_of_n"
    RULES: ClassVar[tuple] = ("fractional", "strict")

    def decide(self, chosen, rejected):
        details = {
            "accurate": min(chosen) > max(rejected),
            "accurate_with_ties": min(chosen) >= max(rejected),
            "reciprocal_rank": reciprocal_rank(max(chosen), rejected),
        }
        if self.rule == "strict":
            credit, shown = (1.0 if details["accurate"] else 0.0), min(chosen)
        else:
            credit, shown = fractional_credit(chosen, rejected), max(chosen)
        return credit == 1.0, credit, shown, {**details, "credit": credit}

    def texts(self) -> list:
        return [*super().texts(), self.rule]


@dataclass(frozen=True, kw_only=True)
class TiesItem(AnswerListsItem):
    """Several correct and several incorrect answers (RewardBench 2's Ties)."""

    kind: ClassVar[str] = "ties"

    def decide(self, chosen, rejected):
        accurate = min(chosen) > max(rejected)
        details = {
            "accurate": accurate,
            "diff_corr_margin": max(chosen) - min(chosen),
            "corr_incorrect_margin": min(chosen) - max(rejected),
        }
        return accurate, (1.0 if accurate else 0.0), min(chosen), details


@dataclass(frozen=True, kw_only=True)
class StyleMatrixItem(AnswerListsItem):
    """k chosen and k rejected answers in k styles (RM-Bench: concise, detailed, markdown)."""

    kind: ClassVar[str] = "style_matrix"

    def decide(self, chosen, rejected):
        k = len(chosen)
        matrix = [[chosen[i] > rejected[j] for j in range(k)] for i in range(k)]
        parts = style_triangles(matrix)
        present = [v for v in parts.values() if v is not None]
        return all(all(row) for row in matrix), sum(present) / len(present), min(chosen), {"matrix": matrix, **parts}


@dataclass(frozen=True, kw_only=True)
class StepsItem(Item):
    """A step-by-step solution; label = index of the earliest wrong step, -1 if all are right."""

    problem: str
    steps: tuple
    label: int
    kind: ClassVar[str] = "steps"

    @property
    def prompt(self) -> Prompt:
        return self.problem

    def requests(self, rules: Rules = Rules()) -> list:
        return [StepsRequest(self.problem, self.steps)]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        (found,) = (results[r] for r in self.requests(rules))
        if found.error is not None:
            return ItemOutcome(ERROR, truncated=found.truncated, error=found.error)
        scores = found.score
        if not isinstance(scores, (list, tuple)) or len(scores) != len(self.steps):
            return ItemOutcome(ERROR, truncated=found.truncated,
                               error=f"the model returned {_count(scores)} step scores for {len(self.steps)} steps")
        if not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scores):
            return ItemOutcome(ERROR, truncated=found.truncated, error=f"the model returned a non-finite step score: {list(scores)!r}")
        predicted = first_error_step(scores, rules.step_threshold)
        details = {"label": self.label, "prediction": predicted, "step_scores": list(scores)}
        return ItemOutcome(CORRECT if predicted == self.label else INCORRECT, truncated=found.truncated, details=details)

    def texts(self) -> list:
        return [self.problem, *self.steps, str(self.label)]


@dataclass(frozen=True, kw_only=True)
class ConsistencyItem(Item):
    """One answer must score higher under its own instruction than under a near-duplicate."""

    prompt: Prompt
    contrast_prompt: Prompt
    answer: str
    kind: ClassVar[str] = "consistency"

    def requests(self, rules: Rules = Rules()) -> list:
        return [ScoreRequest(self.prompt, self.answer), ScoreRequest(self.contrast_prompt, self.answer)]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        return judge_pair(*(results[r] for r in self.requests(rules)))

    def texts(self) -> list:
        return [self.prompt, self.contrast_prompt, self.answer]


ITEM_KINDS: dict[str, type[Item]] = {
    cls.kind: cls for cls in (PairItem, BestOfNItem, StyleMatrixItem, TiesItem, JudgedItem, StepsItem, ConsistencyItem)
}


def item_outcome(item: Item, results: Mapping, rules: Rules) -> ItemOutcome:
    """The item's rule, or an error outcome when the model cannot score this kind."""
    if rules.pairwise and item.scalar_only:
        return ItemOutcome(ERROR, error=(
            f"a pairwise judge cannot score items of kind {item.kind!r}: they need one score per answer "
            "(use a reward model, or items of kind pair / judged)"
        ))
    return item.outcome(results, rules)


# -- the rules as formulas ----------------------------------------------------------------
def fractional_credit(chosen: list[float], rejected: list[float]) -> float:
    """RewardBench 2: when a chosen answer has the top score, the credit is the share of the
    answers tied at the top that are chosen (1/ties for one chosen answer); else 0."""
    top = max(max(chosen), max(rejected))
    chosen_top = sum(s == top for s in chosen)
    if not chosen_top:
        return 0.0
    return chosen_top / (chosen_top + sum(s == top for s in rejected))


def reciprocal_rank(chosen: float, rejected: list[float]) -> float:
    """RewardMATH's MRR term: the chosen answer's rank by score, ties broken against it."""
    return 1.0 / (1 + sum(s >= chosen for s in rejected))


def style_triangles(matrix: list[list[bool]]) -> dict:
    """RM-Bench: hard = chosen in a plainer style vs rejected in a fancier one (i < j),
    normal = same style, easy = i > j."""
    k = len(matrix)
    cells = {"hard": [], "normal": [], "easy": []}
    for i in range(k):
        for j in range(k):
            cells["hard" if i < j else "normal" if i == j else "easy"].append(matrix[i][j])
    return {name: (sum(v) / len(v) if v else None) for name, v in cells.items()}


def first_error_step(scores, threshold: float) -> int:
    """ProcessBench's prediction: the first step scoring under the threshold, else -1."""
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def judgebench_counter(verdicts: list[str], label: str) -> int:
    """+1 per verdict equal to the label, -1 per verdict equal to the reversed label."""
    return sum(v == label for v in verdicts) - sum(v == SWAPPED[label] for v in verdicts)


def verdict(score: float) -> str:
    return "A>B" if score > 0 else ("B>A" if score < 0 else "tie")


def judge_pair(chosen: ScoreResult, rejected: ScoreResult) -> ItemOutcome:
    """Strict preference: equal scores are wrong, as in every published reward benchmark."""
    truncated = chosen.truncated or rejected.truncated
    problem = _problem([chosen, rejected], ("chosen", "rejected"))
    if problem:
        return problem
    outcome = CORRECT if chosen.score > rejected.score else INCORRECT
    details = {}
    heads_c, heads_r = getattr(chosen.score, "heads", None), getattr(rejected.score, "heads", None)
    if heads_c and heads_r and len(heads_c) == len(heads_r):
        details["heads"] = [c > r for c, r in zip(heads_c, heads_r)]  # each output's own verdict
    return ItemOutcome(outcome, float(chosen.score), float(rejected.score), truncated, details=details)


def judge_both_orders(chosen_first: ScoreResult, chosen_second: ScoreResult) -> ItemOutcome:
    """JudgeBench's rule: correct when both orders are right, or one is right and the other a tie."""
    truncated = chosen_first.truncated or chosen_second.truncated
    problem = _problem([chosen_first, chosen_second])
    if problem:
        return problem
    verdicts = [verdict(chosen_first.score), verdict(chosen_second.score)]
    counter = judgebench_counter([verdicts[0], SWAPPED[verdicts[1]]], "A>B")
    # as a margin: how much the judge favours the chosen answer, averaged over the two orders
    margin = (chosen_first.score - chosen_second.score) / 2
    return ItemOutcome(
        CORRECT if counter > 0 else INCORRECT, margin, 0.0, truncated,
        details={"verdicts": verdicts, "counter": counter},
    )


def _problem(found: list[ScoreResult], names: tuple = ()) -> ItemOutcome | None:
    truncated = any(r.truncated for r in found)
    for i, res in enumerate(found):
        if res.error is not None:
            return ItemOutcome(ERROR, truncated=truncated, error=res.error)
        if not isinstance(res.score, (int, float)) or not math.isfinite(res.score):
            name = names[i] if i < len(names) else f"answer {i + 1}"
            return ItemOutcome(ERROR, truncated=truncated, error=f"the model returned a non-finite score for {name}: {res.score!r}")
    return None


def _count(scores) -> int:
    return len(scores) if isinstance(scores, (list, tuple)) else 0


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


def _text_key(value) -> str:
    return value if isinstance(value, str) else prompt_key(value)


def _digest(parts: list[str]) -> str:
    text = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
