"""`cycle`: a cyclic human preference over k >= 3 answers to one prompt (#14).

`answers: [a0, a1, ..., a(k-1)]` means a0 > a1 > ... > a(k-1) > a0: k edges, each "answer i
is preferred to answer i+1 (mod k)". The item passes when the model predicts every edge;
its credit is the fraction of edges predicted.

- A scalar reward model predicts edge i when score(a_i) > score(a_(i+1 mod k)), strict. Scores
  are a total order, so a Bradley-Terry (scalar) model can never predict all k edges of a
  cycle: its credit is at most (k-1)/k, and the report shows that bound next to the result.
- A pairwise model (a judge, a preference model) is asked each edge in both orders (a_i shown
  as A, then as B); the edge is predicted when JudgeBench's counter is positive (as for
  `pair` items: both orders right, or one right and the other a tie).

The report block (`cycle`): n, mean credit, full passes, and per k the items, their mean
credit, passes and the Bradley-Terry bound (k-1)/k, with the model type that ran.

GPM's cyclic JSONL (`instruction, chosen, reject` rows, consecutive rows a->b, b->c, c->a)
is read into these items by items/files.py.

This module and one line in the ITEM_KINDS table of items/__init__.py are the whole kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import (CORRECT, ERROR, INCORRECT, Item, ItemOutcome, JudgeRequest, Prompt, Rules, ScoreRequest, clip, prompt_text,
                   score_list)
from .rules import _problem, both_orders_counter, prefers_first, verdict

PAIRWISE, SCALAR = "pairwise", "scalar"


def bt_bound(k: int) -> float:
    """The most credit a scalar (Bradley-Terry) model can earn on a k-cycle: (k-1)/k."""
    return (k - 1) / k


@dataclass(frozen=True, kw_only=True)
class CycleItem(Item):
    """answers[0] > answers[1] > ... > answers[k-1] > answers[0]: every edge must be predicted."""

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
        if len(answers) < 3:
            raise fields.FieldError("answers", f"a cycle needs at least three answers (a0 > a1 > a2 > a0), got {len(answers)}")
        first = {}
        for i, answer in enumerate(answers):
            if answer in first:
                raise fields.FieldError("answers", f"answer {i} repeats answer {first[answer]}: a cycle's answers must differ")
            first[answer] = i
        return {"prompt": prompt, "answers": answers}

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(preferred, other) by index: (0, 1), (1, 2), ..., (k-1, 0)."""
        k = len(self.answers)
        return [(i, (i + 1) % k) for i in range(k)]

    @classmethod
    def report_block(cls, records: list[dict]) -> dict | None:
        """n, mean credit and full passes, per model type and k, with the Bradley-Terry bound."""
        scored = [r for r in records if r["outcome"] != ERROR and "edges" in (r.get("details") or {})]
        if not scored:
            return None
        models = sorted({r["details"]["model"] for r in scored})
        by_k: dict[int, list[dict]] = {}
        for r in scored:
            by_k.setdefault(len(r["details"]["edges"]), []).append(r)

        def figures(rs: list[dict]) -> dict:
            credits = [r["credit"] for r in rs]
            return {"n": len(rs), "mean_credit": sum(credits) / len(credits), "passed": sum(r["outcome"] == CORRECT for r in rs)}

        return {
            "model": models[0] if len(models) == 1 else models,
            **figures(scored),
            "by_k": {str(k): {**figures(rs), "bt_bound": bt_bound(k)} for k, rs in sorted(by_k.items())},
            "bt_bound_rule": "a scalar (Bradley-Terry) model predicts at most k-1 of a k-cycle's k edges",
        }

    def requests(self, rules: Rules = Rules()) -> list:
        a = self.answers
        if rules.pairwise:  # each edge in both orders: the preferred answer shown as A, then as B
            return [JudgeRequest(self.prompt, *shown) for i, j in self.edges for shown in ((a[i], a[j]), (a[j], a[i]))]
        return [ScoreRequest(self.prompt, answer) for answer in a]

    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        found = [results[r] for r in self.requests(rules)]
        problem = _problem(found)
        if problem:
            return problem
        truncated = any(r.truncated for r in found)
        k = len(self.answers)
        if rules.pairwise:
            counters, verdicts, margins = [], [], []
            for e in range(k):
                first, swapped = found[2 * e].score, found[2 * e + 1].score
                counters.append(both_orders_counter(first, swapped)[1])
                verdicts.append([verdict(first), verdict(swapped)])
                margins.append((first - swapped) / 2)
            edges = [prefers_first(2 * m, 0.0, "difference") if rules.both_orders == "difference" else c > 0
                     for c, m in zip(counters, margins)]
            details = {"model": PAIRWISE, "edges": edges, "counters": counters, "edge_verdicts": verdicts}
            chosen, rejected = min(margins), 0.0  # the weakest edge, as a margin
        else:
            scores = [float(r.score) for r in found]
            edges = [scores[i] > scores[j] for i, j in self.edges]
            details = {"model": SCALAR, "edges": edges, "scores": scores}
            weakest = min(self.edges, key=lambda e: scores[e[0]] - scores[e[1]])
            chosen, rejected = scores[weakest[0]], scores[weakest[1]]
        credit = sum(edges) / k
        return ItemOutcome(CORRECT if all(edges) else INCORRECT, chosen, rejected, truncated, details=details, credit=credit)

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        k = len(self.answers)
        head = (f"incorrect {self.kind} ({self.source})\n  {sum(d['edges'])} of the {k} edges of the cycle "
                f"{' > '.join(str(i) for i in range(k))} > 0 predicted (credit {outcome.credit:.3g})")
        if d["model"] == PAIRWISE:
            said = ", ".join(f"{i}>{j} {c:+d}" for (i, j), c in zip(self.edges, d["counters"]))
            return f"{head}\n  the judge's counters (each must be > 0): {said}"
        missed = ", ".join(f"{i}>{j}" for (i, j), ok in zip(self.edges, d["edges"]) if not ok)
        return (f"{head}\n  scores by answer {score_list(d['scores'])}; edges missed: {missed}\n"
                f"  a scalar (Bradley-Terry) model predicts at most {k - 1} of {k} edges (credit <= {bt_bound(k):.3g})")

    def texts(self) -> list:
        return [self.prompt, *self.answers]

    def report_texts(self) -> dict:
        return {"prompt": prompt_text(self.prompt),
                "answers": [{"label": f"answer {i}", "text": clip(a)} for i, a in enumerate(self.answers)]}

    def chosen_longer(self) -> None:
        return None
