"""`best_of_n`: several chosen and several rejected answers to one prompt.

``rule: fractional`` (RewardBench 2, the default): credit = chosen answers among the top
scores / all answers tied at the top. ``rule: strict`` (RewardMATH): every chosen answer
above every rejected one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from .fields import FieldError
from .lists import AnswerListsItem
from .rules import fractional_credit, reciprocal_rank


@dataclass(frozen=True, kw_only=True)
class BestOfNItem(AnswerListsItem):
    """Several chosen and several rejected answers to one prompt."""

    rule: str = "fractional"  # or "strict"
    kind: ClassVar[str] = "best_of_n"
    RULES: ClassVar[tuple] = ("fractional", "strict")
    FIELDS: ClassVar[tuple] = ("prompt", "chosen", "rejected", "rule")

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        rule = raw.get("rule", "fractional")
        if rule not in cls.RULES:
            raise FieldError("rule", f"must be one of {', '.join(cls.RULES)}, got {rule!r}")
        return {**super().from_fields(raw), "rule": rule}

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

    def texts(self) -> list:
        return [*super().texts(), self.rule]
