"""The built-in model kinds, as a trylast implementation of `pytest_rmbench_make_model`."""

from __future__ import annotations

import pytest

from .base import ModelLoadError, ModelSpec

KINDS = ("auto", "builtin", "classifier")


def detect_kind(spec: ModelSpec) -> str:
    if spec.kind != "auto":
        return spec.kind
    if spec.model.startswith("builtin:"):
        return "builtin"
    return "classifier"


@pytest.hookimpl(trylast=True)
def pytest_rmbench_make_model(config, spec: ModelSpec):
    kind = detect_kind(spec)
    if kind == "builtin":
        if not spec.model.startswith("builtin:"):
            raise ModelLoadError(f"--rm-kind builtin needs a model named builtin:NAME, got {spec.model!r}")
        from . import builtin

        return builtin.build(spec)
    if kind == "classifier":
        from . import classifier  # imports torch only when its model is built

        return classifier.build(spec)
    raise ModelLoadError(f"unknown model kind {kind!r}; choose one of: {', '.join(KINDS)} (or a kind a plugin adds)")


@pytest.hookimpl(trylast=True)
def pytest_rmbench_model_fingerprint(config, spec: ModelSpec):
    if detect_kind(spec) == "classifier":
        from .fingerprint import classifier_fingerprint

        return classifier_fingerprint(spec)
    return None
