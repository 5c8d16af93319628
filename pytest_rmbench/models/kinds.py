"""The model kinds: one registry, and the trylast implementations of the model hooks.

A kind maps to a `build(spec) -> adapter` function. The built-in kinds' modules are imported
only when their kind is used (torch comes in with them); third-party packages add kinds
through the `pytest_rmbench.model_kinds` entry point group (name = kind, value =
"package.module:build").
"""

from __future__ import annotations

import pytest

from ..registry import Registry, RegistryError, UnknownName
from .base import ModelLoadError, ModelSpec
from .resolve import BUILTIN_KINDS, LOCAL_KINDS, PREFIXES, ResolvedModel, detect_kind, pairwise_hint, resolve

__all__ = [
    "MODEL_KINDS", "KIND_NAMES", "PREFIXES", "LOCAL_KINDS", "ResolvedModel", "resolve", "detect_kind", "pairwise_hint",
    "model_builder",
]

MODEL_KINDS: Registry = Registry(
    "model kind", "pytest_rmbench.model_kinds", {kind: f"{__package__}.{kind}:build" for kind in BUILTIN_KINDS}
)
KIND_NAMES = tuple(MODEL_KINDS.builtin_names())  # for help texts: no entry points read


def model_builder(kind: str):
    """The `build(spec)` of a kind; ModelLoadError naming the kinds there are when it is unknown."""
    try:
        return MODEL_KINDS.get(kind)
    except UnknownName as exc:
        raise ModelLoadError(str(exc)) from None
    except RegistryError as exc:
        cause = exc.__cause__
        if kind in BUILTIN_KINDS and isinstance(cause, ImportError):
            module = f"{__package__}.{kind}"
            if isinstance(cause, ModuleNotFoundError) and cause.name == module:
                raise ModelLoadError(f"the model kind {kind!r} is not available in this version of pytest-rmbench") from None
            raise cause  # e.g. a library the kind needs: its own error says which
        raise ModelLoadError(str(exc)) from cause


@pytest.hookimpl(trylast=True)
def pytest_rmbench_make_model(config, spec: ModelSpec):
    resolved = resolve(spec, config)  # resolved once per run
    return model_builder(resolved.require_kind())(spec)


@pytest.hookimpl(trylast=True)
def pytest_rmbench_model_fingerprint(config, spec: ModelSpec):
    resolved = resolve(spec, config)
    kind = resolved.require_kind()
    if resolved.local:
        from .fingerprint import local_model_fingerprint

        return local_model_fingerprint(spec, kind)
    return None
