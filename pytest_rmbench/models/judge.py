"""Generative pairwise judges: a causal language model asked which of two answers is better.

`--rm-kind judge --rm-model=PATH` loads PATH with AutoModelForCausalLM (safetensors only
unless --rm-allow-pickle, repository code only with --rm-trust-remote-code). The adapter is
`pairwise`: the engine sends it JudgeRequest(prompt, answer_a, answer_b) in both orders and
applies JudgeBench's rule to the two verdicts.

The judge prompt
----------------
DEFAULT_TEMPLATE below, or the file given by --rm-judge-template. A template holds three
placeholders, each at least once:

- ``{question}``: the item's prompt; a multi-turn prompt is written out as one text, a line
  per message: "User: ...", "Assistant: ...", "System: ...";
- ``{answer_a}``: the answer shown first;
- ``{answer_b}``: the answer shown second.

Only these three are replaced (in one pass, so an answer that happens to contain
"{answer_b}" is left alone); any other braces in a template stay as they are.
The filled template is sent as ONE user message through the tokenizer's chat template with
add_generation_prompt=True, and that text is tokenized without special tokens (the template
holds BOS, so it is never doubled). Without a chat template the filled template is the
plain text, tokenized with the tokenizer's special tokens.

Modes (--rm-judge-mode)
-----------------------
- ``logprob`` (default): one forward pass per request. The score is
  log p(label A) - log p(label B) for the next token after the prompt: positive means A>B,
  negative B>A, exactly 0 a tie. Deterministic, and independent of batching and padding
  (positions count real tokens only; the logits are read at each row's last real token).
- ``generate``: greedy decoding of at most MAX_NEW_TOKENS tokens, read by `parse_verdict`:
  the first "[[A]]" or "[[B]]" anywhere in the reply; otherwise a reply whose first
  non-empty line is a lone letter A or B (wrapping punctuation or markdown such as "B.",
  "(A)" or "**B**" is allowed). The score is +1 (A), -1 (B), or 0 (a tie) for anything else.

Label tokens
------------
The label tokens are the FIRST token of tokenizing "A" and of tokenizing "B" alone, without
special tokens (so without a leading space). That is the token a reply starts with in each
tokenizer family: a SentencePiece tokenizer adds its word-start marker ("▁A") just as it does
at the start of a reply, a byte-level BPE gives the bare "A" that follows the generation
prompt's newline. Tokenizers where " A" and "A" differ therefore get the no-space form. A
tokenizer that maps "A" or "B" to its unknown token, or to the same first token, cannot be
used (a clear ModelLoadError says so).

Truncation
----------
The limit is the smallest of the tokenizer's model_max_length, the model's
max_position_embeddings and --rm-max-length (in generate mode, MAX_NEW_TOKENS less, when that
leaves room). A judge prompt over it is cut, never refused (Prepared.truncated=True):
1. each answer is cut from its END to an equal share of the room that the template and the
   question leave (an answer shorter than its share stays whole and the other may use the
   rest); the two answers together keep at least half of the room the template leaves, so a
   very long question cannot squeeze them out;
2. then, if still needed, the question is cut from the LEFT (its oldest text goes first).
Both orders of a pair are cut alike, as the rule is symmetric in the two answers. Only when
the template alone is over the limit are the prompt's last tokens kept.
"""

from __future__ import annotations

import copy
import inspect
import re
from dataclasses import dataclass
from typing import Sequence

from ..items import JudgeRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import FALLBACK_ROLE_NAMES
from .loading import TransformersAdapter, load_config, pad_rows, position_ids

PLACEHOLDERS = ("question", "answer_a", "answer_b")
LABELS = ("A", "B")
MODES = ("logprob", "generate")
MAX_NEW_TOKENS = 16  # generate mode: a verdict such as "[[A]]" fits many times over

DEFAULT_TEMPLATE = """\
Please act as an impartial judge. Compare the two answers below to the user's question and \
decide which one is better: more helpful, correct, relevant and clear. Do not let the order \
of the answers or their length sway you.

[Question]
{question}

[Answer A]
{answer_a}

[Answer B]
{answer_b}

Which answer is better? Reply with a single letter: A or B."""

_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
BRACKETED_VERDICT = re.compile(r"\[\[\s*(A|B)\s*\]\]")
LONE_LETTER = re.compile(r"""^[\s*_.:;,!()\[\]"'`]*(A|B)[\s*_.:;,!()\[\]"'`]*$""")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


# -- the template ------------------------------------------------------------------------------


def load_template(path: str | None) -> str:
    """The template in `path` (UTF-8), or DEFAULT_TEMPLATE; ModelLoadError names the file and
    the missing placeholder."""
    if not path:
        return DEFAULT_TEMPLATE
    try:
        with open(path, encoding="utf-8") as fh:
            template = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"could not read the judge template file {path!r}: {type(exc).__name__}: {exc}") from None
    missing = [name for name in PLACEHOLDERS if "{" + name + "}" not in template]
    if missing:
        raise ModelLoadError(
            f"the judge template file {path!r} lacks the placeholder {', '.join('{' + m + '}' for m in missing)}; "
            "a judge template needs {question}, {answer_a} and {answer_b}"
        )
    return template


def fill_template(template: str, question: str, answer_a: str, answer_b: str) -> str:
    values = {"question": question, "answer_a": answer_a, "answer_b": answer_b}
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def question_text(prompt) -> str:
    """A string prompt as it is; chat messages as "User: ..." / "Assistant: ..." lines
    (one user message alone: just its text)."""
    if isinstance(prompt, str):
        return prompt
    messages = list(prompt)
    if len(messages) == 1 and messages[0][0] == "user":
        return messages[0][1]
    return "\n".join(f"{FALLBACK_ROLE_NAMES.get(role, str(role).capitalize())}: {content}" for role, content in messages)


def parse_verdict(reply: str) -> float:
    """+1.0 for A, -1.0 for B, 0.0 (a tie) when the reply says neither (see the module doc)."""
    match = BRACKETED_VERDICT.search(reply)
    if match is None:
        first_line = next((line for line in reply.splitlines() if line.strip()), "")
        match = LONE_LETTER.match(first_line)
    if match is None:
        return 0.0
    return 1.0 if match.group(1) == "A" else -1.0


def label_token_ids(tokenizer) -> tuple[int, int]:
    """The first token of "A" and of "B", each tokenized alone without special tokens."""
    firsts = []
    for label in LABELS:
        ids = list(tokenizer(label, add_special_tokens=False)["input_ids"])
        if not ids:
            raise ModelLoadError(f"the tokenizer turns the judge label {label!r} into no tokens at all")
        if tokenizer.unk_token_id is not None and ids[0] == tokenizer.unk_token_id:
            raise ModelLoadError(f"the tokenizer has no token for the judge label {label!r} (it becomes the unknown token)")
        firsts.append(ids[0])
    if firsts[0] == firsts[1]:
        raise ModelLoadError(
            f"the judge labels 'A' and 'B' start with the same token ({firsts[0]}) in this tokenizer, "
            "so their log-probabilities cannot tell the answers apart"
        )
    return firsts[0], firsts[1]


def _share(a: int, b: int, room: int) -> tuple[int, int]:
    """Token counts to keep of two answers of a and b tokens within `room`: equal shares,
    an answer shorter than its share whole and the rest to the other."""
    room = max(0, room)
    if a + b <= room:
        return a, b
    half = room // 2
    if a <= half:
        return a, min(b, room - a)
    if b <= half:
        return min(a, room - b), b
    return half, half


@dataclass
class FittedPrompt:
    """The judge prompt of one request as sent: its (possibly cut) parts and token ids."""

    question: str
    answer_a: str
    answer_b: str
    ids: list
    truncated: bool


# -- the adapter -------------------------------------------------------------------------------


class JudgeModel(TransformersAdapter):
    """A causal LM as a pairwise judge. Loading, dtype, padding and length-limit rules are
    the classifier's (pytest_rmbench.models.loading); the prompt and scoring are its own."""

    kind = "judge"
    name: str
    dtype: str
    device: str
    pairwise = True  # judges (prompt, A, B)
    steps = False
    versions: dict  # torch, transformers: set when loaded

    close = TransformersAdapter.close  # lets the weights go (and the GPU memory they hold)

    def __init__(self, spec: ModelSpec):
        _, transformers = self._start(spec)
        options = spec.options or {}
        self.mode = str(options.get("judge_mode") or "logprob").strip().lower()
        if self.mode not in MODES:
            raise ModelLoadError(f"unknown --rm-judge-mode {self.mode!r}; choose logprob or generate")
        self.template_path = options.get("judge_template") or None
        self.template = load_template(self.template_path)  # before the (slow) model load
        path = spec.model
        config = load_config(
            transformers, spec, path, accepts=CAUSAL_SUFFIXES,
            refusal="a causal language model: a judge (--rm-kind judge) needs a ...ForCausalLM that can write the verdict",
        )
        self._load_tokenizer(transformers, spec, path, config)
        self.label_ids = label_token_ids(self.tokenizer)
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self._check_chat_template()
        self._load_model(transformers, spec, path, transformers.AutoModelForCausalLM)
        limit = self._setup_padding(spec, config)
        if self.mode == "generate" and limit is not None and limit > 2 * MAX_NEW_TOKENS:
            limit -= MAX_NEW_TOKENS  # the reply needs room too
        self.limit = limit
        parameters = inspect.signature(self.model.forward).parameters
        self._accepts_position_ids = "position_ids" in parameters
        self._accepts_use_cache = "use_cache" in parameters
        self._keep_argument = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in parameters), None)

    # -- loading ---------------------------------------------------------------------------
    def _check_chat_template(self) -> None:
        if not self.has_template:
            return
        try:
            self._render("question")
        except Exception as exc:
            raise ModelLoadError(
                f"the chat template of {self.name!r} failed on a single user message with a generation prompt: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    # -- the prompt ------------------------------------------------------------------------
    def _render(self, judge_text: str) -> str:
        if not self.has_template:
            return judge_text
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": judge_text}], tokenize=False, add_generation_prompt=True
        )

    def _encode_many(self, judge_texts: list[str]) -> list[list[int]]:
        if not judge_texts:
            return []
        rendered = [self._render(t) for t in judge_texts]
        # with a chat template its text already holds BOS: no special tokens are added
        return [list(ids) for ids in self.tokenizer(rendered, add_special_tokens=not self.has_template)["input_ids"]]

    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _cut(self, text: str, keep: int, from_left: bool) -> str:
        ids = self._tokens(text)
        if len(ids) <= keep:
            return text
        if keep <= 0:
            return ""
        return self.tokenizer.decode(ids[-keep:] if from_left else ids[:keep])

    def fit(self, request: JudgeRequest) -> FittedPrompt:
        """The judge prompt of `request`, cut to the limit by the rule in the module doc."""
        question = question_text(request.prompt)
        (ids,) = self._encode_many([fill_template(self.template, question, request.answer_a, request.answer_b)])
        if self.limit is None or len(ids) <= self.limit:
            return FittedPrompt(question, request.answer_a, request.answer_b, ids, False)
        return self._fit_slow(question, request.answer_a, request.answer_b, ids)

    def _fit_slow(self, question: str, answer_a: str, answer_b: str, ids: list[int]) -> FittedPrompt:
        limit = self.limit
        (empty,) = self._encode_many([fill_template(self.template, "", "", "")])
        budget = limit - len(empty)
        if budget <= 0:  # the template alone is too long: keep its end, where the verdict is asked for
            return FittedPrompt(question, answer_a, answer_b, ids[-limit:], True)
        # a placeholder used twice costs its text twice
        counts = {name: max(1, len(re.findall(r"\{" + name + r"\}", self.template))) for name in PLACEHOLDERS}
        tq, ta, tb = (len(self._tokens(t)) for t in (question, answer_a, answer_b))
        room = max(budget - tq * counts["question"], budget // 2)  # for both answers, in template tokens
        keep_a, keep_b = _share(ta, tb, room // max(counts["answer_a"], counts["answer_b"]))
        keep_q = min(tq, max(0, budget - keep_a * counts["answer_a"] - keep_b * counts["answer_b"]) // counts["question"])
        for _ in range(32):
            parts = (self._cut(question, keep_q, True), self._cut(answer_a, keep_a, False), self._cut(answer_b, keep_b, False))
            (ids,) = self._encode_many([fill_template(self.template, *parts)])
            excess = len(ids) - limit
            if excess <= 0:
                return FittedPrompt(*parts, ids, True)
            # token counts of the parts do not add up exactly (merges across the joins): shave more
            if keep_a > 0 or keep_b > 0:
                step = -(-excess // 2)
                keep_a, keep_b = max(0, keep_a - step), max(0, keep_b - step)
            else:
                keep_q = max(0, keep_q - excess)
        return FittedPrompt(*parts, ids[-limit:], True)

    def prepare(self, requests: Sequence[JudgeRequest]) -> list[Prepared]:
        questions = [question_text(r.prompt) for r in requests]
        texts = [fill_template(self.template, q, r.answer_a, r.answer_b) for q, r in zip(questions, requests)]
        out = []
        for request, question, ids in zip(requests, questions, self._encode_many(texts)):
            if self.limit is not None and len(ids) > self.limit:
                fitted = self._fit_slow(question, request.answer_a, request.answer_b, ids)
                ids, truncated = fitted.ids, True
            else:
                truncated = False
            out.append(Prepared(request, len(ids), truncated, ids))
        return out

    # -- scoring ---------------------------------------------------------------------------
    def _inputs(self, batch: Sequence[Prepared], left: bool) -> tuple[dict, list[int]]:
        """(the model's inputs: input_ids and attention_mask on the device, each row's last real
        position); a VL judge (vision_judge.py) adds its pixel tensors here."""
        input_ids, attention, offsets = pad_rows(self.torch, [p.payload for p in batch], self.pad_id, left)
        last = [offset + p.length - 1 for p, offset in zip(batch, offsets)]
        return {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}, last

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        if self.mode == "generate":
            return [parse_verdict(reply) for reply in self.generate_replies(batch)]
        return self.label_log_odds(batch)

    def label_log_odds(self, batch: Sequence[Prepared]) -> list[float]:
        """log p(A) - log p(B) for the token after each row's prompt."""
        torch = self.torch
        inputs, last = self._inputs(batch, self.tokenizer.padding_side == "left")
        input_ids, attention = inputs["input_ids"], inputs["attention_mask"]
        if self._accepts_position_ids:
            # positions count real tokens only, so left padding does not shift them
            inputs["position_ids"] = position_ids(attention)
        if self._accepts_use_cache:
            inputs["use_cache"] = False
        positions = sorted(set(last))
        if self._keep_argument == "logits_to_keep":
            # project only the positions read below onto the (large) vocabulary
            inputs["logits_to_keep"] = torch.tensor(positions, dtype=torch.long, device=input_ids.device)
        elif self._keep_argument == "num_logits_to_keep" and positions == [input_ids.shape[1] - 1]:
            inputs["num_logits_to_keep"] = 1
        else:
            positions = list(range(input_ids.shape[1]))
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        if logits.ndim != 3 or logits.shape[0] != len(batch) or logits.shape[1] != len(positions):
            raise ValueError(f"expected logits of shape ({len(batch)}, {len(positions)}, vocab), got {tuple(logits.shape)}")
        column = {pos: i for i, pos in enumerate(positions)}
        rows = torch.arange(len(batch), device=logits.device)
        cols = torch.tensor([column[pos] for pos in last], dtype=torch.long, device=logits.device)
        logp = torch.log_softmax(logits[rows, cols].float(), dim=-1)
        a, b = self.label_ids
        return (logp[:, a] - logp[:, b]).cpu().tolist()

    def generate_replies(self, batch: Sequence[Prepared]) -> list[str]:
        """Greedy replies of at most MAX_NEW_TOKENS tokens (rows left-padded, as decoding needs)."""
        torch = self.torch
        inputs, _ = self._inputs(batch, left=True)
        config = copy.deepcopy(self.model.generation_config)
        config.do_sample = False
        config.num_beams = 1
        # neutral sampling values, not None: transformers 5 fills a None from the model's own
        # generation_config (e.g. temperature=0.6) and then warns that greedy decoding ignores it
        for name, neutral in (("temperature", 1.0), ("top_p", 1.0), ("top_k", 50), ("typical_p", 1.0)):
            if hasattr(config, name):
                setattr(config, name, neutral)
        config.max_new_tokens = MAX_NEW_TOKENS
        config.max_length = None
        config.pad_token_id = self.pad_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=config)
        return self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def build(spec: ModelSpec) -> JudgeModel:
    """A causal LM judge, or a vision-language one (vision_judge.py) for a model with a vision config."""
    from .vision import is_vision_language, local_folder, read_config

    if is_vision_language(read_config(local_folder(spec.model))):
        from .vision_judge import VisionJudgeModel

        return VisionJudgeModel.build(spec)
    return JudgeModel.build(spec)
