"""General preference models with preference embeddings (`--rm-kind gpm`, #14).

    pytest --rm-model=DIR --rm-kind gpm

A GPM maps each (prompt, answer) to a unit vector v in R^d (d even) and compares two answers
through a skew-symmetric operator, so it can represent cyclic (intransitive) preferences that
no scalar reward can. The adapter is `pairwise`: it answers JudgeRequest(prompt, A, B) with

    s(A > B) = <R v_A, v_B>,   R = blockdiag([[0, -l_k], [l_k, 0]]), k = 1 .. d/2

(for d = 2 and l = 1 that is a0*b1 - a1*b0); s > 0 means A is better, and P(A > B) =
sigmoid(s / tau) with tau = 0.1 (`preference_probability`). The l_k come from the optional
prompt head (softmax over its d/2 outputs); without it every l_k is 1.

Cost: one forward pass per distinct (prompt, answer) of a chunk, never one per pair. The
engine hands a whole chunk's JudgeRequests to `prepare`, then calls `score_batch` on slices;
each slice runs only the sequences whose embedding the chunk has not computed yet (at most as
many rows per forward pass as the slice has requests, each no longer than the slice's longest,
so the engine's batch limits hold). The embeddings are kept across `prepare` calls, so a
tournament's later rounds (which the engine scores as further passes over the chunk) cost no
forward at all; past CACHE_LIMIT sequences, the next `prepare` drops them. `forwards` counts
the sequences run through the backbone, `forward_passes` the batched calls. The item rules ask a pairwise model for both orders of a pair; for a GPM the
second order costs nothing (both embeddings are known) and is exactly the negation of the
first: s is computed as sum_k l_k (a_2k b_2k+1 - a_2k+1 b_2k) in one fixed order, so
s(B, A) == -s(A, B) bit for bit, and a GPM never flips its verdict between the two orders.

Checkpoint layout (safetensors only; repository code only with --rm-trust-remote-code)
--------------------------------------------------------------------------------------
DIR (a local folder or a Hub id) holds

- the backbone: a transformers causal LM or its base model (config.json, *.safetensors and
  the tokenizer), loaded with AutoModel: e.g. a saved LlamaModel or LlamaForCausalLM (its LM
  head is not used);
- `gpm_head.safetensors`: `value_head.weight` of shape [d, hidden_size] (a linear map with no
  bias) and, with the prompt head, `eigen_head.weight` of shape [d/2, hidden_size];
- `gpm_config.json`: {"value_head_dim": d, "prompt_head": true|false}.

A GPM checkpoint from the authors' code keeps the same two matrices in its model weights as
`value_head.weight` and `prompt_head.weight`: save them (renaming prompt_head to eigen_head)
with safetensors.torch.save_file to convert it.

Reading the embedding
---------------------
Each (prompt, answer) is formatted as the classifier formats it (models/chat.py: the chat
template, tokenized without special tokens; without a template the "User: ...\\n\\nAssistant:
..." text with them; the same truncation rule). The sequence is then forced to end with EOS,
as GPM's own pipeline does: with a chat template its last token is replaced by EOS (the
template ends with its end-of-turn mark, or a newline after it; where the template already
ends with EOS nothing changes); without a template, EOS is appended. The value head reads the
last hidden state at that EOS token, and v is L2-normalised. The prompt head reads the hidden
state at the prompt's last token (position len(prompt ids) - 1, the prompt rendered alone by
the chat template), which, in a causal model, depends on the prompt only; the l_k of a prompt
are computed once, with its first sequence, and shared by all its pairs. Positions count real tokens only,
so padding side and batch size do not change the scores (beyond float rounding).
"""

from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass
from typing import Sequence

from ..items import JudgeRequest
from ..items.base import prompt_messages
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import ChatEncoder
from .loading import TransformersAdapter, load_config, pad_rows, position_ids

HEAD_FILE = "gpm_head.safetensors"
CONFIG_FILE = "gpm_config.json"
VALUE_HEAD = "value_head.weight"
EIGEN_HEAD = "eigen_head.weight"
CACHE_LIMIT = 100_000  # embeddings kept (d floats each) before prepare drops them
TAU = 0.1  # the temperature of P(A > B) = sigmoid(s / tau)
BACKBONE_SUFFIXES = ("ForCausalLM", "LMHeadModel", "Model")
LAYOUT_HINT = (
    f"a gpm model folder holds the backbone plus {HEAD_FILE} ({VALUE_HEAD} [d, hidden], optional {EIGEN_HEAD} "
    f"[d/2, hidden]) and {CONFIG_FILE} ({{\"value_head_dim\": d, \"prompt_head\": true|false}})"
)


def preference_probability(score: float, tau: float = TAU) -> float:
    """P(A > B) = sigmoid(s / tau)."""
    z = score / tau
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def gpm_score(v_a: Sequence[float], v_b: Sequence[float], eigenvalues: Sequence[float] | None = None) -> float:
    """s(A > B) = <R v_A, v_B> for R = blockdiag([[0, -l_k], [l_k, 0]]) (l_k = 1 without eigenvalues).

    Summed in one fixed order in Python floats, so gpm_score(b, a) == -gpm_score(a, b) exactly."""
    total = 0.0
    for k in range(len(v_a) // 2):
        term = v_a[2 * k] * v_b[2 * k + 1] - v_a[2 * k + 1] * v_b[2 * k]
        total += (eigenvalues[k] if eigenvalues is not None else 1.0) * term
    return total


@dataclass(frozen=True)
class GpmSequence:
    """One (prompt, answer) as the backbone reads it."""

    key: tuple  # (prompt key, answer): the embedding cache's key
    prompt: str  # the prompt key: the eigenvalue cache's key
    ids: tuple  # token ids, ending with EOS
    prompt_end: int  # index of the prompt's last token in ids (read by the prompt head)
    truncated: bool


def _resolve_file(transformers, path: str, filename: str) -> str | None:
    """The local path of `filename` in the model folder (or the Hub's cache); None when it is not there."""
    if os.path.isdir(path):
        candidate = os.path.join(path, filename)
        return candidate if os.path.isfile(candidate) else None
    try:
        return transformers.utils.cached_file(path, filename, _raise_exceptions_for_missing_entries=False)
    except (OSError, ValueError):
        return None


def read_head(transformers, torch, path: str, hidden_size: int) -> tuple[int, object, object | None]:
    """(d, value head [d, H], eigenvalue head [d/2, H] or None) as float32 tensors, checked
    against gpm_config.json and the backbone's hidden size; one-line ModelLoadErrors."""
    config_file = _resolve_file(transformers, path, CONFIG_FILE)
    if config_file is None:
        raise ModelLoadError(f"the GPM config file {CONFIG_FILE} is missing from {path!r}; {LAYOUT_HINT}")
    try:
        with open(config_file, encoding="utf-8") as fh:
            head_config = json.load(fh)
        d = int(head_config["value_head_dim"])
        prompt_head = bool(head_config.get("prompt_head", False))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"could not read {CONFIG_FILE} of {path!r} ({type(exc).__name__}: {exc}); {LAYOUT_HINT}") from None
    if d < 2 or d % 2:
        raise ModelLoadError(f"{CONFIG_FILE} of {path!r} has value_head_dim={d}: it must be even and at least 2")
    head_file = _resolve_file(transformers, path, HEAD_FILE)
    if head_file is None:
        raise ModelLoadError(f"the GPM head file {HEAD_FILE} is missing from {path!r}; {LAYOUT_HINT}")
    from safetensors.torch import load_file

    try:
        tensors = load_file(head_file)
    except Exception as exc:  # a corrupt or foreign file
        raise ModelLoadError(f"could not read {HEAD_FILE} of {path!r}: {type(exc).__name__}: {exc}") from None

    def matrix(name: str, rows: int):
        if name not in tensors:
            raise ModelLoadError(f"{HEAD_FILE} of {path!r} lacks {name}; {LAYOUT_HINT}")
        weight = tensors[name]
        if tuple(weight.shape) != (rows, hidden_size):
            raise ModelLoadError(
                f"{name} in {HEAD_FILE} of {path!r} has shape {list(weight.shape)}, expected [{rows}, {hidden_size}] "
                f"(value_head_dim={d}, the backbone's hidden_size={hidden_size})"
            )
        return weight.to(torch.float32)

    value_head = matrix(VALUE_HEAD, d)
    eigen_head = matrix(EIGEN_HEAD, d // 2) if prompt_head else None
    if not prompt_head and EIGEN_HEAD in tensors:
        raise ModelLoadError(f"{HEAD_FILE} of {path!r} holds {EIGEN_HEAD} but {CONFIG_FILE} says prompt_head is false")
    return d, value_head, eigen_head


class GpmModel(TransformersAdapter):
    """A causal LM backbone with GPM's value head (and optional prompt head); see the module doc."""

    kind = "gpm"
    name: str
    dtype: str
    device: str
    pairwise = True  # answers JudgeRequest(prompt, A, B): s(A > B)
    steps = False
    versions: dict  # torch, transformers: set when loaded

    close = TransformersAdapter.close  # lets the weights go (and the GPU memory they hold)

    def __init__(self, spec: ModelSpec):
        torch, transformers = self._start(spec)
        path = spec.model
        config = load_config(
            transformers, spec, path, accepts=BACKBONE_SUFFIXES,
            refusal="a causal language model backbone: --rm-kind gpm reads a ...ForCausalLM or ...Model with GPM's head",
        )
        hidden_size = int(getattr(config, "hidden_size", 0) or 0)
        # the head is checked before the (slow) backbone loads
        self.dim, value_head, eigen_head = read_head(transformers, torch, path, hidden_size)
        self.prompt_head = eigen_head is not None
        self.tau = TAU
        self._load_tokenizer(transformers, spec, path, config)
        if self.tokenizer.eos_token_id is None:
            raise ModelLoadError(f"the tokenizer of {path!r} has no EOS token, where GPM reads its embedding")
        self.eos_id = int(self.tokenizer.eos_token_id)
        self._load_model(transformers, spec, path, transformers.AutoModel, must_be="a causal language model backbone")
        limit = self._setup_padding(spec, config)
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if limit is not None and not has_template:
            limit = max(1, limit - 1)  # room for the EOS that is appended
        self.encoder = ChatEncoder(self.tokenizer, limit)
        self.value_head = value_head.to(self.device)
        self.eigen_head = eigen_head.to(self.device) if eigen_head is not None else None
        parameters = inspect.signature(self.model.forward).parameters
        self._accepts_position_ids = "position_ids" in parameters
        self._accepts_use_cache = "use_cache" in parameters
        self.forwards = 0  # sequences run through the backbone
        self.forward_passes = 0  # batched calls of the backbone
        self._embeddings: dict[tuple, list[float]] = {}  # (prompt key, answer) -> v
        self._eigenvalues: dict[str, list[float]] = {}  # prompt key -> l_k, shared by all its pairs

    # -- preparing -------------------------------------------------------------------------
    def _force_eos(self, ids: list[int]) -> list[int]:
        if ids and ids[-1] == self.eos_id:
            return ids
        if self.encoder.has_template and ids:
            return ids[:-1] + [self.eos_id]
        return ids + [self.eos_id]

    def prepare(self, requests: Sequence[JudgeRequest]) -> list[Prepared]:
        if len(self._embeddings) > CACHE_LIMIT:  # kept across chunks and passes, within a bound
            self.clear_cache()
        for r in requests:
            if not isinstance(r, JudgeRequest):
                raise TypeError(f"a gpm model compares two answers (JudgeRequest); it got a {type(r).__name__}")
        keys: dict[tuple, tuple] = {}  # (prompt key, answer) -> (prompt, answer), in order
        for r in requests:
            for answer in (r.answer_a, r.answer_b):
                keys.setdefault((r.prompt_key(), answer), (r.prompt, answer))
        conversations = [prompt_messages(p) + [{"role": "assistant", "content": a}] for p, a in keys.values()]
        encoded = self.encoder.encode_many(conversations)
        prompt_lengths: dict[str, int] = {}
        if self.prompt_head:
            prompts = {key[0]: prompt for key, (prompt, _) in keys.items()}
            rendered = self.encoder.encode_many([prompt_messages(p) for p in prompts.values()])
            prompt_lengths = {k: len(ids) for k, (ids, _) in zip(prompts, rendered)}
        sequences: dict[tuple, GpmSequence] = {}
        for key, (ids, truncated) in zip(keys, encoded):
            ids = self._force_eos(list(ids))
            prompt_end = max(0, min(prompt_lengths.get(key[0], len(ids)), len(ids)) - 1)
            sequences[key] = GpmSequence(key, key[0], tuple(ids), prompt_end, truncated)
        out = []
        for r in requests:
            a, b = sequences[(r.prompt_key(), r.answer_a)], sequences[(r.prompt_key(), r.answer_b)]
            out.append(Prepared(r, max(len(a.ids), len(b.ids)), a.truncated or b.truncated, (a, b)))
        return out

    # -- scoring ---------------------------------------------------------------------------
    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        needed = list({s.key: s for p in batch for s in p.payload if s.key not in self._embeddings}.values())
        needed.sort(key=lambda s: -len(s.ids))
        rows = max(1, len(batch))  # no more rows per forward pass than the engine's batch has
        for start in range(0, len(needed), rows):
            self._embed(needed[start : start + rows])
        scores = []
        for p in batch:
            a, b = p.payload
            eigenvalues = self._eigenvalues[a.prompt] if self.prompt_head else None
            scores.append(gpm_score(self._embeddings[a.key], self._embeddings[b.key], eigenvalues))
        return scores

    def _embed(self, sequences: list[GpmSequence]) -> None:
        """Runs the backbone once on `sequences` and keeps their embeddings (and their prompts' l_k)."""
        torch = self.torch
        left = self.tokenizer.padding_side == "left"
        input_ids, attention, offsets = pad_rows(torch, [s.ids for s in sequences], self.pad_id, left)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}
        if self._accepts_position_ids:
            inputs["position_ids"] = position_ids(inputs["attention_mask"])
        if self._accepts_use_cache:
            inputs["use_cache"] = False
        with torch.inference_mode():
            hidden = self.model(**inputs).last_hidden_state
            rows = torch.arange(len(sequences), device=hidden.device)
            last = torch.tensor([o + len(s.ids) - 1 for s, o in zip(sequences, offsets)], device=hidden.device)
            vectors = torch.nn.functional.normalize(hidden[rows, last].float() @ self.value_head.T, p=2, dim=-1)
            eigen = None
            if self.eigen_head is not None:
                ends = torch.tensor([o + s.prompt_end for s, o in zip(sequences, offsets)], device=hidden.device)
                eigen = torch.softmax(hidden[rows, ends].float() @ self.eigen_head.T, dim=-1).cpu().tolist()
        self.forwards += len(sequences)
        self.forward_passes += 1
        for i, (s, v) in enumerate(zip(sequences, vectors.cpu().tolist())):
            self._embeddings[s.key] = v
            if eigen is not None:
                self._eigenvalues.setdefault(s.prompt, eigen[i])  # one l per prompt: both orders share it

    def clear_cache(self) -> None:
        """Forget every embedding and eigenvalue computed so far (the forward counters stay)."""
        self._embeddings.clear()
        self._eigenvalues.clear()

    def embeddings(self, prompt, answers: Sequence[str]) -> list[list[float]]:
        """The unit embeddings of `answers` to `prompt` (one forward per answer not yet known); for
        scripts and tests."""
        requests = [JudgeRequest(prompt, a, a) for a in answers]
        prepared = self.prepare(requests)
        self.score_batch(prepared)
        return [self._embeddings[(JudgeRequest(prompt, a, a).prompt_key(), a)] for a in answers]


def build(spec: ModelSpec) -> GpmModel:
    return GpmModel.build(spec)
