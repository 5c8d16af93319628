"""`ties`: several correct and several incorrect answers (RewardBench 2's Ties); accurate
when the worst correct answer beats the best incorrect one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .lists import AnswerListsItem


@dataclass(frozen=True, kw_only=True)
class TiesItem(AnswerListsItem):
    """Several correct and several incorrect answers (RewardBench 2's Ties)."""

    kind: ClassVar[str] = "ties"

    def decide(self, chosen, rejected):
        accurate = min(chosen) > max(rejected)
        details = {
            "accurate": accurate,
            "diff_corr_margin": max(chosen) - min(chosen),
            "corr_incorrect_margin": min(chosen) - max(rejected),
        }
        return accurate, (1.0 if accurate else 0.0), min(chosen), details
