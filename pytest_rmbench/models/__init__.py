"""Model adapters: the one place where torch and transformers are imported (lazily)."""

from .base import Capabilities, ModelLoadError, ModelSpec, RewardModelAdapter, capabilities, close_model, model_versions

__all__ = [
    "ModelSpec", "RewardModelAdapter", "ModelLoadError", "Capabilities", "capabilities", "model_versions", "close_model",
]
