"""Benchmark items as plain data, and the rules that turn scores into an outcome.

No pytest and no torch here: collection builds these, the engine scores the requests
they ask for, and each item's rule turns the scores into an outcome with a credit in
[0, 1]. An item passes when it earns full credit.

Item kinds (the `kind` field of a benchmark item), one module each:

- ``pair`` (pair.py): score(chosen) > score(rejected), strict.
- ``best_of_n`` (best_of_n.py): several chosen and rejected answers; ``rule: fractional``
  (RewardBench 2: credit = chosen answers among the top scores / all answers tied at the
  top) or ``rule: strict`` (every chosen answer above every rejected one, as RewardMATH).
- ``style_matrix`` (style_matrix.py): k chosen and k rejected styles (RM-Bench, k = 3); credit
  is the mean of the hard (upper triangle), normal (diagonal) and easy (lower triangle) accuracies.
- ``ties`` (ties.py): several correct and several incorrect answers (RewardBench 2 Ties);
  accurate when the worst correct answer beats the best incorrect one.
- ``judged`` (judged.py): question, response_a, response_b and label "A>B" / "B>A" (JudgeBench).
- ``steps`` (steps.py): a solution as steps, label = index of the earliest wrong step or -1
  (ProcessBench); needs a process reward model.
- ``consistency`` (consistency.py): score(prompt, answer) > score(contrast_prompt, answer).
- ``cycle`` (cycle.py): k >= 3 answers meaning the cyclic preference a0 > a1 > ... > a(k-1) > a0;
  credit = the share of the k edges predicted (a pairwise model: each edge in both orders). A
  scalar (Bradley-Terry) model can never pass: at most (k-1)/k, which the report shows.

The other modules: base.py (the Item base class, requests, results, outcomes, prompts,
ItemProblem, Section), fields.py (the one validator of fields, for files and suites),
rules.py (the formulas), lists.py (the base of the answer-list kinds), files.py (YAML /
JSONL files -> items).

Adding a kind: a module with an Item subclass (`kind`, `FIELDS`, `from_fields`, `requests`,
`outcome`, `explain`, `texts`, `report_texts`) and one line in ITEM_KINDS below; a package
adds one through the entry point group ``pytest_rmbench.item_kinds`` (NAME = "module:Class").
"""

from __future__ import annotations

from ..registry import Registry
from .base import (ANSWER_PREVIEW, CORRECT, ERROR, INCORRECT, NOT_LOADED, TEXT_LIMIT, Item, ItemOutcome, ItemProblem, JudgeRequest,
                   MultiHeadScore, Prompt, Rules, ScoreRequest, ScoreResult, Section, StepsRequest, clip, freeze_prompt,
                   item_outcome, prompt_key, prompt_messages, prompt_text, request_parts)
from .fields import FieldError
from .rules import (LABELS, SWAPPED, first_error_step, fractional_credit, judge_both_orders, judge_pair,
                    judgebench_counter, reciprocal_rank, style_triangles, verdict)

ITEM_KINDS: Registry[type[Item]] = Registry("kind", "pytest_rmbench.item_kinds", {
    "pair": "pytest_rmbench.items.pair:PairItem",
    "best_of_n": "pytest_rmbench.items.best_of_n:BestOfNItem",
    "style_matrix": "pytest_rmbench.items.style_matrix:StyleMatrixItem",
    "ties": "pytest_rmbench.items.ties:TiesItem",
    "judged": "pytest_rmbench.items.judged:JudgedItem",
    "steps": "pytest_rmbench.items.steps:StepsItem",
    "consistency": "pytest_rmbench.items.consistency:ConsistencyItem",
    "cycle": "pytest_rmbench.items.cycle:CycleItem",
})

# the kind classes by their import names, loaded when first named (a run loads the kinds it meets)
_CLASSES = {"PairItem": "pair", "BestOfNItem": "best_of_n", "StyleMatrixItem": "style_matrix", "TiesItem": "ties",
            "JudgedItem": "judged", "StepsItem": "steps", "ConsistencyItem": "consistency", "CycleItem": "cycle"}


def __getattr__(name: str):
    if name in _CLASSES:
        return ITEM_KINDS.get(_CLASSES[name])
    if name == "AnswerListsItem":
        from .lists import AnswerListsItem

        return AnswerListsItem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ANSWER_PREVIEW", "CORRECT", "ERROR", "INCORRECT", "NOT_LOADED", "ITEM_KINDS", "LABELS", "SWAPPED", "TEXT_LIMIT",
    "AnswerListsItem", "BestOfNItem", "ConsistencyItem", "CycleItem", "FieldError", "Item", "ItemOutcome", "ItemProblem",
    "JudgeRequest", "JudgedItem", "MultiHeadScore", "PairItem", "Prompt", "Rules", "ScoreRequest", "ScoreResult",
    "Section", "StepsItem", "StepsRequest", "StyleMatrixItem", "TiesItem",
    "clip", "first_error_step", "fractional_credit", "freeze_prompt", "item_outcome", "judge_both_orders", "judge_pair",
    "judgebench_counter", "prompt_key", "prompt_messages", "prompt_text", "reciprocal_rank", "request_parts",
    "style_triangles", "verdict",
]
