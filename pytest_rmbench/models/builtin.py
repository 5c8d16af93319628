"""`builtin:length` and `builtin:random` (or `builtin:random:SEED`): no torch, no download, deterministic everywhere."""

from __future__ import annotations

import hashlib
from typing import Sequence

from ..items import ScoreRequest
from .base import ModelLoadError, ModelSpec, Prepared

NAMES = ("length", "random")


class BuiltinModel:
    name: str  # builtin:length or builtin:random
    kind = "builtin"
    dtype = "n/a"
    device = "cpu"
    pairwise = False
    steps = False
    versions: dict = {}  # no library scores

    def __init__(self, which: str, seed: int = 0):
        if which not in NAMES:
            raise ModelLoadError(
                f"unknown built-in model 'builtin:{which}'; choose one of "
                + ", ".join(f"builtin:{n}" for n in NAMES)
            )
        self.which = which
        self.seed = seed
        self.name = f"builtin:{which}"

    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]:
        return [Prepared(r, len(r.answer)) for r in requests]

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        if self.which == "length":
            return [float(len(p.request.answer)) for p in batch]
        return [self._random_score(p.request) for p in batch]

    def _random_score(self, request: ScoreRequest) -> float:
        # A pure function of seed and text: the same in every process (unlike hash()).
        digest = hashlib.blake2b(
            f"{self.seed}\0{request.prompt_key()}\0{request.answer}".encode("utf-8", "surrogatepass"),
            digest_size=8,
        ).digest()
        return int.from_bytes(digest, "big") / 2**64

    def close(self) -> None:
        pass  # nothing held


def build(spec: ModelSpec) -> BuiltinModel:
    """builtin:NAME, or builtin:random:SEED (a seed of its own beside --rm-seed: several random
    baselines in one run of several models)."""
    which, _, seed = spec.model.split(":", 1)[1].partition(":")
    if seed and (which != "random" or not seed.isdigit()):
        raise ModelLoadError(f"'{spec.model}': only builtin:random takes a seed, as builtin:random:SEED (an integer)")
    return BuiltinModel(which, seed=int(seed) if seed else spec.seed)
