"""The adapter interface every model kind implements, and the spec it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from ..items import ScoreRequest, ScoreResult


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
    """Scores (prompt, answer) sequences; what every model kind builds.

    The engine calls `prepare` once per distinct request of a chunk, sorts the results by
    `length`, and calls `score_batch` on consecutive slices. `name`, `kind`, `dtype`,
    `device` and `versions` (library -> version) are reported. The capabilities:
    `pairwise` (it judges (prompt, A, B): it is given JudgeRequests in both orders) and
    `steps` (it scores a StepsRequest with one score per step, as a process reward model),
    `images` (it sees a request's images; others error items with images).
    `close()` releases what the adapter holds (connections, weights); it is called once,
    at the end of the run.

    Adapters from a conftest.py or a plugin may leave out `pairwise`, `steps`, `versions`
    and `close`: read them through `capabilities`, `model_versions` and `close_model`,
    which give the defaults (False, False, {}, nothing to close).
    """

    name: str
    kind: str
    dtype: str
    device: str
    pairwise: bool
    steps: bool
    versions: dict

    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]: ...

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Capabilities:
    """What a loaded model can score."""

    pairwise: bool = False  # judges (prompt, A, B)
    steps: bool = False  # gives per-step scores
    images: bool = False  # sees the images of a request (items with `images`)


def capabilities(model: Any) -> Capabilities:
    """The capabilities of any adapter, the built-in ones or one a user wrote (defaults: False)."""
    return Capabilities(pairwise=bool(getattr(model, "pairwise", False)), steps=bool(getattr(model, "steps", False)),
                        images=bool(getattr(model, "images", False)))


def blind_to_images(model: Any, requests: Sequence) -> dict:
    """request -> ScoreResult(error) for each request with images that `model` cannot see
    ({} for a model with `images`): an image is never silently dropped."""
    if capabilities(model).images:
        return {}
    why = (f"the model cannot see images: a {getattr(model, 'kind', '?')} model scores text only "
           "(score items with images through an http model on a vision-language server)")
    return {r: ScoreResult(None, error=why) for r in requests if getattr(r, "images", ())}


def model_versions(model: Any) -> dict[str, str]:
    """library -> version, as strings ({} when the adapter says nothing)."""
    return {str(k): str(v) for k, v in (getattr(model, "versions", None) or {}).items()}


def model_info(model: Any) -> dict:
    """kind, dtype, device and versions of a loaded adapter (None for what it does not say)."""
    return {"kind": getattr(model, "kind", None), "dtype": getattr(model, "dtype", None),
            "device": getattr(model, "device", None), "versions": model_versions(model)}


def close_model(model: Any) -> None:
    """Release what the adapter holds; nothing for one without `close`, or for None."""
    close = getattr(model, "close", None)
    if callable(close):
        close()
