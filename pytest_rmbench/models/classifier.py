"""Transformers sequence-classification reward models (output 0 is the reward)."""

from __future__ import annotations

import inspect
import math
from typing import Sequence

from ..items import MultiHeadScore, ScoreRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import ChatEncoder
from .device import free_accelerator_memory
from .loading import (  # the shared names are re-exported: other modules and tests import them from here
    DTYPES,
    UNBOUNDED,
    default_device,
    dtype_keyword,
    dtype_name,
    hub_failure_message,
    library_versions,
    load_config,
    load_tokenizer,
    load_weights,
    looks_local,
    max_length,
    pad_rows,
    position_ids,
    require_transformers,
    setup_padding,
    share_cpu_threads,
)

__all__ = [
    "DTYPES", "UNBOUNDED", "ClassifierModel", "build", "dtype_keyword", "hub_failure_message", "looks_local", "share_cpu_threads",
]


class ClassifierModel:
    kind = "classifier"
    name: str
    dtype: str
    device: str
    pairwise = False  # one score per (prompt, answer)
    steps = False  # one score per answer
    versions: dict  # torch, transformers: set when loaded

    def __init__(self, spec: ModelSpec):
        import torch
        import transformers

        self.torch = torch
        self.name = spec.model
        self.versions = library_versions(torch, transformers)
        path = spec.model
        config = load_config(
            transformers, spec, path, accepts=("ForSequenceClassification",),
            refusal="a sequence classifier: a reward model needs a ...ForSequenceClassification head (output 0 is the reward)",
        )
        # several outputs (multi-objective reward models): which one is the reward, or a
        # weighted sum of all of them; checked before any weights load
        num_labels = int(getattr(config, "num_labels", 1) or 1)
        head, weights = spec.options.get("head"), spec.options.get("head_weights")
        head = None if head is None or str(head).strip() == "" else str(head).strip()
        weights = None if weights is None or str(weights).strip() == "" else str(weights).strip()
        self.head, self.head_weights = 0, None
        if head is not None and weights is not None:
            raise ModelLoadError("--rm-head and --rm-head-weights exclude each other: pick one output, or weight them all")
        if head is not None:
            if not (head.isascii() and head.isdigit()):
                raise ModelLoadError(f"--rm-head must be an output index 0..{num_labels - 1}, got {head!r}")
            self.head = int(head)
            if self.head >= num_labels:
                raise ModelLoadError(
                    f"--rm-head {self.head} is out of range: the model {path!r} has num_labels={num_labels} "
                    f"(outputs 0..{num_labels - 1})"
                )
        if weights is not None:
            try:
                self.head_weights = [float(w) for w in weights.split(",")]
            except ValueError:
                raise ModelLoadError(f"--rm-head-weights must be comma-separated numbers, e.g. 0.5,0,1; got {weights!r}") from None
            if not all(math.isfinite(w) for w in self.head_weights):
                raise ModelLoadError(f"--rm-head-weights must be finite numbers, got {weights!r}")
            if len(self.head_weights) != num_labels:
                raise ModelLoadError(
                    f"--rm-head-weights gives {len(self.head_weights)} weight(s), but the model {path!r} has "
                    f"num_labels={num_labels}: give one weight per output"
                )
        self.dtype = dtype_name(spec.dtype, config)
        self.device = default_device(torch, spec)
        share_cpu_threads(torch, self.device)
        self.tokenizer = load_tokenizer(transformers, spec, path)
        self.model, self.device = load_weights(
            transformers, torch, spec, path, transformers.AutoModelForSequenceClassification, self.dtype, self.device
        )
        self.pad_id = setup_padding(self.tokenizer, self.model, spec, self.name)
        self.encoder = ChatEncoder(self.tokenizer, max_length(self.tokenizer, spec.max_length, config))
        self._accepts_position_ids = "position_ids" in inspect.signature(self.model.forward).parameters

    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]:
        encoded = self.encoder.encode_many([r.messages() for r in requests])
        return [Prepared(r, len(ids), truncated, ids) for r, (ids, truncated) in zip(requests, encoded)]

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        torch = self.torch
        left = self.tokenizer.padding_side == "left"
        input_ids, attention, _ = pad_rows(torch, [p.payload for p in batch], self.pad_id, left)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}
        if self._accepts_position_ids:
            inputs["position_ids"] = position_ids(inputs["attention_mask"])
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        if logits.ndim != 2 or logits.shape[0] != len(batch):
            raise ValueError(f"expected logits of shape ({len(batch)}, num_labels), got {tuple(logits.shape)}")
        head_weights, head = getattr(self, "head_weights", None), getattr(self, "head", 0)
        if head_weights is not None:
            if logits.shape[1] != len(head_weights):
                raise ValueError(f"--rm-head-weights has {len(head_weights)} weights for {logits.shape[1]} outputs")
            weights = torch.tensor(head_weights, dtype=torch.float32, device=logits.device)
            rewards = (logits.float() @ weights).cpu().tolist()
        else:
            if head >= logits.shape[1]:
                raise ValueError(f"--rm-head {head} is out of range for {logits.shape[1]} outputs")
            rewards = logits[:, head].float().cpu().tolist()
        if logits.shape[1] == 1:
            return rewards
        # several outputs: each travels with the reward, for the report's per-head accuracies
        return [MultiHeadScore(r, row) for r, row in zip(rewards, logits.float().cpu().tolist())]

    def close(self) -> None:
        """Let the weights go (and the GPU memory they hold): the run is over."""
        self.model = None
        free_accelerator_memory()


def build(spec: ModelSpec) -> ClassifierModel:
    require_transformers()
    return ClassifierModel(spec)
