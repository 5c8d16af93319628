"""Process reward models (`--rm-kind prm`): one probability per step of a solution.

    --rm-kind prm --rm-model=PRM [--rm-step-separator TEXT] [--rm-step-token GOOD[,BAD]]
                  [--rm-step-threshold P]

Two families of models, as their model cards define them:

- A token-classification head (an architecture ending in ``ForTokenClassification``, as
  TRL's PRMTrainer trains them, or a custom ``...ForProcessRewardModel`` such as
  Qwen2.5-Math-PRM, which runs code from its repository and so needs
  --rm-trust-remote-code): the head is read at the last token of each step's separator;
  with 2 labels the probability is softmax(...)[1] (label 1 = a correct step), with 1
  label sigmoid(...). Qwen2.5-Math-PRM: ``--rm-step-separator '<extra_0>'``.
- A causal language model with a "good step" token (Math-Shepherd:
  ``--rm-step-separator ' ки' --rm-step-token '+,-'``): the next-token distribution after
  the separator's last token. With ``GOOD,BAD`` the probability is the softmax over the
  two tokens' logits; with ``GOOD`` alone the probability of GOOD over the whole
  vocabulary. Each must be one token of the tokenizer (as it tokenizes the text alone,
  or a vocabulary entry spelt exactly, e.g. ``▁+``). A causal LM without --rm-step-token
  is refused. A comma cannot be a step token; no space goes after the comma unless it
  is part of BAD.

Rules (documented in the README):
- The sequence is the chat template's: the problem as the user's turn (or the item's
  messages), the steps as the assistant's turn, EACH step followed by the separator (the
  last one too). Without a chat template it is "User: ...\\n\\nAssistant: ..." with the
  tokenizer's own special tokens around it, as for the other kinds.
- Step ends are found BY TOKEN POSITION, never by searching text or token ids: the
  template's text before and after the assistant's message (found by rendering the
  message as a placeholder), each step and the separator are tokenized separately (no
  special tokens added) and their ids concatenated, as TRL's PRMTrainer builds its
  training rows. The read position of a step is the separator's last token, which is
  therefore always the same token id. The ids at a boundary between pieces can differ
  from tokenizing the whole text at once (a subword may not merge across it); with a
  special-token separator such as ``<extra_0>`` the tokenizer splits there anyway.
- A separator or a step may contain the separator's text: only the recorded positions
  are read, so a solution of n steps always gets n probabilities.
- --rm-step-separator accepts the escapes \\n, \\t, \\r and \\\\ (the default is a blank
  line, "\\n\\n"). A separator with no tokens in the tokenizer is refused.
- Too long for the limit (the smallest of --rm-max-length, the tokenizer's and the
  model's): the oldest context turns are dropped and the problem is cut from the left
  (as for classifiers); if even then a step's separator falls past the limit, the
  request errors ("the solution does not fit in max_length N"): steps are never cut
  or left unscored. Only the template's closing text after the last separator may be
  cut. A truncated request is marked truncated.
- A ScoreRequest (prompt, answer) is scored as a one-step solution: its score is that
  step's probability, a float. A StepsRequest's score is a tuple of floats.
- One forward pass per batch, padded (position ids ignore padding); probabilities are
  computed in float32 whatever the model's dtype. A causal LM computes its vocabulary
  logits only at the read positions (logits_to_keep) where the model allows.
"""

from __future__ import annotations

import inspect
import re
from typing import Sequence

from ..items import ScoreRequest, StepsRequest, prompt_messages
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import ChatEncoder
from .dpo import CAUSAL_SUFFIXES
from .loading import TransformersAdapter, load_config, output_vocab_size, pad_rows, position_ids, vocab_size

PRM_FORMAT_VERSION = 1  # bump when the sequence or the read positions change: it should key the score cache
DEFAULT_SEPARATOR = "\n\n"
# architectures whose class name says they put a head on every token
HEAD_SUFFIXES = ("ForTokenClassification", "ForProcessRewardModel")
# stands for the assistant's message while the template is rendered: the text before it and
# after it are the template's own (private-use characters, no whitespace: templates keep it)
PLACEHOLDER = "\ue000rmbench-steps\ue001"
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
REFUSAL = (
    "a process reward model: --rm-kind prm needs a ...ForTokenClassification head read at each step "
    "separator, a ...ForProcessRewardModel (custom code: --rm-trust-remote-code), or a causal language "
    "model with --rm-step-token (a sequence classifier is scored with --rm-kind classifier)"
)


def decode_escapes(text: str) -> str:
    r"""\n, \t, \r and \\ as the characters they name (a shell or an ini file cannot hold a newline easily)."""
    return re.sub(r"\\([ntr\\])", lambda m: ESCAPES[m.group(1)], text)


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text when it adds its special tokens
    (e.g. [CLS] ... [SEP], or <s> ...)."""
    probe = "hello"
    bare = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(probe, add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    return [], []


class StepsEncoder(ChatEncoder):
    """ChatEncoder for a solution given as steps: `encode` builds the ids piece by piece and
    leaves the read positions of its last call in `ends`.

    The last message of a conversation is {"role": "assistant", "steps": (...), ...}.
    ChatEncoder.encode_fitted drops old turns and cuts the prompt from the left through
    `encode`; the answer (the steps) is never cut (`_shrink`).
    """

    def __init__(self, tokenizer, max_length: int | None, separator_ids: Sequence[int]):
        super().__init__(tokenizer, max_length)
        self.separator_ids = list(separator_ids)
        # with a template the special tokens are in its text; without one the tokenizer adds its own
        self.lead, self.trail = ([], []) if self.has_template else special_tokens_around(tokenizer)
        self.ends: list[int] = []

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def encode(self, messages: list[dict]) -> list[int]:
        *prompt, answer = messages
        steps = list(answer["steps"])
        text = self.render(prompt + [{"role": "assistant", "content": PLACEHOLDER}])
        parts = text.split(PLACEHOLDER)
        if len(parts) != 2:
            raise ValueError(
                "the chat template does not render the assistant's message once and unchanged "
                f"(found {len(parts) - 1} times): the steps' positions cannot be known"
            )
        ids = self.lead + self._ids(parts[0])
        ends = []
        step_ids = self.tokenizer(steps, add_special_tokens=False)["input_ids"] if steps else []
        for piece in step_ids:
            ids += list(piece) + self.separator_ids
            ends.append(len(ids) - 1)  # the separator's last token: never empty (checked at load)
        ids += self._ids(parts[1]) + self.trail
        self.ends = ends
        return ids

    def fit(self, messages: list[dict]) -> tuple[list[int], list[int], bool]:
        """(ids, read positions, truncated) within max_length; ValueError if a step does not fit."""
        ids = self.encode(messages)
        if self.max_length is None or len(ids) <= self.max_length:
            return ids, list(self.ends), False
        ids, _ = self.encode_fitted(messages)  # ends: those of its last encode call
        if self.ends and self.ends[-1] >= len(ids):  # cannot happen after _shrink; kept as a guard
            raise ValueError(self._too_long(len(ids)))
        return ids, list(self.ends), True

    def _shrink(self, message: dict, current, ids: list[int], from_left: bool) -> list[int]:
        if from_left:  # a prompt message: cut from the left, as for every kind
            return super()._shrink(message, current, ids, from_left)
        # the steps: none is cut; only the template's text after the last separator may go
        if len(ids) > self.max_length and self.ends and self.ends[-1] >= self.max_length:
            raise ValueError(self._too_long(len(ids)))
        return ids

    def _too_long(self, length: int) -> str:
        return (
            f"the solution does not fit in max_length {self.max_length}: with the problem cut away it still takes "
            f"{length} tokens ({self.ends[-1] + 1} up to the last step's separator); steps are never cut "
            "(raise --rm-max-length if the model allows)"
        )


class PrmModel(TransformersAdapter):
    """Per-step probabilities from a process reward model; see the module's docstring."""

    kind = "prm"
    name: str
    dtype: str
    device: str
    pairwise = False  # one score per (prompt, answer)
    steps = True  # scores StepsRequest (one probability per step)
    versions: dict  # torch, transformers: set when loaded

    close = TransformersAdapter.close  # lets the weights go (and the GPU memory they hold)

    def __init__(self, spec: ModelSpec):
        _, transformers = self._start(spec)
        path = spec.model
        options = spec.options or {}
        raw_separator = options.get("step_separator")
        self.separator = decode_escapes(str(raw_separator)) if raw_separator not in (None, "") else DEFAULT_SEPARATOR
        raw_token = options.get("step_token")
        step_tokens = _parse_step_tokens(raw_token) if raw_token not in (None, "") else None
        config = load_config(transformers, spec, path, accepts=HEAD_SUFFIXES + CAUSAL_SUFFIXES, refusal=REFUSAL)
        self.causal = _family(config, step_tokens, path)
        self._load_tokenizer(transformers, spec, path, config)
        separator_ids = self._separator_ids(path)
        model_class, must_be = self._model_class(transformers, config, step_tokens, path)
        self._load_model(transformers, spec, path, model_class, must_be=must_be)
        if self.causal:
            self._check_step_token_ids()
        self.encoder = StepsEncoder(self.tokenizer, self._setup_padding(spec, config), separator_ids)
        self._accepts = set(inspect.signature(self.model.forward).parameters)

    # -- loading helpers ---------------------------------------------------------------------
    def _separator_ids(self, path: str) -> list[int]:
        separator_ids = list(self.tokenizer(self.separator, add_special_tokens=False)["input_ids"])
        if not separator_ids:
            raise ModelLoadError(
                f"the step separator {self.separator!r} (--rm-step-separator) has no tokens in the tokenizer of {path!r} "
                "(it drops that text): give a separator the tokenizer keeps, such as the model card's"
            )
        return separator_ids

    def _model_class(self, transformers, config, step_tokens: list[str] | None, path: str) -> tuple:
        """(the Auto class to load with, what the model must be); sets good_id and bad_id,
        checked before the weights load."""
        self.good_id = self.bad_id = None
        if not self.causal:
            return _head_class(transformers, config), "a model with a token-classification head"
        self.good_id = _single_token(self.tokenizer, step_tokens[0], path)
        self.bad_id = _single_token(self.tokenizer, step_tokens[1], path) if len(step_tokens) > 1 else None
        if self.bad_id == self.good_id:
            raise ModelLoadError(f"--rm-step-token: GOOD and BAD are the same token ({step_tokens[0]!r})")
        return transformers.AutoModelForCausalLM, "a causal language model"

    def _check_step_token_ids(self) -> None:
        vocabulary = _output_vocab_size(self.model)
        for token_id in (self.good_id, self.bad_id):
            if token_id is not None and vocabulary and token_id >= vocabulary:
                raise ModelLoadError(
                    f"--rm-step-token: token id {token_id} is outside the model's vocabulary of {vocabulary} tokens"
                )

    # -- adapter -----------------------------------------------------------------------------
    def prepare(self, requests: Sequence) -> list[Prepared]:
        out = []
        for request in requests:
            if isinstance(request, StepsRequest):
                steps = tuple(request.steps)
            elif isinstance(request, ScoreRequest):
                steps = (request.answer,)  # one step
            else:
                raise TypeError(f"a process reward model scores solutions or answers, not a {type(request).__name__}")
            if not steps:
                raise ValueError("the solution has no steps")
            if not all(isinstance(s, str) for s in steps):
                raise TypeError("every step must be a string")
            answer = {"role": "assistant", "content": "".join(s + self.separator for s in steps), "steps": steps}
            ids, ends, truncated = self.encoder.fit(prompt_messages(request.prompt) + [answer])
            out.append(Prepared(request, len(ids), truncated, (ids, ends)))
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list:
        torch = self.torch
        left = self.tokenizer.padding_side == "left"
        input_ids, attention, offsets = pad_rows(torch, [p.payload[0] for p in batch], self.pad_id, left)
        positions = [[offset + end for end in p.payload[1]] for p, offset in zip(batch, offsets)]
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}
        if "position_ids" in self._accepts:
            inputs["position_ids"] = position_ids(inputs["attention_mask"])
        if "use_cache" in self._accepts:
            inputs["use_cache"] = False
        kept = None
        if self.causal and "logits_to_keep" in self._accepts:
            # the vocabulary's logits only where they are read (the same columns for every row)
            kept = sorted({q for row in positions for q in row})
            inputs["logits_to_keep"] = torch.tensor(kept, dtype=torch.long, device=self.device)
        width = input_ids.shape[1]
        with torch.inference_mode():
            output = self.model(**inputs)
            logits = output.logits if getattr(output, "logits", None) is not None else output[0]
            if logits.ndim != 3 or logits.shape[0] != len(batch):
                raise ValueError(f"expected logits of shape ({len(batch)}, length, outputs), got {tuple(logits.shape)}")
            if kept is not None and logits.shape[1] == len(kept):
                column = {q: i for i, q in enumerate(kept)}
                columns = [column[q] for row in positions for q in row]
            elif logits.shape[1] == width:
                columns = [q for row in positions for q in row]
            else:
                raise ValueError(f"the model returned logits for {logits.shape[1]} of {width} positions")
            rows = [r for r, row in enumerate(positions) for _ in row]
            picked = logits[torch.tensor(rows, device=logits.device), torch.tensor(columns, device=logits.device)].float()
            probabilities = self._probabilities(picked).double().cpu().tolist()
        out, start = [], 0
        for p, row in zip(batch, positions):
            values = tuple(probabilities[start : start + len(row)])
            start += len(row)
            out.append(values if isinstance(p.request, StepsRequest) else values[0])
        return out

    def _probabilities(self, picked):
        """(positions, outputs) logits in float32 -> the probability that each step is right."""
        torch = self.torch
        if self.causal:
            if self.bad_id is not None:
                return torch.softmax(picked[:, [self.good_id, self.bad_id]], dim=-1)[:, 0]
            return torch.softmax(picked, dim=-1)[:, self.good_id]
        labels = picked.shape[-1]
        if labels == 2:
            return torch.softmax(picked, dim=-1)[:, 1]
        if labels == 1:
            return torch.sigmoid(picked[:, 0])
        raise ValueError(_labels_message(self.name, labels))


def _family(config, step_tokens: list[str] | None, path: str) -> bool:
    """True for a causal LM read at its step token, False for a model with a head read at each
    separator (the architecture decides; a config that does not say: the option)."""
    architectures = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(HEAD_SUFFIXES) for a in architectures):
        causal = False
    elif any(a.endswith(CAUSAL_SUFFIXES) for a in architectures):
        causal = True
    else:  # a config that does not say: the option decides
        causal = step_tokens is not None
    shown = ", ".join(architectures) or "a model"
    if causal and step_tokens is None:
        raise ModelLoadError(
            f"the model {path!r} is a causal language model ({shown}): as a process reward model it needs "
            "--rm-step-token GOOD or GOOD,BAD, the token it predicts after a step's separator when the step is "
            "right (Math-Shepherd: --rm-step-separator ' ки' --rm-step-token '+,-'); a model with a "
            "token-classification head needs none"
        )
    if not causal and step_tokens is not None:
        raise ModelLoadError(
            f"--rm-step-token is for causal language models, but the model {path!r} is a {shown} whose head is "
            "read at each separator: leave --rm-step-token out"
        )
    if not causal and any(a.endswith("ForTokenClassification") for a in architectures):
        labels = int(getattr(config, "num_labels", 2) or 2)
        if labels not in (1, 2):
            raise ModelLoadError(_labels_message(path, labels))
    return causal


def _labels_message(path: str, labels: int) -> str:
    return (
        f"the model {path!r} has a head of {labels} labels per token; a process reward model needs 2 "
        "(softmax, label 1 = a correct step) or 1 (sigmoid)"
    )


def _parse_step_tokens(raw) -> list[str]:
    parts = str(raw).split(",")
    if len(parts) > 2 or any(p == "" for p in parts):
        raise ModelLoadError(f"--rm-step-token must be GOOD or GOOD,BAD (e.g. '+,-'), got {raw!r}")
    return parts


def _single_token(tokenizer, text: str, path: str) -> int:
    """The id of `text` as one token: as the tokenizer tokenizes it alone, else a vocabulary entry spelt so."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    unknown = tokenizer.unk_token_id
    if len(ids) == 1 and (ids[0] != unknown or text == tokenizer.unk_token):
        return ids[0]
    exact = tokenizer.get_vocab().get(text)
    if exact is not None:
        return exact
    if len(ids) == 1:
        why = "it is not in the vocabulary (the tokenizer makes it the unknown token)"
    else:
        why = f"it is {len(ids)} tokens: {tokenizer.convert_ids_to_tokens(ids)!r}"
    raise ModelLoadError(
        f"--rm-step-token: {text!r} is not one token of the tokenizer of {path!r}: {why}; "
        "give one token of its vocabulary"
    )


def _head_class(transformers, config):
    """AutoModelForTokenClassification, unless the repository's code registers only AutoModel
    (as Qwen2.5-Math-PRM's does)."""
    auto_map = getattr(config, "auto_map", None) or {}
    if "AutoModelForTokenClassification" not in auto_map and "AutoModel" in auto_map:
        return transformers.AutoModel
    return transformers.AutoModelForTokenClassification


def _output_vocab_size(model) -> int:
    size = output_vocab_size(model)
    return size if size is not None else vocab_size(model)


def build(spec: ModelSpec) -> PrmModel:
    return PrmModel.build(spec)
