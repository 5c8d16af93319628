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
from dataclasses import dataclass, field
from typing import Sequence

from ..items import JudgeRequest, MultiHeadScore
from ..text import clip
from .base import ModelLoadError, ModelSpec, Prepared
from .judge import question_text
from .loading import TransformersAdapter, load_config, pad_rows

MODES = ("absolute", "relative", "checklist", "vl-rewardbench")
DEFAULTS = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 1024, "repetition_penalty": 1.03}
# VL-RewardBench's own judge: its sampling (inference code), and K samples per item (cal.py reports K = 1..9)
VLRB_DEFAULTS = {"temperature": 0.2, "top_p": 0.2, "max_tokens": 2048, "repetition_penalty": 1.0}
VLRB_SAMPLES = 5
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

# VL-RewardBench's judge prompt (its prompt.py; the protocol's constant, kept as written there)
VLRB_PROMPT = (
    " You are a highly capable multimodal AI assistant tasked with evaluating answers to visual questions. Please "
    "analyze the following image and question, then determine which of the two provided answers is better.\n\n"
    "Question: {question}\n\nAnswer 1: {first}\n\nAnswer 2: {second}\n\n"
    "Please evaluate both answers based on the following criteria:\n"
    "1. Accuracy: How well does the answer align with the visual information in the image?\n"
    "2. Completeness: Does the answer fully address all aspects of the question?\n"
    "3. Clarity: Is the answer easy to understand and well-articulated?\n"
    "4. Relevance: Does the answer directly relate to the question and the image?\n\n"
    "After your evaluation, please:\n1. Explain your reasoning for each criterion.\n"
    "2. Provide an overall judgment on which answer is better (Answer 1 or Answer 2). For example: Overall Judgment: "
    "Answer X is better.\n\nYour response should be structured and detailed, demonstrating your understanding of both "
    "the visual and textual elements of the task."
)
# its parser (cal.py): newlines and '*' removed, then the first "Overall Judgment|Therefore ... Answer N is better"
_VLRB_VERDICT = re.compile(r"(?:Overall Judgment|Therefore)\s*.*\s*-*\s*Answer\s*(\d+)\s*is\s*(?:the\s*)?(?:slightly\s*)?better",
                           re.IGNORECASE)

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
    votes: dict | None  # the vl-rewardbench mode's tally (for_a, for_b, unparsed, samples, verdict)

    def __new__(cls, value: float, outputs=(), votes: dict | None = None):
        score = super().__new__(cls, value, ())
        score.grader_outputs = tuple(outputs)
        score.votes = votes
        return score

    def __reduce__(self):
        return (GradedScore, (float(self), self.grader_outputs, self.votes))


@dataclass(frozen=True)
class SampleJob:
    """One of the k generations of the vl-rewardbench mode: the two answers in the order shown,
    keyed by the UNORDERED pair, so the item's two requests (A, B) and (B, A) share every
    generation (the second costs nothing: see _GraderBase._vote)."""

    pair: str  # a digest of (prompt, {answer_a, answer_b}, images)
    index: int
    messages: tuple = field(compare=False)
    images: tuple = field(default=(), compare=False)
    first: str = field(default="", compare=False)  # the answer shown as "Answer 1"


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


def parse_vlrb(text: str) -> int:
    """VL-RewardBench's verdict: 1 or 2 (the answer shown first or second)."""
    found = _VLRB_VERDICT.search(text.replace("\n", "").replace("*", ""))
    if not found or found.group(1) not in ("1", "2"):
        raise GradeParseError("no 'Overall Judgment: Answer 1|2 is better'")
    return int(found.group(1))


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
            raise ModelLoadError(f"unknown --rm-grader-mode {self.mode!r}; choose one of {', '.join(MODES)}")
        self.rubric_path = options.get("rubric") or None
        self.rubric = load_rubric(self.rubric_path)
        defaults = VLRB_DEFAULTS if self.mode == "vl-rewardbench" else DEFAULTS
        self.temperature = _number(options, "grader_temperature", defaults["temperature"], float)
        self.top_p = _number(options, "grader_top_p", defaults["top_p"], float)
        self.max_tokens = _number(options, "grader_max_tokens", defaults["max_tokens"], int)
        self.repetition_penalty = _number(options, "grader_repetition_penalty", defaults["repetition_penalty"], float)
        self.retries = _number(options, "grader_retries", DEFAULT_RETRIES, int)
        self.samples = _number(options, "grader_samples", VLRB_SAMPLES, int)
        if self.samples < 1:
            raise ModelLoadError(f"--rm-grader-samples: must be at least 1, got {self.samples}")
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
        if self.mode == "vl-rewardbench":  # no retries: an unread verdict is one of the k votes
            text = (f"vl-rewardbench (VL-RewardBench's judge protocol: {self.samples} sampled verdicts per item in random"
                    f" answer orders, majority of all {self.samples}); temperature {self.temperature:g}, top_p"
                    f" {self.top_p:g}, max_tokens {self.max_tokens}, repetition_penalty {self.repetition_penalty:g}")
        return text

    # -- one request -> the grader's messages, and its output -> a score ----------------------
    def messages(self, request) -> list[dict]:
        """[system, user] messages of the grading prompt; ValueError when the item lacks what the mode needs."""
        if isinstance(request, SampleJob):
            return list(request.messages)
        if self.mode == "vl-rewardbench":
            if not isinstance(request, JudgeRequest):
                raise ValueError("a single-answer request reached a pairwise grader (--rm-grader-mode vl-rewardbench)")
            return list(self.sample_jobs(request)[0].messages)  # its length stands for the k samples'
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

    def sample_jobs(self, request) -> list[SampleJob]:
        """The k generations of one pair (vl-rewardbench mode): sample i shows the answers in an
        order drawn from (seed, the unordered pair, i), the same for both of the item's requests."""
        from ..items.images import image_parts

        question = question_text(request.prompt)
        x, y = sorted((request.answer_a, request.answer_b))
        pair = hashlib.sha256(json.dumps([question, x, y, image_parts(request)], ensure_ascii=False)
                              .encode("utf-8", "surrogatepass")).hexdigest()
        jobs = []
        for i in range(self.samples):
            first, second = (x, y) if self._draw(pair, i) % 2 == 0 else (y, x)
            text = VLRB_PROMPT.format(question=question, first=first, second=second)
            jobs.append(SampleJob(pair, i, ({"role": "user", "content": text},), tuple(request.images), first))
        return jobs

    def _draw(self, pair: str, index: int) -> int:
        key = f"{self.seed}\x00{pair}\x00{index}".encode("utf-8")
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF

    def request_seed(self, request, attempt: int) -> int:
        from ..items import request_parts

        if isinstance(request, SampleJob):  # a sample's seed: its pair and index, never the order asked in
            return self._draw(request.pair + "\x00seed", request.index)
        if isinstance(request, tuple) and request and all(isinstance(r, SampleJob) for r in request):
            return self._draw("\x00".join(f"{r.pair}:{r.index}" for r in request), attempt)
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
        self._samples: dict = {}  # (pair, index) -> a vl-rewardbench generation, shared by both orders

    def _vote(self, batch: Sequence[Prepared]) -> list[float]:
        """vl-rewardbench mode: k generations per pair (each once, whichever order asks first), each
        read as a vote; the verdict is the answer more than half of the k voted for, else none (0.0:
        VL-RewardBench leaves the item out of its accuracy). No retries: an unread output is a vote for neither."""
        jobs = {i: self.settings.sample_jobs(p.request) for i, p in enumerate(batch)}
        missing = list({(j.pair, j.index): j for js in jobs.values() for j in js
                        if (j.pair, j.index) not in self._samples}.values())
        if missing:
            for job, text in zip(missing, self._generate(self.prepare(missing), 0)):
                if isinstance(text, Exception):
                    raise ValueError(str(text))
                self._samples[(job.pair, job.index)] = text
        scores = [self._tally(p.request, jobs[i]) for i, p in enumerate(batch)]
        if len(self._samples) > 100_000:  # a long run: keep memory bounded (both orders come in one chunk)
            self._samples.clear()
        return scores

    def _tally(self, request, jobs: list[SampleJob]) -> "GradedScore":
        votes = {"for_a": 0, "for_b": 0, "unparsed": 0, "samples": len(jobs)}
        outputs = []
        for job in jobs:
            text = self._samples[(job.pair, job.index)]
            outputs.append(text)
            try:
                first_is_a = job.first == request.answer_a
                picked_first = parse_vlrb(text) == 1
                votes["for_a" if picked_first == first_is_a else "for_b"] += 1
            except GradeParseError:
                votes["unparsed"] += 1
        half = len(jobs) / 2
        verdict = "A" if votes["for_a"] > half else ("B" if votes["for_b"] > half else None)
        votes["verdict"] = verdict
        return GradedScore({"A": 1.0, "B": -1.0, None: 0.0}[verdict], outputs, votes)

    def prepare(self, requests: Sequence) -> list[Prepared]:
        out = []
        for request in requests:
            messages = self.settings.messages(request)
            out.append(Prepared(request, sum(len(m["content"]) for m in messages), payload=messages))
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        """Every request graded with its retries; one that fails makes the batch raise once, and the
        engine's request-by-request retry is then answered from what this call learned."""
        if self.settings.mode == "vl-rewardbench":
            return self._vote(batch)
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
    images = True  # a multimodal server sees a request's images (image_url parts)
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
        from .http import HttpModelError, _snippet, with_images

        s, client = self.settings, self.client
        messages = prepared.payload
        if getattr(prepared.request, "images", ()):  # image_url parts with data URIs, as the http kind sends them
            messages = with_images([dict(m) for m in messages], prepared.request.images)
        payload = {
            "model": client.served_model, "messages": messages, "max_tokens": s.max_tokens,
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
