"""`steps`: a solution as steps, label = index of the earliest wrong step or -1 (ProcessBench);
needs a process reward model, which scores every step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import CORRECT, ERROR, INCORRECT, Item, ItemOutcome, Prompt, Rules, StepsRequest, clip, score_list
from .rules import _count, first_error_step


@dataclass(frozen=True, kw_only=True)
class StepsItem(Item):
    """A step-by-step solution; label = index of the earliest wrong step, -1 if all are right."""

    problem: str
    steps: tuple
    label: int
    kind: ClassVar[str] = "steps"
    FIELDS: ClassVar[tuple] = ("problem", "steps", "label")
    REPORT_BLOCK: ClassVar[str] = "steps"

    @classmethod
    def report_block(cls, records: list[dict]) -> dict | None:
        """ProcessBench's figures per subset: accuracy on erroneous and on correct solutions, and F1."""
        by_subset: dict[str, list[dict]] = {}
        for r in records:
            if r["outcome"] != ERROR and r.get("details"):
                by_subset.setdefault(r["subset"], []).append(r)
        if not by_subset:
            return None
        out = {}
        for name, rs in sorted(by_subset.items()):
            erroneous = [r["outcome"] == CORRECT for r in rs if r["details"]["label"] >= 0]
            correct = [r["outcome"] == CORRECT for r in rs if r["details"]["label"] == -1]
            out[name] = processbench_f1(erroneous, correct)
        return out

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        problem = fields.string(raw, "problem")
        steps = fields.strings(raw, "steps")
        label = raw.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
            raise fields.FieldError("label", f"must be the index of the earliest wrong step (0..{len(steps) - 1}) or -1, got {label!r}")
        return {"problem": problem, "steps": steps, "label": label}

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

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        where = "no wrong step" if d["label"] == -1 else f"the first wrong step is {d['label']}"
        said = "no wrong step" if d["prediction"] == -1 else f"step {d['prediction']}"
        return f"incorrect {self.kind} ({self.source})\n  {where}; the model flagged {said}\n  step scores {score_list(d['step_scores'])}"

    def texts(self) -> list:
        return [self.problem, *self.steps, str(self.label)]

    def report_texts(self) -> dict:
        return {"prompt": clip(self.problem),
                "answers": [{"label": f"step {k + 1}", "text": clip(s)} for k, s in enumerate(self.steps)]}


def processbench_f1(erroneous: list[bool], correct: list[bool]) -> dict:
    """F1 = harmonic mean of the accuracy on erroneous and on correct solutions (0 when both are 0)."""
    acc_error = sum(erroneous) / len(erroneous) if erroneous else None
    acc_correct = sum(correct) / len(correct) if correct else None
    if acc_error is None or acc_correct is None:
        f1 = None
    else:
        f1 = 2 * acc_error * acc_correct / (acc_error + acc_correct) if acc_error + acc_correct else 0.0
    return {"n_error": len(erroneous), "n_correct": len(correct), "acc_error": acc_error, "acc_correct": acc_correct, "f1": f1}
