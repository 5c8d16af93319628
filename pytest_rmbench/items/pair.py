"""`pair`: one preference pair; the model passes when score(chosen) > score(rejected), strict.

A pairwise judge is asked in both orders and passes by JudgeBench's counter rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import (GRADING_FIELDS, Item, ItemOutcome, JudgeRequest, Prompt, Rules, ScoreRequest, _digest, clip,
                   grading_parts, preview, prompt_key, prompt_text)
from .images import image_parts, report_images
from .rules import _problem, judge_both_orders, judge_pair, verdict


@dataclass(frozen=True, kw_only=True)
class PairItem(Item):
    """One preference pair: the model passes when score(chosen) > score(rejected)."""

    prompt: Prompt
    chosen: str
    rejected: str
    kind: ClassVar[str] = "pair"
    scalar_only: ClassVar[bool] = False
    FIELDS: ClassVar[tuple] = ("prompt", "chosen", "rejected", *GRADING_FIELDS, "images")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        return {"prompt": fields.prompt(raw), "chosen": fields.string(raw, "chosen"),
                "rejected": fields.string(raw, "rejected"), **fields.grading(raw), **fields.images(raw)}

    def requests(self, rules: Rules = Rules()) -> list:
        g = self.grading()
        if rules.pairwise:
            return list(self.judge_requests()) + null_requests(self.prompt, self.chosen, rules, g)
        return [ScoreRequest(self.prompt, self.chosen, **g), ScoreRequest(self.prompt, self.rejected, **g),
                *null_requests(self.prompt, self.chosen, rules, g)]

    def judge_requests(self) -> tuple[JudgeRequest, JudgeRequest]:
        """Both orders: chosen shown first, then chosen shown second."""
        g = self.grading()
        return (JudgeRequest(self.prompt, self.chosen, self.rejected, **g),
                JudgeRequest(self.prompt, self.rejected, self.chosen, **g))

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        found = [results[r] for r in self.requests(rules)[:2]]
        outcome = judge_both_orders(*found, rules.both_orders) if rules.pairwise else judge_pair(*found)
        return with_null(outcome, self.prompt, self.chosen, results, rules, self.grading())

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        if "verdicts" in d:  # judged in both orders
            return (f"incorrect preference ({self.source})\n  the judge said {d['verdicts'][0]} with chosen as A and "
                    f"{d['verdicts'][1]} with chosen as B")
        return (
            f"incorrect preference ({self.source})\n"
            f"  chosen   score {outcome.chosen_score:.6g}: {preview(self.chosen)}\n"
            f"  rejected score {outcome.rejected_score:.6g}: {preview(self.rejected)}\n"
            f"  margin {outcome.margin:+.6g} (must be > 0)"
        )

    def content_hash(self) -> str:  # unchanged since the first release: stored baselines stay valid
        return _digest([prompt_key(self.prompt), self.chosen, self.rejected, *grading_parts(self), *image_parts(self)])

    def texts(self) -> list:
        return [self.prompt, self.chosen, self.rejected]

    def report_texts(self) -> dict:
        return {"prompt": prompt_text(self.prompt), "chosen": clip(self.chosen), "rejected": clip(self.rejected),
                **report_images(self)}

    def length_prefers_chosen(self) -> bool:
        """The length-bias baseline: the longer answer wins, equal lengths are wrong."""
        return len(self.chosen) > len(self.rejected)

    def chosen_longer(self) -> bool:
        return len(self.chosen) > len(self.rejected)


# -- --rm-null-answer: the chosen answer against a constant non-answer (pair and judged items) --
def null_requests(prompt: Prompt, chosen: str, rules: Rules, grading: dict) -> list:
    """[] without --rm-null-answer. A pairwise model: (chosen, NULL) and (NULL, chosen), the null
    answer shown as B, then as A; a scalar model: the null answer's own score (the chosen
    answer's is the item's own request)."""
    null = rules.null_answer
    if null is None:
        return []
    if rules.pairwise:
        return [JudgeRequest(prompt, chosen, null, **grading), JudgeRequest(prompt, null, chosen, **grading)]
    return [ScoreRequest(prompt, null, **grading)]


def with_null(outcome: ItemOutcome, prompt: Prompt, chosen: str, results: Mapping, rules: Rules, grading: dict) -> ItemOutcome:
    """The item's outcome, unchanged, with the null comparison in details["null"]: whether the
    null answer won when shown as A and as B (a scalar model has one comparison: both the same)."""
    requests = null_requests(prompt, chosen, rules, grading)
    if not requests:
        return outcome
    found = [results[r] for r in requests]
    if not rules.pairwise:
        found.append(results[ScoreRequest(prompt, chosen, **grading)])
    problem = _problem(found)
    if problem:
        outcome.details["null"] = {"error": problem.error}
    elif rules.pairwise:
        as_b, as_a = found[0].score, found[1].score  # (chosen, NULL): null is B; (NULL, chosen): null is A
        outcome.details["null"] = {"verdicts": [verdict(as_a), verdict(as_b)], "wins_as_a": as_a > 0, "wins_as_b": as_b < 0}
    else:
        null_score, chosen_score = float(found[0].score), float(found[1].score)
        wins = null_score > chosen_score
        outcome.details["null"] = {"null_score": null_score, "chosen_score": chosen_score, "wins_as_a": wins, "wins_as_b": wins}
    return outcome

