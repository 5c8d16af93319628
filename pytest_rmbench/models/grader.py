"""Rubric graders: a generative judge writes feedback and a verdict, and the verdict is the score.

    pytest --rm-kind grader --rm-model=PATH                       # a local causal LM (transformers generate)
    pytest --rm-kind grader --rm-model='http://host:8000/v1?model=prometheus'   # chat completions

Modes (--rm-grader-mode)
------------------------
- ``absolute`` (default): Prometheus 2's absolute grading, one generation per answer. The prompt
  has Prometheus' sections (``###Task Description:``, ``###The instruction to evaluate:``,
  ``###Response to evaluate:``, ``###Reference Answer (Score 5):`` when the item has a
  ``reference``, ``###Score Rubrics:``, ``###Feedback: ``); the verdict is "[RESULT] N",
  N = 1..5, and the answer's reward is N (a `pair` passes when N(chosen) > N(rejected): ties fail).
- ``relative``: Prometheus 2's relative grading of (prompt, A, B) (``###Response A:``,
  ``###Response B:``, ``###Score Rubric:``), verdict "[RESULT] A" or "[RESULT] B". The grader is
  pairwise: items ask it in both orders and the score is +1 for A, -1 for B.
- ``checklist``: WildBench-style pairwise judging against the item's ``checklist``; the verdict is
  one of A++, A+, A=B, B+, B++ ("[RESULT] X", or a JSON ``"choice": "X"``), scored +1, +0.5, 0,
  -0.5, -1. The length penalty --rm-length-penalty K (required in this mode; -1 turns it off): a
  slight win (A+ or B+) becomes A=B when the winner's answer is more than K characters longer than
  the loser's. The prompt is this plugin's (Prometheus' layout plus a ``###Checklist:`` section),
  not WildBench's own template.

The rubric is the item's ``rubric`` field, else the text of --rm-rubric FILE; absolute and
relative grading need one (an item without either is an error naming both). The system prompt is
Prometheus' (ABS_SYSTEM_PROMPT / REL_SYSTEM_PROMPT), sent as a system message (a local chat
template that refuses system messages gets it in front of the user message instead).

Parsing and retries
-------------------
Every "[RESULT] X" marker with a value counts; markers followed by no value (an echo of the
format line) are skipped. The verdict is the value they agree on; none, a value out of range or
markers that disagree is a parse failure. A parse failure is generated again, up to
--rm-grader-retries times (default 10, as Prometheus), then the request is an error naming the
last unparsed output (clipped) — never a silent tie.

Sampling (Prometheus 2's defaults): --rm-grader-temperature 1.0, --rm-grader-top-p 0.9,
--rm-grader-max-tokens 1024, --rm-grader-repetition-penalty 1.03 (temperature 0: greedy). Seeded
from --rm-seed: a local batch seeds torch from (seed, attempt, the batch's requests); an http
request sends seed = f(--rm-seed, request, attempt), so a rerun asks the same questions with the
same seeds.

Each score carries the verdict texts it came from (`grader_outputs`): a failed item's details
hold them, clipped (items.base.item_outcome). The grader's settings are in `versions["grader"]`,
which the report's run block shows (the checklist mode's K among them).

Over http the client is models/http.py's HttpModel (retries, breaker, concurrency, secrets):
``POST {base}/v1/chat/completions`` with ``{"model", "messages", "max_tokens", "temperature",
"top_p", "repetition_penalty", "seed", "n": 1, "stream": false}``, reading
``choices[0].message.content``. Scores are not cached (sampling).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Sequence

from ..items import JudgeRequest, MultiHeadScore
from ..text import clip
from .base import ModelLoadError, ModelSpec, Prepared
from .judge import question_text
from .loading import TransformersAdapter, load_config, pad_rows

MODES = ("absolute", "relative", "checklist")
DEFAULTS = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 1024, "repetition_penalty": 1.03}
DEFAULT_RETRIES = 10
ERROR_OUTPUT_LIMIT = 300  # characters of an unparsed output in an item's error

ABS_SYSTEM_PROMPT = (
    "You are a fair judge assistant tasked with providing clear, objective feedback based on specific criteria, "
    "ensuring each assessment reflects the absolute standards set for performance."
)
REL_SYSTEM_PROMPT = (
    "You are a fair judge assistant assigned to deliver insightful feedback that compares individual performances, "
    "highlighting how each stands relative to others within the same cohort."
)

ABSOLUTE_TASK = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, {reference_clause}and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"
4. Please do not generate any other opening, closing, and explanations.
"""
RELATIVE_TASK = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, {reference_clause}and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of two responses strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, choose a better response between Response A and Response B. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (A or B)"
4. Please do not generate any other opening, closing, and explanations.
"""
CHECKLIST_TASK = """###Task Description:
An instruction (might include an Input inside it), two responses to evaluate (Response A and Response B), {reference_clause}and a checklist of what a good response does are given.
1. Write a detailed feedback that checks both responses against every item of the checklist, not evaluating in general.
2. After writing a feedback, choose one verdict: A++ (A is much better), A+ (A is slightly better), A=B (about the same), B+ (B is slightly better) or B++ (B is much better).
3. The output format should look as follows: "(write a feedback for the checklist) [RESULT] (A++, A+, A=B, B+ or B++)"
4. Please do not generate any other opening, closing, and explanations.
"""

CHOICES = {"A++": 1.0, "A+": 0.5, "A=B": 0.0, "B+": -0.5, "B++": -1.0}
_RESULT = re.compile(r"\[RESULT\]")
_ABS_VALUE = re.compile(r"\s*:?\s*[\(\[]?\s*(-?\d+(?:\.\d+)?)(?![\d.])")
# a value followed by "or" or a comma is the format line echoed ("[RESULT] (A or B)"), not a verdict
_REL_VALUE = re.compile(r"\s*:?\s*[\(\[]?\s*(?:Response\s+)?([AB])(?![A-Za-z0-9+=])(?!\s*(?:,|or\b))")
_CHOICE_VALUE = re.compile(r"\s*:?\s*[\(\[\"']?\s*(A\+\+|A\+|A=B|B\+\+|B\+)(?![+=B])(?!\s*(?:,|or\b))")
_JSON_CHOICE = re.compile(r"\"choice\"\s*:\s*\"\s*(A\+\+|A\+|A=B|B\+\+|B\+)\s*\"")


class GradeParseError(ValueError):
    """The grader's output holds no verdict that can be read; the message says why."""


class GradedScore(MultiHeadScore):
    """A grader's score (a float) that carries the verdict texts it came from (`grader_outputs`).

    A MultiHeadScore with no heads, so the engine keeps it as it is and pickling keeps the texts."""

    grader_outputs: tuple

    def __new__(cls, value: float, outputs=()):
        score = super().__new__(cls, value, ())
        score.grader_outputs = tuple(outputs)
        return score

    def __reduce__(self):
        return (GradedScore, (float(self), self.grader_outputs))


# -- parsers -----------------------------------------------------------------------------------
def _agreed(text: str, value_re: re.Pattern, what: str) -> str:
    values = []
    for marker in _RESULT.finditer(text):
        match = value_re.match(text, marker.end())
        if match:
            values.append(match.group(1))
    if not values:
        raise GradeParseError(f"no \"[RESULT] {what}\" in the output")
    if len(set(values)) > 1:
        raise GradeParseError(f"the output gives several different verdicts ({', '.join(values)})")
    return values[0]


def parse_absolute(text: str) -> int:
    """N of "[RESULT] N" (1..5); GradeParseError otherwise (see the module doc)."""
    raw = _agreed(text, _ABS_VALUE, "N")
    value = float(raw)
    if value != int(value) or not 1 <= value <= 5:
        raise GradeParseError(f"the score {raw} is not an integer from 1 to 5")
    return int(value)


def parse_relative(text: str) -> str:
    """"A" or "B" of "[RESULT] A" / "[RESULT] B"; GradeParseError otherwise."""
    return _agreed(text, _REL_VALUE, "A or B")


def parse_choice(text: str) -> str:
    """One of A++, A+, A=B, B+, B++: from "[RESULT] X", else from a JSON "choice": "X"."""
    try:
        return _agreed(text, _CHOICE_VALUE, "A++/A+/A=B/B+/B++")
    except GradeParseError as exc:
        found = {m.group(1) for m in _JSON_CHOICE.finditer(text)}
        if len(found) == 1 and "no " in str(exc)[:3]:
            return found.pop()
        raise


def length_penalty(choice: str, answer_a: str, answer_b: str, k: int) -> str:
    """WildBench's rule: with k >= 0, a slight win (A+ or B+) is a tie (A=B) when the winner's answer is
    more than k characters longer than the loser's; k = -1 turns it off."""
    if k < 0:
        return choice
    if choice == "A+" and len(answer_a) - len(answer_b) > k:
        return "A=B"
    if choice == "B+" and len(answer_b) - len(answer_a) > k:
        return "A=B"
    return choice


# -- prompts -----------------------------------------------------------------------------------
def absolute_prompt(instruction: str, response: str, rubric: str, reference: str | None = None) -> str:
    """Prometheus 2's absolute grading prompt (with the reference section when there is a reference)."""
    clause = "a reference answer that gets a score of 5, " if reference else ""
    parts = [ABSOLUTE_TASK.format(reference_clause=clause), f"###The instruction to evaluate:\n{instruction}\n",
             f"###Response to evaluate:\n{response}\n"]
    if reference:
        parts.append(f"###Reference Answer (Score 5):\n{reference}\n")
    parts += [f"###Score Rubrics:\n{rubric}\n", "###Feedback: "]
    return "\n".join(parts)


def relative_prompt(instruction: str, response_a: str, response_b: str, rubric: str, reference: str | None = None) -> str:
    """Prometheus 2's relative grading prompt."""
    clause = "a reference answer, " if reference else ""
    parts = [RELATIVE_TASK.format(reference_clause=clause), f"###Instruction:\n{instruction}\n",
             f"###Response A:\n{response_a}\n", f"###Response B:\n{response_b}\n"]
    if reference:
        parts.append(f"###Reference Answer:\n{reference}\n")
    parts += [f"###Score Rubric:\n{rubric}\n", "###Feedback: "]
    return "\n".join(parts)


def checklist_prompt(instruction: str, response_a: str, response_b: str, checklist: Sequence[str],
                     rubric: str | None = None, reference: str | None = None) -> str:
    """The checklist mode's prompt: Prometheus' layout with a ###Checklist: section (this plugin's wording)."""
    clause = "a reference answer, " if reference else ""
    parts = [CHECKLIST_TASK.format(reference_clause=clause), f"###Instruction:\n{instruction}\n",
             f"###Response A:\n{response_a}\n", f"###Response B:\n{response_b}\n"]
    if reference:
        parts.append(f"###Reference Answer:\n{reference}\n")
    parts.append("###Checklist:\n" + "\n".join(f"- {q}" for q in checklist) + "\n")
    if rubric:
        parts.append(f"###Score Rubric:\n{rubric}\n")
    parts.append("###Feedback: ")
    return "\n".join(parts)


def load_rubric(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"could not read the rubric file {path!r} (--rm-rubric): {type(exc).__name__}: {exc}") from None
    if not text:
        raise ModelLoadError(f"the rubric file {path!r} (--rm-rubric) is empty")
    return text


def _number(options: dict, key: str, default, cast):
    raw = options.get(key)
    if raw in (None, ""):
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        raise ModelLoadError(f"--rm-{key.replace('_', '-')}: expected a number, got {raw!r}") from None


class GraderSettings:
    """The grader's mode, rubric, sampling, retries and length penalty, from the spec's options."""

    def __init__(self, spec: ModelSpec):
        options = spec.options or {}
        self.mode = str(options.get("grader_mode") or "absolute").strip().lower()
        if self.mode not in MODES:
            raise ModelLoadError(f"unknown --rm-grader-mode {self.mode!r}; choose absolute, relative or checklist")
        self.rubric_path = options.get("rubric") or None
        self.rubric = load_rubric(self.rubric_path)
        self.temperature = _number(options, "grader_temperature", DEFAULTS["temperature"], float)
        self.top_p = _number(options, "grader_top_p", DEFAULTS["top_p"], float)
        self.max_tokens = _number(options, "grader_max_tokens", DEFAULTS["max_tokens"], int)
        self.repetition_penalty = _number(options, "grader_repetition_penalty", DEFAULTS["repetition_penalty"], float)
        self.retries = _number(options, "grader_retries", DEFAULT_RETRIES, int)
        self.k = _number(options, "length_penalty", None, int)
        if self.mode == "checklist" and self.k is None:
            raise ModelLoadError("--rm-grader-mode checklist needs --rm-length-penalty K (characters; -1 turns the "
                                 "penalty off): WildBench has no single default, so say which")
        if self.k is not None and self.k < -1:
            raise ModelLoadError(f"--rm-length-penalty: must be -1 (off) or at least 0, got {self.k}")
        self.seed = spec.seed or 0

    @property
    def pairwise(self) -> bool:
        return self.mode != "absolute"

    def describe(self) -> str:
        text = (f"{self.mode}; temperature {self.temperature:g}, top_p {self.top_p:g}, max_tokens {self.max_tokens}, "
                f"repetition_penalty {self.repetition_penalty:g}, retries {self.retries}")
        if self.mode == "checklist":
            text += f"; length penalty K={self.k}" + (" (off)" if self.k == -1 else "")
        return text

    # -- one request -> the grader's messages, and its output -> a score ----------------------
    def messages(self, request) -> list[dict]:
        """[system, user] messages of the grading prompt; ValueError when the item lacks what the mode needs."""
        instruction = question_text(request.prompt)
        rubric = getattr(request, "rubric", None) or self.rubric
        reference = getattr(request, "reference", None)
        if self.mode == "absolute":
            if isinstance(request, JudgeRequest):
                raise ValueError("a pairwise request reached an absolute grader")
            if not rubric:
                raise ValueError("no rubric: give the item a 'rubric' field, or all items one with --rm-rubric FILE")
            text, system = absolute_prompt(instruction, request.answer, rubric, reference), ABS_SYSTEM_PROMPT
        else:
            if not isinstance(request, JudgeRequest):
                raise ValueError(f"a single-answer request reached a pairwise grader (--rm-grader-mode {self.mode})")
            if self.mode == "relative":
                if not rubric:
                    raise ValueError("no rubric: give the item a 'rubric' field, or all items one with --rm-rubric FILE")
                text = relative_prompt(instruction, request.answer_a, request.answer_b, rubric, reference)
            else:
                if not request.checklist:
                    raise ValueError("no checklist: --rm-grader-mode checklist needs the item's 'checklist' field")
                text = checklist_prompt(instruction, request.answer_a, request.answer_b, request.checklist,
                                        getattr(request, "rubric", None) or self.rubric, reference)
            system = REL_SYSTEM_PROMPT
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    def score(self, request, text: str) -> float:
        """The score of one output; GradeParseError when it holds no verdict."""
        if self.mode == "absolute":
            return float(parse_absolute(text))
        if self.mode == "relative":
            return 1.0 if parse_relative(text) == "A" else -1.0
        choice = length_penalty(parse_choice(text), request.answer_a, request.answer_b, self.k)
        return CHOICES[choice]

    def request_seed(self, request, attempt: int) -> int:
        from ..items import request_parts

        key = json.dumps([self.seed, attempt, request_parts(request)], ensure_ascii=False)
        return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:4], "big") & 0x7FFFFFFF


def parse_failure(outputs: list[str], error: str, attempts: int) -> str:
    last = clip(" ".join(str(outputs[-1]).split()) if outputs else "", ERROR_OUTPUT_LIMIT, marker="...")
    return f"the grader's verdict could not be read after {attempts} attempt(s): {error}; last output: {last!r}"


class _GraderBase:
    """What the local and the http grader share: prepare, the retry loop, settled outcomes."""

    kind = "grader"
    steps = False
    settings: GraderSettings

    def _start_grader(self, spec: ModelSpec) -> None:
        self.settings = GraderSettings(spec)
        self.pairwise = self.settings.pairwise
        self._settled: dict = {}

    def prepare(self, requests: Sequence) -> list[Prepared]:
        out = []
        for request in requests:
            messages = self.settings.messages(request)
            out.append(Prepared(request, sum(len(m["content"]) for m in messages), payload=messages))
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        """Every request graded with its retries; one that fails makes the batch raise once, and the
        engine's request-by-request retry is then answered from what this call learned."""
        outcomes = {i: self._settled.pop(p.request) for i, p in enumerate(batch) if p.request in self._settled}
        todo = [i for i in range(len(batch)) if i not in outcomes]
        outputs: dict[int, list[str]] = {i: [] for i in todo}
        errors: dict[int, str] = {}
        for attempt in range(self.settings.retries + 1):
            if not todo:
                break
            texts = self._generate([batch[i] for i in todo], attempt)
            left = []
            for i, text in zip(todo, texts):
                if isinstance(text, Exception):  # the request itself failed (http): not a parse failure
                    outcomes[i] = (None, str(text))
                    continue
                outputs[i].append(text)
                try:
                    outcomes[i] = (GradedScore(self.settings.score(batch[i].request, text), [text]), None)
                except GradeParseError as exc:
                    errors[i] = str(exc)
                    left.append(i)
            todo = left
        for i in todo:
            outcomes[i] = (None, parse_failure(outputs[i], errors[i], len(outputs[i])))
        failed = [i for i, (_, error) in outcomes.items() if error is not None]
        if not failed:
            return [outcomes[i][0] for i in range(len(batch))]
        if len(batch) == 1:
            raise ValueError(outcomes[0][1])
        for i, p in enumerate(batch):
            self._settled[p.request] = outcomes[i]
        raise ValueError(f"{len(failed)} of {len(batch)} grader requests failed; each is reported with its own item")

    def _generate(self, batch: Sequence[Prepared], attempt: int) -> list:
        """One output text per request (or the exception that request ended with)."""
        raise NotImplementedError


# -- local: transformers generate ------------------------------------------------------------------
class LocalGrader(_GraderBase, TransformersAdapter):
    """A causal LM that writes the verdict (transformers generate), left-padded batches. Loading,
    dtype, device and padding are the other transformers kinds' (models/loading.py)."""

    kind = "grader"
    name: str
    dtype: str
    device: str
    pairwise: bool  # relative and checklist grading judge (prompt, A, B)
    steps = False
    versions: dict  # torch, transformers, and the grader's settings

    close = TransformersAdapter.close

    def __init__(self, spec: ModelSpec):
        from .judge import CAUSAL_SUFFIXES

        self._start_grader(spec)
        _, transformers = self._start(spec)
        config = load_config(
            transformers, spec, spec.model, accepts=CAUSAL_SUFFIXES,
            refusal="a causal language model: a grader (--rm-kind grader) needs a ...ForCausalLM that writes the verdict",
        )
        self._load_tokenizer(transformers, spec, spec.model, config)
        self._load_model(transformers, spec, spec.model, transformers.AutoModelForCausalLM)
        self.limit = self._setup_padding(spec, config)
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.versions = {**self.versions, "grader": self.settings.describe()}

    def _render(self, messages: list[dict]) -> str:
        if not self.has_template:
            return "\n\n".join(m["content"] for m in messages)
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # a template that refuses system messages: the system prompt goes in front
            merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    def prepare(self, requests: Sequence) -> list[Prepared]:
        out = []
        for p in super().prepare(requests):
            ids = list(self.tokenizer(self._render(p.payload), add_special_tokens=not self.has_template)["input_ids"])
            truncated = False
            if self.limit is not None and len(ids) > self.limit - 1:
                ids, truncated = ids[-(self.limit - 1):], True  # keep the end, where the verdict is asked for
            out.append(Prepared(p.request, len(ids), truncated, ids))
        return out

    def _new_tokens(self, longest: int) -> int:
        room = self.settings.max_tokens
        if self.limit is not None:
            room = min(room, max(1, self.limit - longest))
        return room

    def _generate(self, batch: Sequence[Prepared], attempt: int) -> list:
        torch, s = self.torch, self.settings
        input_ids, attention, _ = pad_rows(torch, [p.payload for p in batch], self.pad_id, True)
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        seed = s.request_seed(tuple(p.request for p in batch), attempt) if len(batch) > 1 else s.request_seed(batch[0].request, attempt)
        torch.manual_seed(seed)
        config = self.model.generation_config.__class__.from_dict(self.model.generation_config.to_dict())
        config.do_sample = s.temperature > 0
        config.num_beams = 1
        if config.do_sample:
            config.temperature, config.top_p = s.temperature, s.top_p
        else:
            config.temperature, config.top_p = 1.0, 1.0
        config.top_k = 0 if config.do_sample else 50
        config.repetition_penalty = s.repetition_penalty
        config.max_new_tokens = self._new_tokens(input_ids.shape[1])
        config.max_length = None
        config.pad_token_id = self.pad_id
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config)
        return self.tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)


# -- http: chat completions through models/http.py's client ------------------------------------------
class HttpGrader(_GraderBase):
    """The grader behind a vLLM-compatible server: HttpModel's client (retries, breaker, slots,
    secrets) sends chat completions; only the payload and the reading are the grader's."""

    kind = "grader"
    dtype = "n/a"
    device = "remote"
    name: str
    pairwise: bool
    steps = False
    versions: dict

    def __init__(self, spec: ModelSpec):
        from dataclasses import replace

        from .http import HttpModel

        self._start_grader(spec)
        client_options = {k: v for k, v in (spec.options or {}).items() if k in ("api_key_env", "concurrency", "timeout")}
        self.client = HttpModel(replace(spec, options=client_options))
        self.name = self.client.name
        self.versions = {**self.client.versions, "grader": self.settings.describe()}

    def __repr__(self) -> str:
        return f"HttpGrader({self.client!r}, mode={self.settings.mode!r})"

    def close(self) -> None:
        self.client.close()

    def _generate(self, batch: Sequence[Prepared], attempt: int) -> list:
        futures = [self.client._executor().submit(self._one, p, attempt) for p in batch]
        out = []
        for future in futures:
            try:
                out.append(future.result())
            except Exception as exc:  # HttpModelError is already scrubbed; anything else is scrubbed here
                out.append(Exception(self.client.scrub(str(exc))))
        return out

    def _one(self, prepared: Prepared, attempt: int) -> str:
        from .http import HttpModelError, _snippet

        s, client = self.settings, self.client
        payload = {
            "model": client.served_model, "messages": prepared.payload, "max_tokens": s.max_tokens,
            "temperature": s.temperature, "top_p": s.top_p, "repetition_penalty": s.repetition_penalty,
            "seed": s.request_seed(prepared.request, attempt), "n": 1, "stream": False,
        }
        body = client._call("POST", client.api + "/chat/completions", payload)
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise HttpModelError(client.scrub(f"{client.name}: the chat completion holds no choices[0].message.content: "
                                              f"{_snippet(json.dumps(body))}"))
        return client.scrub(content)


def build(spec: ModelSpec):
    if spec.model.startswith(("http://", "https://")):
        return HttpGrader(spec)
    return LocalGrader.build(spec)
