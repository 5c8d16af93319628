"""`best_of_n`: several chosen and several rejected answers to one prompt.

``rule: fractional`` (RewardBench 2, the default): credit = chosen answers among the top
scores / all answers tied at the top. ``rule: strict`` (RewardMATH): every chosen answer
above every rejected one.

Under a pairwise model (a judge or a preference model: it scores JudgeRequest(prompt, A, B),
positive = A better) each answer first gets a score from comparisons, by the run's
``--rm-pairwise-rule`` (Rules.pairwise_rule), and the item's rule above then applies to
those scores:

- ``round_robin`` (default): all n(n-1) ordered comparisons, each unordered pair in both
  placements. M[i][j] is the score of answer i shown first against answer j; answer i's
  score is the mean over the others of (M[i][j] - M[j][i]), as PairRM's `rank` does.
- ``tournament``: single elimination over ceil(log2 n) rounds; the bracket order is a
  permutation seeded by the item's content hash (deterministic across runs and workers).
  Each match asks both placements and is won by the answer with M[i][j] - M[j][i] > 0;
  a tie (exactly 0) goes to the answer earlier in the bracket. With an odd number of
  answers in a round the last one has a bye. An answer's score is the number of rounds it
  won, so the champion alone has the top score: `fractional` gives 1 when the champion
  is a chosen answer, else 0; `strict` needs every chosen answer to have won more
  rounds than every rejected one. A round's matches depend on the previous round, so
  the item asks for them round by round (`more_requests`, which the engine loops):
  2(n-1) forwards in all, against n(n-1) for round robin.

The details say which rule ran (`pairwise_rule`), how many comparisons it used
(`comparisons`, ordered JudgeRequests), and how many compared pairs flipped their verdict
with the placement (`order_flips` of `pairs`: M[i][j] and M[j][i] with the same sign, so
the model prefers a position, not an answer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Mapping

from . import fields
from .base import CORRECT, ERROR, GRADING_FIELDS, INCORRECT, ItemOutcome, JudgeRequest, Rules, ScoreRequest
from .fields import FieldError
from .images import report_images
from .lists import AnswerListsItem
from .rules import SWAPPED, _problem, fractional_credit, reciprocal_rank, verdict

PAIRWISE_RULES = ("round_robin", "tournament")


@dataclass(frozen=True, kw_only=True)
class BestOfNItem(AnswerListsItem):
    """Several chosen and several rejected answers to one prompt."""

    rule: str = "fractional"  # or "strict"
    kind: ClassVar[str] = "best_of_n"
    REPORT_BLOCK: ClassVar[str] = "pairwise_ranking"  # only when a pairwise model ranked the answers
    scalar_only: ClassVar[bool] = False  # a pairwise model ranks the answers by comparisons
    RULES: ClassVar[tuple] = ("fractional", "strict")
    FIELDS: ClassVar[tuple] = ("prompt", "chosen", "rejected", "rule", *GRADING_FIELDS, "images")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        rule = raw.get("rule", "fractional")
        if rule not in cls.RULES:
            raise FieldError("rule", f"must be one of {', '.join(cls.RULES)}, got {rule!r}")
        return {**super().from_fields(raw), "rule": rule, **fields.grading(raw), **fields.images(raw)}

    @classmethod
    def report_block(cls, records: list[dict]) -> dict | None:
        """The report figure of best_of_n under a pairwise model: which rule ran and what it cost
        (None when no item was ranked by comparisons)."""
        ranked = [r for r in records if r["outcome"] != ERROR and "pairwise_rule" in (r.get("details") or {})]
        if not ranked:
            return None
        rules = sorted({r["details"]["pairwise_rule"] for r in ranked})
        comparisons = sum(r["details"]["comparisons"] for r in ranked)
        pairs = sum(r["details"]["pairs"] for r in ranked)
        flips = sum(r["details"]["order_flips"] for r in ranked)
        return {"n": len(ranked), "rule": rules[0] if len(rules) == 1 else rules, "comparisons": comparisons,
                "comparisons_per_item": comparisons / len(ranked), "pairs": pairs, "order_flips": flips,
                "order_inconsistency": flips / pairs if pairs else None}

    # -- what to score -----------------------------------------------------------------------
    @property
    def answers(self) -> tuple:
        return (*self.chosen, *self.rejected)

    def requests(self, rules: Rules = Rules()) -> list:
        if not rules.pairwise:
            g = self.grading()  # a grader's rubric, reference and checklist travel with each answer
            return [ScoreRequest(self.prompt, a, **g) for a in self.answers] if g else super().requests(rules)
        if rules.pairwise_rule == "tournament":
            return self.more_requests({}, rules)
        return [self._judge(i, j) for i, j in self._ordered_pairs()]

    def more_requests(self, results: Mapping, rules: Rules = Rules()) -> list:
        """A tournament's next round, once the matches before it are scored; [] otherwise."""
        if not (rules.pairwise and rules.pairwise_rule == "tournament"):
            return []
        return [r for r in self._bracket(results)["needed"] if r not in results]

    def _judge(self, i: int, j: int) -> JudgeRequest:
        a = self.answers
        return JudgeRequest(self.prompt, a[i], a[j], **(getattr(self, "grading", None) or dict)())

    def _ordered_pairs(self) -> list[tuple[int, int]]:
        n = len(self.answers)
        return [(i, j) for i in range(n) for j in range(n) if i != j]

    def bracket_order(self) -> list[int]:
        """The tournament's seeding: answer indices shuffled by a generator seeded with the content hash."""
        order = list(range(len(self.answers)))
        random.Random(int(self.content_hash(), 16)).shuffle(order)
        return order

    def _bracket(self, results: Mapping) -> dict:
        """Plays the bracket as far as `results` allow: the matches played (i, j, compare
        score), rounds won per answer, and the requests of the round that waits ("needed")."""
        players = self.bracket_order()
        wins = [0] * len(self.answers)
        matches: list[tuple[int, int]] = []
        while len(players) > 1:
            pairs = [(players[k], players[k + 1]) for k in range(0, len(players) - 1, 2)]
            needed = [self._judge(*shown) for i, j in pairs for shown in ((i, j), (j, i))]
            if any(r not in results for r in needed):
                return {"needed": needed, "matches": matches, "wins": wins, "done": False}
            found = [results[r] for r in needed]
            if _problem(found) is not None:  # a failed comparison ends the bracket: the outcome errors
                return {"needed": [], "matches": matches + pairs, "wins": wins, "done": False}
            winners = []
            for i, j in pairs:
                margin = results[self._judge(i, j)].score - results[self._judge(j, i)].score
                winner = j if margin < 0 else i  # a tie goes to the answer earlier in the bracket
                wins[winner] += 1
                winners.append(winner)
                matches.append((i, j))
            players = winners + ([players[-1]] if len(players) % 2 else [])
        return {"needed": [], "matches": matches, "wins": wins, "done": True}

    # -- the rule ----------------------------------------------------------------------------
    def outcome(self, results: Mapping, rules: Rules = Rules()) -> ItemOutcome:
        if not rules.pairwise:
            return super().outcome(results, rules)
        if rules.pairwise_rule == "tournament":
            played = self._bracket(results)
            pairs = played["matches"]
            scores = [float(w) for w in played["wins"]]
        else:
            played = None
            n = len(self.answers)
            pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        asked = [self._judge(*shown) for i, j in pairs for shown in ((i, j), (j, i))]
        found = [results[r] if r in results else None for r in asked]
        if any(r is None for r in found):
            return ItemOutcome(ERROR, error="the tournament could not finish: a comparison was never scored")
        problem = _problem(found)
        if problem:
            return problem
        if played is None:
            n = len(self.answers)
            m = {(i, j): results[self._judge(i, j)].score for i, j in self._ordered_pairs()}
            scores = [sum(m[i, j] - m[j, i] for j in range(n) if j != i) / (n - 1) if n > 1 else 0.0 for i in range(n)]
        elif not played["done"]:
            return ItemOutcome(ERROR, error="the tournament could not finish: a comparison was never scored")
        flips = sum(verdict(results[self._judge(i, j)].score) != SWAPPED[verdict(results[self._judge(j, i)].score)]
                    for i, j in pairs)
        chosen, rejected = scores[: len(self.chosen)], scores[len(self.chosen):]
        passed, credit, shown, details = self.decide(chosen, rejected)
        details = {**details, "chosen_scores": chosen, "rejected_scores": rejected,
                   "pairwise_rule": "tournament" if played is not None else "round_robin",
                   "comparisons": len(asked), "pairs": len(pairs), "order_flips": flips}
        if played is not None:
            details["bracket"] = self.bracket_order()
        return ItemOutcome(CORRECT if passed else INCORRECT, shown, max(rejected), any(r.truncated for r in found),
                           details=details, credit=credit)

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

    def explain(self, outcome: ItemOutcome) -> str:
        text = super().explain(outcome)
        d = outcome.details
        if "pairwise_rule" in d:
            what = "rounds won in the tournament" if d["pairwise_rule"] == "tournament" else "mean compare margins (round robin)"
            text += (f"\n  scores are {what}: {d['comparisons']} comparisons, "
                     f"{d['order_flips']} of {d['pairs']} pairs flipped with the placement")
        return text

    def texts(self) -> list:
        return [*super().texts(), self.rule]

    def report_texts(self) -> dict:
        return {**super().report_texts(), **report_images(self)}
