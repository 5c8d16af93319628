"""The pass rules as formulas: plain functions of scores, shared by the item kinds."""

from __future__ import annotations

import math

from .base import CORRECT, ERROR, INCORRECT, ItemOutcome, ScoreResult

LABELS = ("A>B", "B>A")
SWAPPED = {"A>B": "B>A", "B>A": "A>B", "tie": "tie"}


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


def both_orders_counter(first: float, swapped: float) -> tuple[list[str], int]:
    """A judge asked twice, the preferred answer shown as A then as B: (the two verdicts, the
    JudgeBench counter for "the preferred answer wins")."""
    verdicts = [verdict(first), verdict(swapped)]
    return verdicts, judgebench_counter([verdicts[0], SWAPPED[verdicts[1]]], "A>B")


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


def prefers_first(first: float, swapped: float, both_orders: str = "counter") -> bool:
    """Whether a pairwise model, asked with the answer shown as A (`first`) and as B (`swapped`),
    prefers it: JudgeBench's counter, or PairRM's compare logit (`difference`)."""
    if both_orders == "difference":
        return first - swapped > 0
    return both_orders_counter(first, swapped)[1] > 0


def judge_both_orders(chosen_first: ScoreResult, chosen_second: ScoreResult, both_orders: str = "counter") -> ItemOutcome:
    """JudgeBench's rule: correct when both orders are right, or one is right and the other a tie
    (or, with `difference`, PairRM's: the compare logit favours the chosen answer)."""
    truncated = chosen_first.truncated or chosen_second.truncated
    problem = _problem([chosen_first, chosen_second])
    if problem:
        return problem
    verdicts, counter = both_orders_counter(chosen_first.score, chosen_second.score)
    # as a margin: how much the judge favours the chosen answer, averaged over the two orders
    margin = (chosen_first.score - chosen_second.score) / 2
    passed = prefers_first(chosen_first.score, chosen_second.score, both_orders)
    return ItemOutcome(
        CORRECT if passed else INCORRECT, margin, 0.0, truncated,
        details={"verdicts": verdicts, "counter": counter},
    )


def _problem(found: list[ScoreResult], names: tuple = ()) -> ItemOutcome | None:
    """An error outcome when a score failed or is not a finite number; else None."""
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
