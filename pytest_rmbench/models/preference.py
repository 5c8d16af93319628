"""Pairwise preference models with PairRM's input layout (`--rm-kind preference`).

A preference model reads (prompt, A, B) in ONE sequence and gives a logit that A beats B.
The adapter is `pairwise`: the engine sends it JudgeRequest(prompt, A, B) and always in both
placements, so every item sees M[A][B] and M[B][A] and the PairRM compare logit
M[A][B] - M[B][A] is their difference (`pair` / `judged` items report it halved as the
margin; `best_of_n` ranks by it, see items/best_of_n.py). One request is one forward pass:
a pair costs 2 forwards, a best_of_n item of n answers n(n-1) under round robin. The two
placements' verdicts are the item's `verdicts`, so the report's `judge` block counts the
pairs whose preference flips with the placement (order inconsistency).

The checkpoint folder (our layout, documented here; LLM-Blender's own PairRM-hf files need
converting to it)
------------------------------------------------------------------------------------
- the backbone: any encoder transformers loads with AutoModel (DeBERTa-v2/v3 as PairRM,
  BERT, ...): config.json and *.safetensors (pickle .bin only with --rm-allow-pickle),
  repository code only with --rm-trust-remote-code; its tokenizer, which must hold the three
  prefix tokens as single tokens (added special tokens) and a pad token;
- ``pairrm_head.safetensors`` (required; ``pairrm_head.bin`` with --rm-allow-pickle, loaded
  with weights_only=True): the head, tensors ``dense.weight`` [H', D], ``dense.bias`` [H'],
  ``out_proj.weight`` [T, H'], ``out_proj.bias`` [T]. D = H reads the candidate prefix
  state alone; D = 2H reads [source prefix state; candidate prefix state], as LLM-Blender's
  DebertaV2PairRM head does (our reading of its code);
- ``pairrm_config.json`` (optional): ``source_prefix`` ("<|source|>"), ``candidate1_prefix``
  ("<|candidate1|>"), ``candidate2_prefix`` ("<|candidate2|>"), ``source_max_length`` (1224)
  and ``max_length`` (2048), PairRM's values by default.

Input and head (PairRM, families.md section 2)
-----------------------------------------------
The prompt (chat prompts written out as "User: ..." lines, as the judge kind does) is
encoded as prefix + text with the tokenizer's special tokens (e.g. [CLS] ... [SEP]) and cut
from its end to source_max_length tokens; each answer likewise to
(max_length - source length) // 2 tokens. The sequence is source + candidate1 + candidate2.
max_length is the smallest of pairrm_config's, --rm-max-length, the tokenizer's limit and
(for backbones with absolute positions only) max_position_embeddings; when it is below
PairRM's 2048, source_max_length shrinks in proportion (our rule). The hidden states at the
two candidate prefix tokens go through the head, Linear -> tanh -> Linear, and
M[A][B] = mean over the T outputs of (head(A) - head(B)); > 0 means A is better.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Sequence

from ..items import JudgeRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .judge import question_text
from .loading import UNBOUNDED, TransformersAdapter, load_config, pad_rows, position_ids

HEAD_FILE = "pairrm_head.safetensors"
PICKLE_HEAD_FILE = "pairrm_head.bin"
CONFIG_FILE = "pairrm_config.json"
DEFAULTS = {"source_prefix": "<|source|>", "candidate1_prefix": "<|candidate1|>", "candidate2_prefix": "<|candidate2|>",
            "source_max_length": 1224, "max_length": 2048}
HEAD_KEYS = ("dense.weight", "dense.bias", "out_proj.weight", "out_proj.bias")
REFUSED = ("ForCausalLM", "LMHeadModel")


def read_pairrm_config(folder: str) -> dict:
    """pairrm_config.json over PairRM's defaults; ModelLoadError for a file that is not that."""
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.exists(path):
        return dict(DEFAULTS)
    try:
        with open(path, encoding="utf-8") as fh:
            given = json.load(fh)
        if not isinstance(given, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not read {path}: {type(exc).__name__}: {exc}") from None
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ModelLoadError(f"{path} has unknown keys {', '.join(unknown)}; it may hold {', '.join(DEFAULTS)}")
    config = {**DEFAULTS, **given}
    for key in ("source_max_length", "max_length"):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < 8:
            raise ModelLoadError(f"{path}: {key} must be an integer of at least 8, got {config[key]!r}")
    return config


def read_head(torch, folder: str, allow_pickle: bool) -> dict:
    """The head tensors; one clear ModelLoadError when the file is missing or not a head."""
    path = os.path.join(folder, HEAD_FILE)
    if os.path.exists(path):
        from safetensors.torch import load_file

        try:
            tensors = load_file(path)
        except Exception as exc:
            raise ModelLoadError(f"could not read the preference head {path}: {type(exc).__name__}: {exc}") from None
    elif allow_pickle and os.path.exists(os.path.join(folder, PICKLE_HEAD_FILE)):
        path = os.path.join(folder, PICKLE_HEAD_FILE)
        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelLoadError(f"could not read the preference head {path}: {type(exc).__name__}: {exc}") from None
    else:
        also = "" if not os.path.exists(os.path.join(folder, PICKLE_HEAD_FILE)) else (
            f" ({PICKLE_HEAD_FILE} is there, but pickle runs code when loaded: pass --rm-allow-pickle to use it)")
        raise ModelLoadError(f"the preference model {folder!r} has no {HEAD_FILE}: --rm-kind preference needs PairRM's "
                             f"head next to the backbone (tensors {', '.join(HEAD_KEYS)}; see pytest_rmbench/models/preference.py){also}")
    missing = [k for k in HEAD_KEYS if k not in tensors]
    if missing:
        raise ModelLoadError(f"the preference head {path} lacks the tensors {', '.join(missing)} (it needs {', '.join(HEAD_KEYS)})")
    dense, out = tensors["dense.weight"], tensors["out_proj.weight"]
    if (dense.ndim != 2 or out.ndim != 2 or out.shape[1] != dense.shape[0] or tensors["dense.bias"].shape != (dense.shape[0],)
            or tensors["out_proj.bias"].shape != (out.shape[0],)):
        raise ModelLoadError(f"the preference head {path} has shapes that do not chain: dense {tuple(dense.shape)}, "
                             f"out_proj {tuple(out.shape)}")
    return {k: tensors[k].float() for k in HEAD_KEYS}


class PreferenceModel(TransformersAdapter):
    """An encoder with PairRM's layout and head: a pairwise preference model."""

    kind = "preference"
    name: str
    dtype: str
    device: str
    pairwise = True  # judges (prompt, A, B): one placement per request
    steps = False
    versions: dict  # torch, transformers: set when loaded

    close = TransformersAdapter.close  # lets the weights go (and the GPU memory they hold)

    def __init__(self, spec: ModelSpec):
        torch, transformers = self._start(spec)
        path = spec.model
        if not os.path.isdir(path):
            from .fingerprint import local_model_dir

            path = local_model_dir(path) or path
        self.layout = read_pairrm_config(path) if os.path.isdir(path) else dict(DEFAULTS)
        config = load_config(transformers, spec, path, accepts=("",),
                             refusal="an encoder")
        if any(a.endswith(REFUSED) for a in (getattr(config, "architectures", None) or [])):
            raise ModelLoadError(f"the model {path!r} is a {', '.join(config.architectures)}, not an encoder: "
                                 "--rm-kind preference needs an encoder backbone such as DeBERTa (PairRM)")
        head = read_head(torch, path, spec.allow_pickle) if os.path.isdir(path) else None
        if head is None:
            raise ModelLoadError(f"the preference model {path!r} is not a local folder: its {HEAD_FILE} cannot be read")
        self._load_tokenizer(transformers, spec, path, config)
        self.prefix_ids = tuple(self._prefix_id(self.layout[k]) for k in ("source_prefix", "candidate1_prefix", "candidate2_prefix"))
        self._load_model(transformers, spec, path, transformers.AutoModel)
        self._setup_padding(spec, config)
        self.limit = self._limit(spec, config)
        self.source_limit = min(self.layout["source_max_length"],
                                self.limit * self.layout["source_max_length"] // self.layout["max_length"])
        hidden = int(getattr(config, "hidden_size", 0) or 0)
        width = head["dense.weight"].shape[1]
        if width not in (hidden, 2 * hidden):
            raise ModelLoadError(f"the preference head reads {width} inputs; the backbone's hidden size is {hidden} "
                                 f"(it must read {hidden} or {2 * hidden})")
        self.with_source = width == 2 * hidden
        self.head = {k: v.to(self.device) for k, v in head.items()}
        # the special tokens the tokenizer puts around one text (DeBERTa: [CLS] ... [SEP]), read off the prefix alone
        alone = list(self.tokenizer(self.layout["source_prefix"], add_special_tokens=True)["input_ids"])
        at = alone.index(self.prefix_ids[0])
        self.wrap = (alone[:at], alone[at + 1:])
        self.special = len(alone) - 1
        self._accepts_position_ids = "position_ids" in inspect.signature(self.model.forward).parameters

    # -- loading ---------------------------------------------------------------------------
    def _prefix_id(self, token: str) -> int:
        ids = list(self.tokenizer(token, add_special_tokens=False)["input_ids"])
        if len(ids) != 1 or (self.tokenizer.unk_token_id is not None and ids[0] == self.tokenizer.unk_token_id):
            raise ModelLoadError(f"the tokenizer of {self.name!r} has no single token for the prefix {token!r}; "
                                 "add it as a special token (PairRM's tokenizer has <|source|>, <|candidate1|>, <|candidate2|>)")
        return ids[0]

    def _limit(self, spec: ModelSpec, config) -> int:
        limits = [self.layout["max_length"]]
        if spec.max_length:
            limits.append(spec.max_length)
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < UNBOUNDED:
            limits.append(tokenizer_limit)
        # DeBERTa-v2/v3 (PairRM) use relative positions only: max_position_embeddings is no limit there
        positions = getattr(config, "max_position_embeddings", None)
        if getattr(config, "position_biased_input", True) and isinstance(positions, int) and 0 < positions < UNBOUNDED:
            limits.append(positions)
        return min(limits)

    # -- the input -------------------------------------------------------------------------
    def _segments(self, texts: list[str], keep: list[int]) -> tuple[list[list[int]], list[bool]]:
        """Each prefix + text with the tokenizer's special tokens, its content cut from the end
        to keep[i] tokens in all (special tokens included), as tokenizer.encode(truncation=True)."""
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        out, cut = [], []
        for ids, limit in zip(encoded, keep):
            room = max(1, limit - self.special)  # the prefix token always stays
            out.append(self.wrap[0] + list(ids[:room]) + self.wrap[1])
            cut.append(len(ids) > room)
        return out, cut

    def encode(self, requests: Sequence[JudgeRequest]) -> list[tuple[list[int], tuple[int, int, int], bool]]:
        """(ids, positions of the source, candidate1 and candidate2 prefix tokens, truncated) per request."""
        lay = self.layout
        sources, source_cut = self._segments([lay["source_prefix"] + question_text(r.prompt) for r in requests],
                                             [self.source_limit] * len(requests))
        shares = [max(self.special + 1, (self.limit - len(s)) // 2) for s in sources]
        firsts, first_cut = self._segments([lay["candidate1_prefix"] + r.answer_a for r in requests], shares)
        seconds, second_cut = self._segments([lay["candidate2_prefix"] + r.answer_b for r in requests], shares)
        out = []
        for k, (s, a, b) in enumerate(zip(sources, firsts, seconds)):
            where = (s.index(self.prefix_ids[0]), len(s) + a.index(self.prefix_ids[1]), len(s) + len(a) + b.index(self.prefix_ids[2]))
            out.append((s + a + b, where, source_cut[k] or first_cut[k] or second_cut[k]))
        return out

    def prepare(self, requests: Sequence[JudgeRequest]) -> list[Prepared]:
        for r in requests:
            if not isinstance(r, JudgeRequest):
                raise TypeError(f"a preference model compares two answers; it cannot score a {type(r).__name__}")
        return [Prepared(r, len(ids), cut, (ids, where)) for r, (ids, where, cut) in zip(requests, self.encode(requests))]

    # -- scoring ---------------------------------------------------------------------------
    def head_scores(self, states):
        """The head's T outputs for states [N, D]."""
        torch = self.torch
        h = torch.tanh(states @ self.head["dense.weight"].T + self.head["dense.bias"])
        return h @ self.head["out_proj.weight"].T + self.head["out_proj.bias"]

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        torch = self.torch
        left = self.tokenizer.padding_side == "left"
        input_ids, attention, offsets = pad_rows(torch, [p.payload[0] for p in batch], self.pad_id, left)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}
        if self._accepts_position_ids:
            inputs["position_ids"] = position_ids(inputs["attention_mask"])  # left padding shifts no position
        with torch.inference_mode():
            states = self.model(**inputs).last_hidden_state.float()
            rows = torch.arange(len(batch), device=states.device)
            at = [[offset + p.payload[1][k] for p, offset in zip(batch, offsets)] for k in range(3)]
            source, first, second = (states[rows, torch.tensor(cols, device=states.device)] for cols in at)
            if self.with_source:
                first, second = torch.cat([source, first], dim=-1), torch.cat([source, second], dim=-1)
            logits = (self.head_scores(first) - self.head_scores(second)).mean(dim=-1)
        return logits.cpu().tolist()


def build(spec: ModelSpec) -> PreferenceModel:
    return PreferenceModel.build(spec)
