"""`--rm-model=scores:PATH`: replay the scores of a score file instead of running a model.

The file is the JSONL that `--rm-save-scores` writes (see pytest_rmbench.scorefile for its
rules). Every (prompt, answer) an item needs is looked up; one that the file lacks errors
that item alone, with a message naming the prompt and the answer.
"""

from __future__ import annotations

from typing import Sequence

from ..items import ScoreRequest
from ..scorefile import ScoreFileError, normalize_prompt, read_scores, request_key, shorten, shorten_prompt
from .base import ModelLoadError, ModelSpec, Prepared

PREFIX = "scores:"


class MissingScoreError(LookupError):
    """The score file has no score for a (prompt, answer) an item needs."""


class ScoresModel:
    kind = "scores"
    dtype = "n/a"
    device = "cpu"

    def __init__(self, name: str, path: str, scores: dict):
        self.name = name
        self.path = path
        self.scores = scores
        self._prompts = {prompt for prompt, _ in scores}

    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]:
        out = []
        for r in requests:
            if not isinstance(r, ScoreRequest):
                raise TypeError(
                    "a score file holds scores of (prompt, answer) sequences; it cannot answer a pairwise judge's request"
                )
            out.append(Prepared(r, len(r.answer)))
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        out = []
        for p in batch:
            score = self.scores.get(request_key(p.request))
            if score is None:
                raise MissingScoreError(self.describe_missing(p.request))
            out.append(score)
        return out

    def describe_missing(self, request: ScoreRequest) -> str:
        if normalize_prompt(request.prompt) in self._prompts:
            why = "it has scores for this prompt, but not for this answer"
        else:
            why = "it has no score for this prompt"
        return (
            f"no score in {self.path} for the answer {shorten(request.answer)} "
            f"to the prompt {shorten_prompt(request.prompt)} ({why})"
        )


def score_file_path(model: str) -> str:
    return model[len(PREFIX):] if model.startswith(PREFIX) else model


def build(spec: ModelSpec) -> ScoresModel:
    path = score_file_path(spec.model)
    if not path:
        raise ModelLoadError("--rm-model=scores:PATH needs the path of a score file (JSONL of {prompt, answer, score})")
    try:
        scores = read_scores(path)
    except ScoreFileError as exc:
        raise ModelLoadError(f"cannot use the score file: {exc}") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read the score file {path!r}: {exc.strerror or exc}") from None
    return ScoresModel(spec.model, path, scores)
