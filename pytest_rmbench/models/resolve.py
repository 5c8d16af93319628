"""The model, resolved once per run: its kind, capabilities and where it runs, from the spec alone.

`resolve(spec)` looks at the `--rm-model` string and, for a local model under `--rm-kind auto`,
reads its config.json once; it never loads the model and never raises. What cannot be told
from the spec (a causal LM under `--rm-kind auto`) is kept in `error`, and surfaces as the
model's load error when the model is built or its first items score.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .base import ModelLoadError, ModelSpec

# the built-in kinds, in the order help texts list them
BUILTIN_KINDS = ("classifier", "dpo", "judge", "prm", "preference", "gpm", "vision", "grader", "http", "scores", "builtin")
# kinds named by the model string's prefix
PREFIXES = (("builtin:", "builtin"), ("scores:", "scores"), ("http://", "http"), ("https://", "http"))
# transformers kinds loaded in this process: their scores are cached against the model's files
LOCAL_KINDS = ("classifier", "dpo", "judge", "prm", "preference", "gpm", "vision")  # a grader samples: not cached
# kinds that use no GPU of this process (a server, a file, a formula): -n auto gives them no worker per GPU
NO_GPU_KINDS = ("builtin", "http", "scores")


@dataclass(frozen=True)
class ResolvedModel:
    """What the run knows of its model before loading it."""

    spec: ModelSpec
    kind: str | None  # None when it cannot be told (see error)
    pairwise: bool | None  # judges (prompt, A, B); None: only the loaded model can tell
    local: bool  # a local transformers kind: scores cached against its files
    one_worker_per_gpu: bool  # it runs on a GPU in this process (-n auto: one worker per GPU)
    display_name: str  # the model string as reports and logs show it: no credentials from a URL
    error: str | None = None  # why the kind cannot be told: the model's load error
    architectures: tuple[str, ...] = ()  # from the local config.json, when it was read
    both_orders: str = "counter"  # how its two answer orders decide a pair: PairRM's compare logit for preference

    def require_kind(self) -> str:
        """The kind; ModelLoadError when it cannot be told."""
        if self.error is not None or self.kind is None:
            raise ModelLoadError(self.error or f"the kind of {self.display_name!r} cannot be told; say it with --rm-kind")
        return self.kind


def display_name(model: str) -> str:
    """`model` without the user:password of a URL."""
    if "://" not in model:
        return model
    from .http import strip_credentials

    return strip_credentials(model)


def read_architectures(model: str) -> list[str]:
    """`architectures` of the model's config.json, if the model is on this machine; else []."""
    return list(read_local_config(model)[1].get("architectures") or [])


def read_local_config(model: str) -> tuple[str | None, dict]:
    """(the model's local folder, its config.json as a dict): (None, {}) when not on this machine."""
    from .fingerprint import local_model_dir

    folder = local_model_dir(model)
    if folder is None:
        return None, {}
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        return folder, config if isinstance(config, dict) and isinstance(config.get("architectures") or [], list) else {}
    except (OSError, ValueError, TypeError, AttributeError):
        return folder, {}


def _vision_kind(model: str, folder: str | None, config: dict, architectures: tuple) -> tuple[str | None, str | None]:
    """(kind, error) for a vision-language model's folder: a value head (value_head.safetensors)
    or a ...ForSequenceClassification head makes it the vision kind; a generative one is said."""
    from .vision import has_value_head

    if has_value_head(folder) or any(a.endswith("ForSequenceClassification") for a in architectures):
        return "vision", None
    return None, (
        f"{model!r} is a vision-language model ({', '.join(architectures) or config.get('model_type', '?')}) without a "
        "reward head (no value_head.safetensors, not a ...ForSequenceClassification): score it as a pairwise judge "
        "(--rm-kind judge), or as a reward model with --rm-kind vision once its value head is beside it"
    )


def _kind_of(spec: ModelSpec) -> tuple[str | None, tuple[str, ...], str | None]:
    """(kind, architectures read, error): the kind the user named, or the one the model's name or
    config makes certain. config.json is read at most once."""
    if spec.kind != "auto":
        return spec.kind, (), None
    for prefix, kind in PREFIXES:
        if spec.model.startswith(prefix):
            return kind, (), None
    folder, config = read_local_config(spec.model)
    architectures = tuple(str(a) for a in config.get("architectures") or ())
    if isinstance(config.get("vision_config"), dict):  # a vision tower: a VL reward model or a VL judge
        kind, error = _vision_kind(spec.model, folder, config, architectures)
        return kind, architectures, error
    if any(a.endswith(("ForTokenClassification", "ForProcessRewardModel")) for a in architectures):
        return "prm", architectures, None  # a score per token: read at each step's end
    if any(a.endswith("ForCausalLM") for a in architectures):
        remote = ("; repository code with get_score, as InternLM-XComposer2.5-Reward has, scores with --rm-kind vision "
                  "--rm-trust-remote-code") if config.get("auto_map") else ""
        return None, architectures, (
            f"{spec.model!r} is a causal language model ({', '.join(architectures)}): it could be scored as a "
            "DPO policy (--rm-kind dpo), a pairwise judge (--rm-kind judge) or a process reward model "
            f"(--rm-kind prm with --rm-step-token); say which with --rm-kind{remote}"
        )
    return "classifier", architectures, None  # a sequence classifier, or not found locally: loading says why


def _pairwise(spec: ModelSpec, kind: str | None, architectures: tuple[str, ...]) -> bool | None:
    if kind is None:
        return False  # the load error comes, once, when the model is built
    if kind in ("judge", "preference", "gpm"):
        return True
    if kind == "grader":  # absolute grading scores each answer; relative and checklist grading judge pairs
        return str(spec.options.get("grader_mode") or "absolute") != "absolute"
    if kind == "http" or kind not in BUILTIN_KINDS:
        return None  # a server or a plugin's kind: only the loaded model can tell
    if spec.kind == "auto" and kind == "classifier" and not architectures:
        return None  # a guess: the name may belong to a plugin's kind
    return False


def resolve(spec: ModelSpec, config=None) -> ResolvedModel:
    """The spec resolved; never raises (see ResolvedModel.error).

    With `config` (a pytest Config), the result is remembered for the run: later calls
    with an equal spec (the built-in model hooks, the plugin) return it without reading
    the model's config.json again.
    """
    stash = getattr(config, "stash", None)
    if stash is not None:  # one per model of the run (several --rm-model)
        known = next((r for r in stash.get(_RESOLVED_KEY, ()) if r.spec == spec), None)
        if known is not None:
            return known
    kind, architectures, error = _kind_of(spec)
    resolved = ResolvedModel(
        spec=spec,
        kind=kind,
        pairwise=_pairwise(spec, kind, architectures),
        local=kind in LOCAL_KINDS and "://" not in spec.model,  # a grader may also be a server
        one_worker_per_gpu=kind not in NO_GPU_KINDS and "://" not in spec.model,
        display_name=display_name(spec.model),
        error=error,
        architectures=architectures,
        both_orders="difference" if kind == "preference" else "counter",
    )
    if stash is not None:
        stash[_RESOLVED_KEY] = [*stash.get(_RESOLVED_KEY, ()), resolved]
    return resolved


def detect_kind(spec: ModelSpec) -> str:
    """The kind the user named, or the one the model's name or config makes certain;
    ModelLoadError when it cannot be told."""
    return resolve(spec).require_kind()


def pairwise_hint(spec: ModelSpec) -> bool | None:
    """Whether the model judges (prompt, A, B) pairs; None when only the loaded model can tell
    (an http server, a kind from a plugin, a model that is not on this machine).
    ModelLoadError when the kind cannot be told."""
    resolved = resolve(spec)
    resolved.require_kind()
    return resolved.pairwise


def _stash_key():
    import pytest

    return pytest.StashKey[list]()


_RESOLVED_KEY = _stash_key()
