"""The base of the kinds that score lists of chosen and rejected answers one by one
(`best_of_n`, `ties`, `style_matrix`): each kind only decides from the scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import CORRECT, INCORRECT, Item, ItemOutcome, Prompt, Rules, ScoreRequest, clip, prompt_text, score_list
from .rules import _problem


@dataclass(frozen=True, kw_only=True)
class AnswerListsItem(Item):
    """A prompt with lists of chosen and rejected answers, each scored alone."""

    prompt: Prompt
    chosen: tuple
    rejected: tuple
    FIELDS: ClassVar[tuple] = ("prompt", "chosen", "rejected")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        return {"prompt": fields.prompt(raw), "chosen": fields.strings(raw, "chosen"),
                "rejected": fields.strings(raw, "rejected")}

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

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        return (f"incorrect {self.kind} ({self.source})\n  chosen scores   {score_list(d['chosen_scores'])}\n"
                f"  rejected scores {score_list(d['rejected_scores'])}\n"
                f"  credit {outcome.credit:.3g} (must be 1)")

    def texts(self) -> list:
        return [self.prompt, *self.chosen, "\x00", *self.rejected]

    def report_texts(self) -> dict:
        return {"prompt": prompt_text(self.prompt), "chosen": [clip(c) for c in self.chosen],
                "rejected": [clip(r) for r in self.rejected]}
