"""`--rm-model=scores:PATH`: replay the scores of a score file instead of running a model.

The file is the JSONL that `--rm-save-scores` writes (see pytest_rmbench.storage.scorefile for its
rules). Every (prompt, answer) an item needs is looked up, and every (prompt, steps) an
item of kind `steps` needs (the file's steps lines hold one score per step, as a process
reward model gives). One that the file lacks errors that item alone, with a message naming
the prompt and the answer (or the first step).
"""

from __future__ import annotations

from typing import Sequence

from ..items import ScoreRequest, StepsRequest
from ..storage.scorefile import (
    ScoreFileError,
    is_steps_key,
    normalize_prompt,
    read_scores,
    request_key,
    shorten,
    shorten_prompt,
)
from .base import ModelLoadError, ModelSpec, Prepared

PREFIX = "scores:"
# why a score is missing, for a steps request (True) or an answer's (False): (the file has
# scores of this kind for the prompt, only scores of the other kind)
WHY_MISSING = {
    True: ("it has step scores for this prompt, but not for these steps", "it has answer scores for this prompt, but no step scores"),
    False: ("it has scores for this prompt, but not for this answer", "it has step scores for this prompt, but no answer scores"),
}


class MissingScoreError(LookupError):
    """The score file has no score for a (prompt, answer) or (prompt, steps) an item needs."""


class ScoresModel:
    name: str  # scores:PATH
    kind = "scores"
    dtype = "n/a"
    device = "cpu"
    pairwise = False
    steps = True  # answers a StepsRequest from the file's steps lines
    versions: dict = {}  # no library scores

    def __init__(self, name: str, path: str, scores: dict):
        self.name = name
        self.path = path
        self.scores = scores
        self._prompts = {key[0] for key in scores if not is_steps_key(key)}
        self._steps_prompts = {key[0] for key in scores if is_steps_key(key)}

    def prepare(self, requests: Sequence[ScoreRequest | StepsRequest]) -> list[Prepared]:
        out = []
        for r in requests:
            if isinstance(r, StepsRequest):
                out.append(Prepared(r, sum(len(step) for step in r.steps)))
            elif isinstance(r, ScoreRequest):
                out.append(Prepared(r, len(r.answer)))
            else:
                raise TypeError(
                    "a score file holds scores of (prompt, answer) sequences and of (prompt, steps) solutions; "
                    "it cannot answer a pairwise judge's request"
                )
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list:
        out = []
        for p in batch:
            score = self.scores.get(request_key(p.request))
            if score is None:
                raise MissingScoreError(self.describe_missing(p.request))
            out.append(score)
        return out

    def describe_missing(self, request: ScoreRequest | StepsRequest) -> str:
        steps = isinstance(request, StepsRequest)
        why = self._why_missing(normalize_prompt(request.prompt), steps)
        if steps:
            first = shorten(request.steps[0]) if request.steps else "(none)"
            return (
                f"no step scores in {self.path} for the {len(request.steps)} step(s) starting {first} "
                f"of the prompt {shorten_prompt(request.prompt)} ({why})"
            )
        return (
            f"no score in {self.path} for the answer {shorten(request.answer)} "
            f"to the prompt {shorten_prompt(request.prompt)} ({why})"
        )

    def _why_missing(self, prompt, steps: bool) -> str:
        """What the file has for this (normalized) prompt, for a steps request or an answer's."""
        same, other = (self._steps_prompts, self._prompts) if steps else (self._prompts, self._steps_prompts)
        has_same, has_other = WHY_MISSING[steps]
        if prompt in same:
            return has_same
        if prompt in other:
            return has_other
        return "it has no score for this prompt"

    def close(self) -> None:
        pass  # the file was read whole when the model was built: nothing held


def score_file_path(model: str) -> str:
    return model[len(PREFIX):] if model.startswith(PREFIX) else model


def build(spec: ModelSpec) -> ScoresModel:
    path = score_file_path(spec.model)
    if not path:
        raise ModelLoadError(
            "--rm-model=scores:PATH needs the path of a score file "
            "(JSONL of {prompt, answer, score} or {prompt, steps, scores})"
        )
    try:
        scores = read_scores(path)
    except ScoreFileError as exc:
        raise ModelLoadError(f"cannot use the score file: {exc}") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read the score file {path!r}: {exc.strerror or exc}") from None
    return ScoresModel(spec.model, path, scores)
