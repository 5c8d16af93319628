"""`judged`: JudgeBench's unit, two responses and a label "A>B" or "B>A".

A reward model reads A>B when score(A) > score(B), else B>A (so equal scores read B>A, as
JudgeBench's script does); a pairwise judge is asked in both orders and passes when
JudgeBench's counter is positive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import (CORRECT, GRADING_FIELDS, INCORRECT, Item, ItemOutcome, JudgeRequest, Prompt, Rules, ScoreRequest, clip,
                   prompt_text)
from .images import report_images
from .pair import null_requests, with_null
from .rules import LABELS, SWAPPED, _problem, judgebench_counter, verdict


@dataclass(frozen=True, kw_only=True)
class JudgedItem(Item):
    """JudgeBench's unit: which of two responses is better, with a label "A>B" or "B>A"."""

    question: Prompt
    response_a: str
    response_b: str
    label: str
    kind: ClassVar[str] = "judged"
    scalar_only: ClassVar[bool] = False
    FIELDS: ClassVar[tuple] = ("question", "response_a", "response_b", "label", *GRADING_FIELDS, "images")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        label = raw.get("label")
        if label not in LABELS:
            raise fields.FieldError("label", f"must be \"A>B\" or \"B>A\", got {label!r}")
        return {"question": fields.prompt(raw, "question"), "response_a": fields.string(raw, "response_a"),
                "response_b": fields.string(raw, "response_b"), "label": label, **fields.grading(raw),
                **fields.images(raw)}

    @property
    def prompt(self) -> Prompt:
        return self.question

    def requests(self, rules: Rules = Rules()) -> list:
        g = self.grading()
        null = null_requests(self.question, self.chosen, rules, g)  # --rm-null-answer
        if rules.pairwise:  # both orders; the swapped verdict is flipped back
            return [JudgeRequest(self.question, self.response_a, self.response_b, **g),
                    JudgeRequest(self.question, self.response_b, self.response_a, **g), *null]
        return [ScoreRequest(self.question, self.response_a, **g), ScoreRequest(self.question, self.response_b, **g), *null]

    @property
    def chosen(self) -> str:
        """The response the label prefers."""
        return self.response_a if self.label == "A>B" else self.response_b

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        """The item's verdict, with the null comparison of --rm-null-answer in its details."""
        return with_null(self._verdict(results, rules), self.question, self.chosen, results, rules, self.grading())

    def _verdict(self, results: Mapping, rules: Rules) -> ItemOutcome:
        first, second = (results[r] for r in self.requests(rules)[:2])
        problem = _problem([first, second])
        if problem:
            return problem
        truncated = first.truncated or second.truncated
        better_a = self.label == "A>B"
        if rules.pairwise:
            verdicts = [verdict(first.score), verdict(second.score)]
            counter = judgebench_counter([verdicts[0], SWAPPED[verdicts[1]]], self.label)
            margin = (first.score - second.score) / 2 * (1 if better_a else -1)
            passed = margin > 0 if rules.both_orders == "difference" else counter > 0
            return ItemOutcome(CORRECT if passed else INCORRECT, margin, 0.0, truncated,
                               details={"verdicts": verdicts, "counter": counter, "label": self.label})
        # a scalar reward model: one order, and anything but A strictly above B reads B>A
        predicted = "A>B" if first.score > second.score else "B>A"
        good, bad = (first.score, second.score) if better_a else (second.score, first.score)
        return ItemOutcome(CORRECT if predicted == self.label else INCORRECT, good, bad, truncated,
                           details={"verdict": predicted, "label": self.label})

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        head = f"incorrect {self.kind} ({self.source})"
        if "verdicts" in d:
            return f"{head}\n  label {d['label']}; the judge said {d['verdicts'][0]} and, with A and B swapped, {d['verdicts'][1]}"
        better_a = self.label == "A>B"
        return (f"{head}\n  label {d['label']}; score(A) {outcome.chosen_score if better_a else outcome.rejected_score:.6g}, "
                f"score(B) {outcome.rejected_score if better_a else outcome.chosen_score:.6g}: the verdict is {d['verdict']}")

    def texts(self) -> list:
        return [self.question, self.response_a, self.response_b, self.label]

    def report_texts(self) -> dict:
        chosen, rejected = (self.response_a, self.response_b) if self.label == "A>B" else (self.response_b, self.response_a)
        return {"prompt": prompt_text(self.question), "chosen": clip(chosen), "rejected": clip(rejected),
                **report_images(self)}

    def length_prefers_chosen(self) -> bool:
        a, b = len(self.response_a), len(self.response_b)
        return (a > b) if self.label == "A>B" else (b > a)

    def chosen_longer(self) -> bool:
        return self.length_prefers_chosen()
