"""Generative vision-language judges: `--rm-kind judge` with a model whose config has a vision tower.

judge.build hands such a model here. It loads with AutoModelForImageTextToText (safetensors
only unless --rm-allow-pickle, repository code only with --rm-trust-remote-code) and its
images, chat template and token ids come from vision.VisionInputs (decoded and preprocessed in
`prepare`, per chunk). Everything else is the text judge's (judge.JudgeModel, subclassed): the
judge template and --rm-judge-template, the label tokens, --rm-judge-mode logprob (log p(A) -
log p(B) at the token after the prompt) or generate (greedy, parse_verdict), both answer
orders and the position-inconsistency report (the engine's, for any pairwise model).

The judge text (the filled template) is the last user message; the item's images come first
in it, as {"type": "image"} parts, then the text. Positions are the model's own (Qwen2-VL's
multimodal rope reads the attention mask), so no position ids are passed. A prompt over the
length limit is that item's error, not cut (image tokens cannot be cut; the text judge's
truncation rule is not applied here).
"""

from __future__ import annotations

import inspect
from typing import Sequence

from ..items import JudgeRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .judge import MAX_NEW_TOKENS, MODES, JudgeModel, fill_template, label_token_ids, load_template, question_text
from .loading import load_config, max_length
from .vision import VisionInputs, _dtype_device, check_length, close_with_inputs, pad_token_id, text_config

GENERATIVE_SUFFIXES = ("ForConditionalGeneration", "ForCausalLM", "LMHeadModel", "ForImageTextToText")


class VisionJudgeModel(JudgeModel):
    """A VL model as a pairwise judge: the text judge with images in its prompt."""

    kind = "judge"
    name: str
    dtype: str
    device: str
    pairwise = True  # judges (images, prompt, A, B)
    steps = False
    images = True  # sees the images of a request
    versions: dict

    def close(self) -> None:
        close_with_inputs(self)

    def __init__(self, spec: ModelSpec):
        torch, transformers = self._start(spec)
        options = spec.options or {}
        self.mode = str(options.get("judge_mode") or "logprob").strip().lower()
        if self.mode not in MODES:
            raise ModelLoadError(f"unknown --rm-judge-mode {self.mode!r}; choose logprob or generate")
        self.template_path = options.get("judge_template") or None
        self.template = load_template(self.template_path)
        path = spec.model
        config = load_config(
            transformers, spec, path, accepts=GENERATIVE_SUFFIXES,
            refusal="a generative vision-language model: a VL judge needs a ...ForConditionalGeneration that can write the verdict",
        )
        self.dtype, self.device = _dtype_device(torch, spec, config)
        self.inputs = VisionInputs(transformers, spec, path, config)
        self.inputs.overlap = not str(self.device).startswith("cpu")  # the image thread: see vision.py
        self.tokenizer = self.inputs.tokenizer
        self.label_ids = label_token_ids(self.tokenizer)
        self.has_template = True
        self._load_model(transformers, spec, path, transformers.AutoModelForImageTextToText,
                         must_be="an image-text-to-text model")
        self.pad_id = pad_token_id(self.tokenizer, self.model.config)
        limit = max_length(self.tokenizer, spec.max_length, text_config(config))
        if self.mode == "generate" and limit is not None and limit > 2 * MAX_NEW_TOKENS:
            limit -= MAX_NEW_TOKENS  # the reply needs room too
        self.limit = limit
        self._parameters = set(inspect.signature(self.model.forward).parameters)
        self._accepts_position_ids = False  # the model's own (multimodal) positions
        self._accepts_use_cache = "use_cache" in self._parameters
        self._keep_argument = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in self._parameters), None)

    def _render(self, judge_text: str) -> str:
        return self.inputs.render([{"role": "user", "content": judge_text}], generation_prompt=True)

    def prepare(self, requests: Sequence[JudgeRequest]) -> list[Prepared]:
        conversations = [[{"role": "user", "content": fill_template(self.template, question_text(r.prompt), r.answer_a,
                                                                   r.answer_b)}] for r in requests]
        images = [tuple(getattr(r, "images", ())) for r in requests]
        payloads = self.inputs.encode(conversations, images, generation_prompt=True)
        prepared = [Prepared(r, len(p["ids"]), False, p) for r, p in zip(requests, payloads)]
        check_length(prepared, self.limit)
        return prepared

    def _inputs(self, batch: Sequence[Prepared], left: bool) -> tuple[dict, list[int]]:
        return self.inputs.collate(self.torch, [p.payload for p in batch], left, self.pad_id, self.device, self._parameters)


def build(spec: ModelSpec) -> VisionJudgeModel:
    return VisionJudgeModel.build(spec)
