"""The `reward_model` fixture's object, for benchmark tests written by hand in Python."""

from __future__ import annotations

from typing import Sequence

from .engine import BatchLimits, score_requests
from .items import ScoreRequest, freeze_prompt
from .models.base import Capabilities, RewardModelAdapter, capabilities


class RewardModel:
    """Scores answers with the session's reward model (loaded once per process)."""

    def __init__(self, adapter: RewardModelAdapter, limits: BatchLimits | None = None):
        self.adapter = adapter
        self.limits = limits or BatchLimits()

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def capabilities(self) -> Capabilities:
        """pairwise (a judge of (prompt, A, B), which `score` cannot use) and steps (per-step scores)."""
        return capabilities(self.adapter)

    def score_many(self, prompt, answers: Sequence[str]) -> list[float]:
        """Scores of several answers to one prompt (a string or a list of chat messages)."""
        frozen = freeze_prompt(prompt)
        requests = [ScoreRequest(frozen, a) for a in answers]
        results = score_requests(self.adapter, requests, self.limits)
        out = []
        for r in requests:
            result = results[r]
            if result.error or result.score is None:
                raise ValueError(f"could not score the answer: {result.error or 'no score'}")
            out.append(result.score)
        return out

    def score(self, prompt, answer: str) -> float:
        return self.score_many(prompt, [answer])[0]

    def prefers(self, prompt, chosen: str, rejected: str) -> bool:
        """True when chosen scores strictly above rejected (ties are wrong)."""
        chosen_score, rejected_score = self.score_many(prompt, [chosen, rejected])
        return chosen_score > rejected_score
