"""DPO implicit rewards from a causal language model (`--rm-kind dpo`).

    --rm-kind dpo --rm-model=POLICY [--rm-ref-model=REF] [--rm-beta 0.1] [--rm-ref-free sum|mean|norm]

Rules (documented in the README):
- The (prompt, answer) sequence is built exactly as for classifiers: the tokenizer's chat
  template rendered as text and tokenized WITHOUT special tokens (the template holds the
  BOS), with the same truncation (`ChatEncoder.encode_fitted`: drop the oldest turns, cut
  the prompt from the left, cut the answer's end).
- The prompt is masked BY TOKEN POSITION, never by looking for the answer's text: the
  prompt takes as many tokens as the prompt alone rendered with `add_generation_prompt=True`
  (no special tokens added), and that rendering must be a prefix of the full sequence's ids.
  Where a template renders the prompt differently inside the whole conversation (so it is
  not a prefix), the longest common prefix of the two is the prompt.
- Answer tokens are all positions from there to the end: the answer's text AND what the
  template puts after it (end-of-turn tokens such as `</s>` or `<|im_end|>`), because the
  model chooses to end its turn too. A template that ignores `add_generation_prompt`
  leaves its assistant header among the answer tokens (it is the same for both answers
  of a pair). The first token of a sequence has no prefix and is never scored.
- After truncation the prompt length is worked out again on the messages that were
  actually kept; an answer with no token left is an error for that request alone.
- With a reference model: reward = beta * (sum log pi(answer) - sum log pi_ref(answer)),
  the DPO implicit reward (beta from --rm-beta, default 0.1; --rm-ref-free is ignored).
- Without one, --rm-ref-free picks: `sum` (default) the answer tokens' log-probs summed,
  `mean` their mean per token, `norm` minus the L2 norm of the per-token log-probs. beta
  does not scale these (a positive factor would not change any comparison).
- The reference uses the policy's tokenizer; a reference whose vocabulary size differs is
  refused (token ids would mean different things).
- Log-softmax is taken in float32 whatever the model's dtype; sums are accumulated in
  float64.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from typing import Sequence

from ..items import ScoreRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import ChatEncoder, RmbenchWarning, fallback_text, merge_consecutive
from .loading import (
    TransformersAdapter,
    default_device,
    load_config,
    load_weights,
    output_vocab_size,
    pad_rows,
    position_ids,
)

REF_FREE_MODES = ("sum", "mean", "norm")
DEFAULT_BETA = "0.1"
# architectures whose class name says they predict the next token
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


class FittedEncoder(ChatEncoder):
    """ChatEncoder whose encode_fitted also remembers the messages that its ids come from.

    encode_fitted re-encodes the conversation after every change it makes, so the last
    `encode` call of a fit is the final state of the messages (prompt turns dropped or cut,
    answer cut). `fitted` maps id(conversation) -> those messages.
    """

    def __init__(self, tokenizer, max_length):
        super().__init__(tokenizer, max_length)
        self.fitted: dict[int, list[dict]] = {}
        self._last: list[dict] | None = None

    def encode(self, messages: list[dict]) -> list[int]:
        self._last = [dict(m) for m in messages]
        return super().encode(messages)

    def encode_fitted(self, messages: list[dict], ids: list[int] | None = None) -> tuple[list[int], bool]:
        self._last = None
        ids, truncated = super().encode_fitted(messages, ids)
        if self._last is not None:
            self.fitted[id(messages)] = self._last
        return ids, truncated

    def render_prompt(self, prompt: list[dict]) -> str:
        """The prompt alone, ending where the assistant's answer begins."""
        if not self.has_template:
            # fallback_text of the whole conversation puts "Assistant: answer" last
            return fallback_text(prompt) + "\n\nAssistant:"
        try:
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        except Exception:
            merged = merge_consecutive(prompt)
            if merged == prompt:
                raise
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    def encode_prompts(self, prompts: list[list[dict]]) -> list[list[int]]:
        texts = [self.render_prompt(p) for p in prompts]
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=not self.has_template)["input_ids"]]


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def answer_start(full_ids: Sequence[int], prompt_ids: Sequence[int]) -> int:
    """Where the answer's tokens begin: the prompt rendering's length if it is a prefix of
    the full ids, else the longest common prefix of the two."""
    n = len(prompt_ids)
    if list(full_ids[:n]) == list(prompt_ids):
        return n
    return common_prefix_length(full_ids, prompt_ids)


class DpoModel(TransformersAdapter):
    """The DPO implicit reward of (prompt, answer) under a causal LM policy (and reference).

    Loading, dtype, padding and length rules are the classifier's
    (pytest_rmbench.models.loading); it loads causal LMs instead.
    """

    kind = "dpo"
    name: str
    dtype: str
    device: str
    pairwise = False  # one score per (prompt, answer)
    steps = False  # one score per answer
    versions: dict  # torch, transformers: set when loaded

    def __init__(self, spec: ModelSpec):
        torch, transformers = self._start(spec)
        self._read_options(spec.options or {})
        config = _load_config(transformers, spec.model, spec, "the policy model")
        ref_config = _load_config(transformers, self.ref_path, spec, "the reference model (--rm-ref-model)") if self.ref_path else None
        self._load_tokenizer(transformers, spec, spec.model, config)
        self.model, self.device = _load_causal_lm(transformers, torch, spec, spec.model, "the policy model", self.dtype)
        self.ref_model = None
        self.ref_device = self.device
        if self.ref_path:
            self._load_reference(transformers, torch, spec)
        limit = self._setup_padding(spec, config)
        ref_positions = getattr(ref_config, "max_position_embeddings", None) if ref_config is not None else None
        if isinstance(ref_positions, int) and 0 < ref_positions and (limit is None or ref_positions < limit):
            limit = ref_positions
        self.encoder = FittedEncoder(self.tokenizer, limit)
        self._accepts = {
            id(m): set(inspect.signature(m.forward).parameters) for m in (self.model, self.ref_model) if m is not None
        }

    # -- loading helpers ---------------------------------------------------------------------
    def _read_options(self, options: dict) -> None:
        """--rm-ref-model, --rm-beta and --rm-ref-free."""
        self.ref_path = options.get("ref_model") or None
        self.beta = _parse_beta(options.get("beta", DEFAULT_BETA))
        self.ref_free = str(options.get("ref_free") or "sum").strip().lower()
        if self.ref_free not in REF_FREE_MODES:
            raise ModelLoadError(f"unknown --rm-ref-free {options.get('ref_free')!r}; choose one of {', '.join(REF_FREE_MODES)}")

    def _load_reference(self, transformers, torch, spec: ModelSpec) -> None:
        """The reference model, refused when its vocabulary differs from the policy's."""
        self.ref_model, self.ref_device = _load_causal_lm(
            transformers, torch, spec, self.ref_path, "the reference model (--rm-ref-model)", self.dtype
        )
        policy_vocab, ref_vocab = _output_vocab_size(self.model), _output_vocab_size(self.ref_model)
        if policy_vocab != ref_vocab:
            raise ModelLoadError(
                f"the reference model {self.ref_path!r} has a vocabulary of {ref_vocab} tokens and the policy "
                f"{spec.model!r} one of {policy_vocab}: DPO rewards need both to share the policy's tokenizer"
            )
        self._warn_if_reference_tokenizer_differs(transformers, spec)

    def _warn_if_reference_tokenizer_differs(self, transformers, spec: ModelSpec) -> None:
        try:
            ref_tokenizer = transformers.AutoTokenizer.from_pretrained(self.ref_path, trust_remote_code=spec.trust_remote_code)
        except Exception:  # a reference folder without a tokenizer: the policy's is used anyway
            return
        if ref_tokenizer.get_vocab() != self.tokenizer.get_vocab():
            warnings.warn(
                RmbenchWarning(
                    f"the reference model {self.ref_path!r} comes with a tokenizer that differs from the policy's; "
                    "both models are given the policy's token ids"
                )
            )

    # -- adapter -----------------------------------------------------------------------------
    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]:
        conversations = [r.messages() for r in requests]
        self.encoder.fitted.clear()
        encoded = self.encoder.encode_many(conversations)
        kept: list[list[dict]] = []
        for conversation, (ids, truncated) in zip(conversations, encoded):
            messages = conversation
            if truncated:
                messages = self.encoder.fitted.get(id(conversation))
                # the ids must be (a cut of) the encoding of the messages that were kept
                if messages is None or self.encoder.encode(messages)[: len(ids)] != list(ids):
                    raise ValueError("could not tell the prompt from the answer after truncation")
            kept.append(messages[:-1])
        self.encoder.fitted.clear()
        prompt_ids = self.encoder.encode_prompts(kept)
        out = []
        for request, (ids, truncated), prompt in zip(requests, encoded, prompt_ids):
            start = max(1, answer_start(ids, prompt))  # the first token has nothing to be predicted from
            if start >= len(ids):
                limit = self.encoder.max_length
                raise ValueError(
                    f"the answer has no tokens left: the prompt takes all {len(ids)} tokens"
                    + (f" of the limit ({limit}); raise --rm-max-length if the model allows" if truncated else "")
                )
            out.append(Prepared(request, len(ids), truncated, (list(ids), start)))
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        left = self.tokenizer.padding_side == "left"
        input_ids, attention, offsets = pad_rows(self.torch, [p.payload[0] for p in batch], self.pad_id, left)
        # per row: the positions whose logits predict the answer tokens, [first, end)
        spans = [(offset + p.payload[1] - 1, offset + p.length - 1) for p, offset in zip(batch, offsets)]
        policy = self._answer_logprobs(self.model, self.device, input_ids, attention, spans)
        if self.ref_model is None:
            return [self._ref_free_reward(lp) for lp in policy]
        reference = self._answer_logprobs(self.ref_model, self.ref_device, input_ids, attention, spans)
        return [self.beta * float(lp.sum() - ref.sum()) for lp, ref in zip(policy, reference)]

    def _ref_free_reward(self, logprobs) -> float:
        if self.ref_free == "mean":
            return float(logprobs.mean())
        if self.ref_free == "norm":
            return -float(logprobs.norm(p=2))
        return float(logprobs.sum())

    def _answer_logprobs(self, model, device, input_ids, attention, spans) -> list:
        """Per row, log p(token t | tokens < t) for each answer token t (float64, on the CPU)."""
        torch = self.torch
        width = input_ids.shape[1]
        first_needed = min(first for first, _ in spans)
        accepts = self._accepts[id(model)]
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
        if "position_ids" in accepts:
            # positions count real tokens only, so left padding does not shift them
            inputs["position_ids"] = position_ids(inputs["attention_mask"])
        if "logits_to_keep" in accepts and first_needed > 0:
            inputs["logits_to_keep"] = width - first_needed  # only the last positions' logits are needed
        with torch.inference_mode():
            logits = model(**inputs).logits
            if logits.ndim != 3 or logits.shape[0] != len(spans):
                raise ValueError(f"expected logits of shape ({len(spans)}, length, vocabulary), got {tuple(logits.shape)}")
            kept_from = width - logits.shape[1]  # the position of logits[:, 0]
            if kept_from not in (0, first_needed):
                raise ValueError(f"the model returned logits for {logits.shape[1]} of {width} positions")
            targets = inputs["input_ids"]
            out = []
            for row, (first, end) in enumerate(spans):
                # float32 log-softmax whatever the model's dtype
                logprobs = torch.log_softmax(logits[row, first - kept_from : end - kept_from].float(), dim=-1)
                picked = logprobs.gather(-1, targets[row, first + 1 : end + 1].unsqueeze(-1)).squeeze(-1)
                out.append(picked.double().cpu())
        return out

    def close(self) -> None:
        """Let the weights go (and the GPU memory they hold): the run is over."""
        self.ref_model = None
        super().close()


def _parse_beta(raw) -> float:
    try:
        beta = float(raw)
    except (TypeError, ValueError):
        raise ModelLoadError(f"--rm-beta: expected a number, got {raw!r}") from None
    if not math.isfinite(beta) or beta <= 0:
        raise ModelLoadError(f"--rm-beta must be a positive number, got {raw!r}")
    return beta


def looks_like_a_path(name: str) -> bool:
    """Certainly a folder, never a Hub id ("owner/name" could be either)."""
    return os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def _load_config(transformers, path: str, spec: ModelSpec, what: str):
    if looks_like_a_path(path) and not os.path.isdir(os.path.expanduser(path)):
        raise ModelLoadError(f"{what}: there is no folder {path!r}")
    return load_config(
        transformers, spec, path, accepts=CAUSAL_SUFFIXES, what=what,
        refusal="a causal language model: --rm-kind dpo needs a ...ForCausalLM (a sequence classifier is scored with --rm-kind classifier)",
    )


def _load_causal_lm(transformers, torch, spec: ModelSpec, path: str, what: str, dtype: str):
    """(model in eval mode, the device its inputs go to); refused if its LM head would be random."""
    return load_weights(
        transformers, torch, spec, path, transformers.AutoModelForCausalLM, dtype, default_device(torch, spec),
        what=what, must_be="a causal language model",
    )


def _output_vocab_size(model) -> int:
    size = output_vocab_size(model)
    return size if size is not None else int(getattr(model.config, "vocab_size", 0) or 0)


def build(spec: ModelSpec) -> DpoModel:
    return DpoModel.build(spec)
