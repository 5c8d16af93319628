"""Model adapters: the one place where torch and transformers are imported (lazily)."""

from .base import ModelSpec, RewardModelAdapter, ModelLoadError

__all__ = ["ModelSpec", "RewardModelAdapter", "ModelLoadError"]
