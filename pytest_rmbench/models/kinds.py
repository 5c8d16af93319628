"""The built-in model kinds, as a trylast implementation of `pytest_rmbench_make_model`."""

from __future__ import annotations

import importlib
import os

import pytest

from .base import ModelLoadError, ModelSpec

KIND_NAMES = ("classifier", "dpo", "judge", "prm", "http", "scores", "builtin")
KINDS = ("auto",) + KIND_NAMES


PREFIXES = (("builtin:", "builtin"), ("scores:", "scores"), ("http://", "http"), ("https://", "http"))


def detect_kind(spec: ModelSpec) -> str:
    """The kind the user named, or the one the model's name or config makes certain."""
    if spec.kind != "auto":
        return spec.kind
    for prefix, kind in PREFIXES:
        if spec.model.startswith(prefix):
            return kind
    architectures = _architectures(spec.model)
    if any(a.endswith(("ForTokenClassification", "ForProcessRewardModel")) for a in architectures):
        return "prm"  # a score per token: read at each step's end
    if any(a.endswith("ForCausalLM") for a in architectures):
        raise ModelLoadError(
            f"{spec.model!r} is a causal language model ({', '.join(architectures)}): it could be scored as a "
            "DPO policy (--rm-kind dpo), a pairwise judge (--rm-kind judge) or a process reward model "
            "(--rm-kind prm with --rm-step-token); say which with --rm-kind"
        )
    return "classifier"  # a sequence classifier, or not found locally: loading says why


def pairwise_hint(spec: ModelSpec) -> bool | None:
    """Whether the model judges (prompt, A, B) pairs; None when only the loaded model can tell
    (an http server, a kind from a plugin, a model that is not on this machine)."""
    kind = detect_kind(spec)
    if kind == "judge":
        return True
    if kind == "http" or kind not in KIND_NAMES:
        return None
    if spec.kind == "auto" and kind == "classifier" and not _architectures(spec.model):
        return None  # a guess: the name may belong to a plugin's kind
    return False


def _architectures(model: str) -> list[str]:
    import json

    from .fingerprint import local_model_dir

    folder = local_model_dir(model)
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as fh:
            return list(json.load(fh).get("architectures") or [])
    except (OSError, ValueError, TypeError, AttributeError):
        return []


# kind -> the module under pytest_rmbench.models whose build(spec) makes its adapter;
# a module is imported only when its kind is used (torch comes in with it)
BUILDERS = {kind: kind for kind in KIND_NAMES}
LOCAL_MODEL_KINDS = ("classifier", "dpo", "judge", "prm")  # scores are cached against their files


@pytest.hookimpl(trylast=True)
def pytest_rmbench_make_model(config, spec: ModelSpec):
    kind = detect_kind(spec)
    if kind not in BUILDERS:
        raise ModelLoadError(f"unknown model kind {kind!r}; choose one of: {', '.join(KIND_NAMES)} (or a kind a plugin adds)")
    try:
        module = importlib.import_module(f"{__package__}.{BUILDERS[kind]}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{BUILDERS[kind]}":
            raise
        raise ModelLoadError(f"the model kind {kind!r} is not available in this version of pytest-rmbench") from None
    return module.build(spec)


@pytest.hookimpl(trylast=True)
def pytest_rmbench_model_fingerprint(config, spec: ModelSpec):
    kind = detect_kind(spec)
    if kind in LOCAL_MODEL_KINDS:
        from .fingerprint import local_model_fingerprint

        return local_model_fingerprint(spec, kind)
    return None
