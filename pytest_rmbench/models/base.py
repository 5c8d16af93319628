"""The adapter interface every model kind implements, and the spec it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from ..items import ScoreRequest


class ModelLoadError(Exception):
    """The model could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for: `--rm-model`, `--rm-kind` and the kind's options."""

    model: str
    kind: str = "auto"
    dtype: str | None = None
    device: str | None = None
    max_length: int | None = None
    seed: int = 0
    trust_remote_code: bool = False
    allow_pickle: bool = False
    gpus: int = 1  # GPUs this process may use (--rm-gpus-per-worker)
    options: dict = field(default_factory=dict)


@dataclass
class Prepared:
    """A request made ready for the model: `length` drives sorting and batching."""

    request: ScoreRequest
    length: int
    truncated: bool = False
    payload: Any = None


@runtime_checkable
class RewardModelAdapter(Protocol):
    """Scores (prompt, answer) sequences.

    The engine calls `prepare` once per distinct request of a chunk, sorts the results by
    `length`, and calls `score_batch` on consecutive slices. Attributes `name`, `kind`,
    `dtype` and `device` are reported.
    """

    name: str
    kind: str
    dtype: str
    device: str

    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]: ...

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]: ...
