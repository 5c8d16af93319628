"""Benchmark items as plain data, and the rule that turns scores into an outcome.

No pytest and no torch here: collection builds these, the engine scores them, the
report reads them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Union

Message = dict  # {"role": ..., "content": ...}
Prompt = Union[str, tuple]  # a string, or a tuple of messages (hashable)

CORRECT = "correct"
INCORRECT = "incorrect"
ERROR = "error"


@dataclass(frozen=True)
class PairItem:
    """One preference pair: the model passes when score(chosen) > score(rejected)."""

    id: str
    subset: str
    prompt: Prompt
    chosen: str
    rejected: str
    strict: bool = False
    tags: tuple = ()
    source: str = ""  # "path:line" or "path#index", for messages
    order: int = 0  # position in its file

    def messages(self) -> list[dict]:
        return prompt_messages(self.prompt)

    def requests(self) -> tuple["ScoreRequest", "ScoreRequest"]:
        return ScoreRequest(self.prompt, self.chosen), ScoreRequest(self.prompt, self.rejected)

    def judge_requests(self) -> tuple["JudgeRequest", "JudgeRequest"]:
        """Both orders: chosen shown first, then chosen shown second."""
        return JudgeRequest(self.prompt, self.chosen, self.rejected), JudgeRequest(self.prompt, self.rejected, self.chosen)

    def content_hash(self) -> str:
        """Changes whenever the item's text changes: a baseline leaves edited items out."""
        return _digest([prompt_key(self.prompt), self.chosen, self.rejected])

    def prompt_hash(self) -> str:
        """Items sharing a prompt are resampled together by the paired bootstrap."""
        return _digest([prompt_key(self.prompt)])

    def length_prefers_chosen(self) -> bool:
        """The length-bias baseline: the longer answer wins, equal lengths are wrong."""
        return len(self.chosen) > len(self.rejected)


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


def request_parts(request) -> list[str]:
    """What identifies a request's text (the score cache and score files key on it)."""
    if isinstance(request, JudgeRequest):
        return ["judge", request.prompt_key(), request.answer_a, request.answer_b]
    return [request.prompt_key(), request.answer]


@dataclass
class ScoreResult:
    score: float | None
    truncated: bool = False
    error: str | None = None


@dataclass
class PairOutcome:
    outcome: str
    chosen_score: float | None = None
    rejected_score: float | None = None
    truncated: bool = False
    error: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def margin(self) -> float | None:
        if self.chosen_score is None or self.rejected_score is None:
            return None
        return self.chosen_score - self.rejected_score


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


def _digest(parts: list[str]) -> str:
    text = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def judge_pair(chosen: ScoreResult, rejected: ScoreResult) -> PairOutcome:
    """Strict preference: equal scores are wrong, as in every published reward benchmark."""
    truncated = chosen.truncated or rejected.truncated
    error = chosen.error or rejected.error
    if error is None:
        for name, res in (("chosen", chosen), ("rejected", rejected)):
            if res.score is None or not math.isfinite(res.score):
                error = f"the model returned a non-finite score for {name}: {res.score!r}"
                break
    if error is not None:
        return PairOutcome(ERROR, truncated=truncated, error=error)
    outcome = CORRECT if chosen.score > rejected.score else INCORRECT
    return PairOutcome(outcome, chosen.score, rejected.score, truncated)


def verdict(score: float) -> str:
    return "A>B" if score > 0 else ("B>A" if score < 0 else "tie")


def judge_both_orders(chosen_first: ScoreResult, chosen_second: ScoreResult) -> PairOutcome:
    """JudgeBench's rule: correct when both orders are right, or one is right and the other a tie."""
    truncated = chosen_first.truncated or chosen_second.truncated
    for res in (chosen_first, chosen_second):
        if res.error is not None:
            return PairOutcome(ERROR, truncated=truncated, error=res.error)
        if res.score is None or not math.isfinite(res.score):
            return PairOutcome(ERROR, truncated=truncated, error=f"the judge returned a non-finite score: {res.score!r}")
    verdicts = [verdict(chosen_first.score), verdict(chosen_second.score)]
    right = [verdicts[0] == "A>B", verdicts[1] == "B>A"]
    ties = [v == "tie" for v in verdicts]
    correct = all(right) or (any(right) and any(ties))
    # as a margin: how much the judge favours the chosen answer, averaged over the two orders
    margin = (chosen_first.score - chosen_second.score) / 2
    return PairOutcome(
        CORRECT if correct else INCORRECT, margin, 0.0, truncated,
        details={"verdicts": verdicts, "consistent": (verdicts[0], verdicts[1]) in (("A>B", "B>A"), ("B>A", "A>B"), ("tie", "tie"))},
    )
