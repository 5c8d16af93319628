"""`consistency`: score(prompt, answer) > score(contrast_prompt, answer): the answer fits its
own instruction better than a near-duplicate one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import Item, ItemOutcome, Prompt, Rules, ScoreRequest, clip, prompt_text
from .rules import judge_pair


@dataclass(frozen=True, kw_only=True)
class ConsistencyItem(Item):
    """One answer must score higher under its own instruction than under a near-duplicate."""

    prompt: Prompt
    contrast_prompt: Prompt
    answer: str
    kind: ClassVar[str] = "consistency"
    FIELDS: ClassVar[tuple] = ("prompt", "contrast_prompt", "answer")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        found = {"prompt": fields.prompt(raw), "contrast_prompt": fields.prompt(raw, "contrast_prompt"),
                 "answer": fields.string(raw, "answer")}
        if found["prompt"] == found["contrast_prompt"]:
            raise fields.FieldError("contrast_prompt", "is the same as prompt: it must be a different (near-duplicate) instruction")
        return found

    def requests(self, rules: Rules = Rules()) -> list:
        return [ScoreRequest(self.prompt, self.answer), ScoreRequest(self.contrast_prompt, self.answer)]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        return judge_pair(*(results[r] for r in self.requests(rules)))

    def explain(self, outcome: ItemOutcome) -> str:
        return (f"incorrect {self.kind} ({self.source})\n  under its own prompt   {outcome.chosen_score:.6g}\n"
                f"  under the contrast prompt {outcome.rejected_score:.6g}\n"
                f"  margin {outcome.margin:+.6g} (must be > 0)")

    def texts(self) -> list:
        return [self.prompt, self.contrast_prompt, self.answer]

    def report_texts(self) -> dict:
        contrast = self.contrast_prompt
        return {"prompt": prompt_text(self.prompt), "answers": [
            # a chat contrast prompt is shown as the text of its clipped messages, as before
            {"label": "contrast prompt", "text": clip(contrast if isinstance(contrast, str) else prompt_text(contrast))},
            {"label": "answer", "text": clip(self.answer)}]}
