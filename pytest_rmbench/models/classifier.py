"""Transformers sequence-classification reward models (output 0 is the reward)."""

from __future__ import annotations

import inspect
import math
from typing import Sequence

from ..items import MultiHeadScore, ScoreRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import ChatEncoder
from .loading import (  # the shared names are re-exported: other modules and tests import them from here
    DTYPES,
    UNBOUNDED,
    TransformersAdapter,
    dtype_keyword,
    hub_failure_message,
    load_config,
    looks_local,
    pad_rows,
    position_ids,
    share_cpu_threads,
)

__all__ = [
    "DTYPES", "UNBOUNDED", "ClassifierModel", "build", "dtype_keyword", "hub_failure_message", "looks_local", "share_cpu_threads",
]


class ClassifierModel(TransformersAdapter):
    kind = "classifier"
    name: str
    dtype: str
    device: str
    pairwise = False  # one score per (prompt, answer)
    steps = False  # one score per answer
    versions: dict  # torch, transformers: set when loaded

    close = TransformersAdapter.close  # lets the weights go (and the GPU memory they hold)

    def __init__(self, spec: ModelSpec):
        _, transformers = self._start(spec)
        path = spec.model
        config = load_config(
            transformers, spec, path, accepts=("ForSequenceClassification",),
            refusal="a sequence classifier: a reward model needs a ...ForSequenceClassification head (output 0 is the reward)",
        )
        # several outputs (multi-objective reward models): which one is the reward, or a
        # weighted sum of all of them; checked before any weights load
        self.head, self.head_weights = read_heads(spec.options, int(getattr(config, "num_labels", 1) or 1), path)
        self._load_tokenizer(transformers, spec, path, config)
        self._load_model(transformers, spec, path, transformers.AutoModelForSequenceClassification)
        self.encoder = ChatEncoder(self.tokenizer, self._setup_padding(spec, config))
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


def _option(options: dict, key: str) -> str | None:
    value = options.get(key)
    return None if value is None or str(value).strip() == "" else str(value).strip()


def read_heads(options: dict, num_labels: int, path: str) -> tuple[int, list[float] | None]:
    """(--rm-head, --rm-head-weights) checked against the model's num_labels: (0, None) by default."""
    head, weights = _option(options, "head"), _option(options, "head_weights")
    if head is not None and weights is not None:
        raise ModelLoadError("--rm-head and --rm-head-weights exclude each other: pick one output, or weight them all")
    if head is not None:
        if not (head.isascii() and head.isdigit()):
            raise ModelLoadError(f"--rm-head must be an output index 0..{num_labels - 1}, got {head!r}")
        if int(head) >= num_labels:
            raise ModelLoadError(
                f"--rm-head {int(head)} is out of range: the model {path!r} has num_labels={num_labels} "
                f"(outputs 0..{num_labels - 1})"
            )
        return int(head), None
    if weights is None:
        return 0, None
    try:
        head_weights = [float(w) for w in weights.split(",")]
    except ValueError:
        raise ModelLoadError(f"--rm-head-weights must be comma-separated numbers, e.g. 0.5,0,1; got {weights!r}") from None
    if not all(math.isfinite(w) for w in head_weights):
        raise ModelLoadError(f"--rm-head-weights must be finite numbers, got {weights!r}")
    if len(head_weights) != num_labels:
        raise ModelLoadError(
            f"--rm-head-weights gives {len(head_weights)} weight(s), but the model {path!r} has "
            f"num_labels={num_labels}: give one weight per output"
        )
    return 0, head_weights


def build(spec: ModelSpec) -> ClassifierModel:
    return ClassifierModel.build(spec)
