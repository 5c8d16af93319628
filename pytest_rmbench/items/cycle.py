"""`cycle`: three answers to one prompt, ordered best to worst; the model must rank them so.

A reward model scores each answer and passes when score(best) > score(middle) > score(worst),
strict. A pairwise judge is asked about the pairs (best, middle), (middle, worst) and
(best, worst), each in both orders; each pair's verdict is JudgeBench's counter rule (as for
`pair` items), and the item passes when all three pairs prefer the better answer. Its details
say whether the judge's three preferences form a cycle (best > middle > worst > best, or the
reverse): a judge that is not even transitive on one prompt.

This module and one line in the ITEM_KINDS table of items/__init__.py are the whole kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import (CORRECT, ERROR, INCORRECT, Item, ItemOutcome, JudgeRequest, Prompt, Rules, ScoreRequest, clip, prompt_text,
                   score_list)
from .rules import _problem, both_orders_counter

LABELS = ("best", "middle", "worst")
PAIRS = ((0, 1), (1, 2), (0, 2))  # (better, worse), by index into answers


@dataclass(frozen=True, kw_only=True)
class CycleItem(Item):
    """Three answers ordered best to worst: the model's ranking must agree, pair by pair."""

    prompt: Prompt
    answers: tuple
    kind: ClassVar[str] = "cycle"
    REPORT_BLOCK: ClassVar[str] = "cycle"
    scalar_only: ClassVar[bool] = False
    FIELDS: ClassVar[tuple] = ("prompt", "answers")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        prompt = fields.prompt(raw)
        answers = fields.strings(raw, "answers")
        if len(answers) != 3:
            raise fields.FieldError("answers", f"must hold exactly three answers (best, middle, worst), got {len(answers)}")
        return {"prompt": prompt, "answers": answers}

    @classmethod
    def report_block(cls, records: list[dict]) -> dict | None:
        """How often a pairwise judge's three preferences formed a cycle (A>B, B>C, C>A):
        the intransitivity a preference model can show and a scalar reward model cannot."""
        judged = [r for r in records if r["outcome"] != ERROR and "intransitive" in (r.get("details") or {})]
        if not judged:
            return None
        cycles = sum(bool(r["details"]["intransitive"]) for r in judged)
        return {"n": len(judged), "intransitive": cycles, "intransitivity": cycles / len(judged)}

    def requests(self, rules: Rules = Rules()) -> list:
        if rules.pairwise:  # each pair in both orders: the better answer shown as A, then as B
            a = self.answers
            return [JudgeRequest(self.prompt, *shown) for i, j in PAIRS for shown in ((a[i], a[j]), (a[j], a[i]))]
        return [ScoreRequest(self.prompt, answer) for answer in self.answers]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        found = [results[r] for r in self.requests(rules)]
        problem = _problem(found)
        if problem:
            return problem
        truncated = any(r.truncated for r in found)
        if rules.pairwise:
            counters, margins = {}, []
            for k, (i, j) in enumerate(PAIRS):
                first, swapped = found[2 * k].score, found[2 * k + 1].score
                counters[f"{i}>{j}"] = both_orders_counter(first, swapped)[1]
                margins.append((first - swapped) / 2)
            signs = [(c > 0) - (c < 0) for c in counters.values()]  # 0>1, 1>2, 0>2
            intransitive = signs in ([1, 1, -1], [-1, -1, 1])  # 0>1>2>0, or 0<1<2<0
            passed = all(s > 0 for s in signs)
            return ItemOutcome(CORRECT if passed else INCORRECT, min(margins), 0.0, truncated,
                               details={"pairs": counters, "intransitive": intransitive})
        scores = [r.score for r in found]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        passed = scores[0] > scores[1] > scores[2]
        return ItemOutcome(CORRECT if passed else INCORRECT, float(scores[0]), float(max(scores[1:])), truncated,
                           details={"scores": scores, "order": order})

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        head = f"incorrect {self.kind} ({self.source})"
        if "pairs" in d:
            said = ", ".join(f"{pair} {counter:+d}" for pair, counter in d["pairs"].items())
            cycle = "\n  the judge's preferences form a cycle (intransitive)" if d["intransitive"] else ""
            return f"{head}\n  the judge's counters (0 best, 2 worst; each must be > 0): {said}{cycle}"
        return (f"{head}\n  scores best, middle, worst {score_list(d['scores'])} (must strictly decrease)\n"
                f"  ranked by the model: {', '.join(LABELS[i] for i in d['order'])}")

    def texts(self) -> list:
        return [self.prompt, *self.answers]

    def report_texts(self) -> dict:
        return {"prompt": prompt_text(self.prompt),
                "answers": [{"label": label, "text": clip(a)} for label, a in zip(LABELS, self.answers)]}

    def chosen_longer(self) -> None:
        return None
