"""Score files: the JSONL that `--rm-save-scores` writes and `--rm-model=scores:PATH` replays.

One JSON object per line: an answer line, or a steps line (a process reward model's
per-step scores for a solution given as steps, as items of kind `steps` ask for):

    {"prompt": "What is 2+2?", "answer": "4", "score": 1.25}
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
     "answer": "Hello!", "score": -0.5}
    {"prompt": "What is 2+2?", "steps": ["2+2 = 4", "so 4"], "scores": [0.98, 0.91]}

Rules (the same for reading and writing):

- `prompt` is a string or a non-empty list of messages, each an object with string `role`
  and `content` (other message fields are ignored); `answer` is a string; `score` is a
  finite JSON number (not a string, not a boolean, not NaN or Infinity).
- A steps line has `steps`, a non-empty list of strings, and `scores`, a list of finite
  numbers, one per step. A line with `answer` or `score` and also `steps` or `scores` is
  refused. An answer line and a steps line never stand for the same thing, whatever
  their text.
- A string prompt and a list holding one user message with the same text are the same
  prompt (that is how items turn a string prompt into chat messages).
- Blank lines are skipped; other fields on a line are ignored; the file is UTF-8 (a BOM at
  its start is accepted). Lines end with "\\n" only: U+2028 and friends inside a string
  do not end a line.
- The same (prompt, answer) may appear on several lines with the same score; with a
  different score the file is refused. The same goes for (prompt, steps) and its scores.
- Pairwise judge requests (prompt, answer A, answer B) are not part of this format: the
  writer skips them, so a judge's run cannot be replayed from a score file. Failed and
  non-finite scores are skipped too, and so are step scores that are not one finite
  number per step: replaying such an item errors with "no score".

The writer appends whole lines under an exclusive `fcntl.flock` (where the platform has
it), so several processes (xdist workers) can write one file at once. Each writer also
reads what the others appended since its last write, so every (prompt, answer) and every
(prompt, steps) is written once: the first score written wins, and a model whose scores
vary slightly between batches still produces a file that reads back.
"""

from __future__ import annotations

import json
import math
import os
from typing import Iterable, Union

from ..items import Prompt, ScoreRequest, ScoreResult, StepsRequest
from ..items.base import GRADING_FIELDS

try:  # POSIX only; elsewhere writes go without a lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

# (prompt, answer) or (prompt, steps): prompt is a string or a tuple of (role, content)
# pairs; answer is a string and steps a tuple of strings, so the two kinds never collide
ScoreKey = tuple
MessagesOrText = Union[str, list, tuple]


class ScoreFileError(ValueError):
    """A score file that cannot be used; the message names the file and the line."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


def normalize_prompt(prompt: MessagesOrText) -> Prompt:
    """A string, or a tuple of (role, content) pairs; one user message becomes its text.

    Accepts an item's prompt (a string or a tuple of pairs) or a list of {role, content}
    dicts as read from JSON.
    """
    if isinstance(prompt, str):
        return prompt
    pairs = tuple((m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in prompt)
    if len(pairs) == 1 and pairs[0][0] == "user":
        return pairs[0][1]
    return pairs


def score_key(prompt: MessagesOrText, answer: str) -> ScoreKey:
    """The key a score file uses for one (prompt, answer) sequence."""
    return (normalize_prompt(prompt), answer)


def steps_key(prompt: MessagesOrText, steps) -> ScoreKey:
    """The key a score file uses for one (prompt, steps) solution."""
    return (normalize_prompt(prompt), tuple(steps))


def is_steps_key(key: ScoreKey) -> bool:
    return isinstance(key[1], tuple)


def request_key(request: ScoreRequest | StepsRequest) -> ScoreKey:
    if isinstance(request, StepsRequest):
        return steps_key(request.prompt, request.steps)
    return score_key(request.prompt, request.answer)


# -- reading ----------------------------------------------------------------------------------


def _reject_duplicate_fields(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the field {key!r} appears twice in one object")
        out[key] = value
    return out


ANSWER_FIELDS = ("prompt", "answer", "score")
STEPS_FIELDS = ("prompt", "steps", "scores")


def parse_line(text: str) -> tuple[ScoreKey, float | tuple]:
    """One line's (key, score), or (key, tuple of step scores) for a steps line;
    ValueError with a message (no file or line) when it is bad."""
    try:
        row = json.loads(text, object_pairs_hook=_reject_duplicate_fields)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object {{prompt, answer, score}}, got {type(row).__name__}")
    answer_line = "answer" in row or "score" in row
    steps_line = "steps" in row or "scores" in row
    if answer_line and steps_line:
        both = [name for name in ("answer", "score", "steps", "scores") if name in row]
        raise ValueError(
            f"a line is either {{prompt, answer, score}} or {{prompt, steps, scores}}, this one has {', '.join(both)}"
        )
    fields = STEPS_FIELDS if steps_line else ANSWER_FIELDS
    missing = [name for name in fields if name not in row]
    if missing:
        raise ValueError(
            f"missing field(s): {', '.join(missing)} "
            + ("(a steps line needs prompt, steps and scores)" if steps_line else "(each line needs prompt, answer and score)")
        )
    prompt = row["prompt"]
    if isinstance(prompt, list):
        if not prompt:
            raise ValueError("'prompt' is an empty list of messages")
        for i, message in enumerate(prompt):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
                raise ValueError(f"'prompt' message #{i} must be an object with string 'role' and 'content'")
    elif not isinstance(prompt, str):
        raise ValueError(f"'prompt' must be a string or a list of {{role, content}} messages, got {type(prompt).__name__}")
    if steps_line:
        return _parse_steps(prompt, row["steps"], row["scores"])
    answer = row["answer"]
    if not isinstance(answer, str):
        raise ValueError(f"'answer' must be a string, got {type(answer).__name__}")
    return score_key(prompt, answer), _finite(row["score"], "'score'")


def _finite(score, name: str) -> float:
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise ValueError(f"{name} must be a number, got {json.dumps(score)[:40]}")
    try:
        value = float(score)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {score!r}")
    return value


def _parse_steps(prompt, steps, scores) -> tuple[ScoreKey, tuple]:
    if not isinstance(steps, list) or not steps:
        raise ValueError(f"'steps' must be a non-empty list of strings, got {json.dumps(steps)[:40]}")
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            raise ValueError(f"'steps' entry #{i} must be a string, got {type(step).__name__}")
    if not isinstance(scores, list):
        raise ValueError(f"'scores' must be a list of numbers (one per step), got {json.dumps(scores)[:40]}")
    if len(scores) != len(steps):
        raise ValueError(f"'scores' has {len(scores)} number(s) for {len(steps)} step(s): it needs one score per step")
    values = tuple(_finite(score, f"'scores' entry #{i}") for i, score in enumerate(scores))
    return steps_key(prompt, steps), values
def _lines(path: str, data: bytes):
    """(line number, text) of each non-blank line; the line number is 1-based."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScoreFileError(path, number, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        yield number, text


def read_scores(path: str) -> dict[ScoreKey, float | tuple]:
    """Every score in the file, by score_key(prompt, answer), and every steps line's tuple
    of step scores, by steps_key(prompt, steps).

    Raises OSError when the file cannot be opened and ScoreFileError (naming the file and
    the line) for a malformed line, a non-finite score, or a (prompt, answer) or (prompt,
    steps) given two different scores.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    scores: dict[ScoreKey, float | tuple] = {}
    first_line: dict[ScoreKey, int] = {}
    for number, text in _lines(path, data):
        try:
            key, score = parse_line(text)
        except ValueError as exc:
            raise ScoreFileError(path, number, str(exc)) from None
        if key in scores:
            if scores[key] != score:
                if is_steps_key(key):
                    what, label = f"steps starting {shorten(key[1][0])}", "scores"
                    here, there = list(score), list(scores[key])
                else:
                    what, label, here, there = f"answer {shorten(key[1])}", "score", score, scores[key]
                raise ScoreFileError(
                    path, number,
                    f"prompt {shorten_prompt(key[0])} with {what} has {label} {here!r} here "
                    f"but {there!r} on line {first_line[key]}",
                )
            continue
        scores[key] = score
        first_line[key] = number
    return scores


# -- display ----------------------------------------------------------------------------------


def shorten(text: str, width: int = 60) -> str:
    """repr() of text, cut to about `width` characters with an ellipsis."""
    if len(text) > width:
        text = text[: width - 1] + "\u2026"
    return repr(text)


def shorten_prompt(prompt: MessagesOrText, width: int = 60) -> str:
    prompt = normalize_prompt(prompt)
    if isinstance(prompt, str):
        return shorten(prompt, width)
    return shorten(" | ".join(f"{role}: {content}" for role, content in prompt), width)


# -- writing ----------------------------------------------------------------------------------


def encode_row(request: ScoreRequest | StepsRequest, score) -> bytes:
    """One line of the file (with its newline); score is a tuple of step scores for a StepsRequest."""
    prompt = request.prompt
    if not isinstance(prompt, str):
        prompt = [{"role": role, "content": content} for role, content in prompt]
    if isinstance(request, StepsRequest):
        row = {"prompt": prompt, "steps": list(request.steps), "scores": [float(s) for s in score]}
    else:
        row = {"prompt": prompt, "answer": request.answer, "score": float(score)}
    try:
        return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: \u escapes keep it (and the file UTF-8)
        return (json.dumps(row, ensure_ascii=True) + "\n").encode("ascii")


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _writable(request, result: ScoreResult) -> bool:
    if result.error is not None:
        return False
    if any(getattr(request, name, None) for name in GRADING_FIELDS):
        # a grader's score depends on the item's rubric, reference or checklist, which a
        # {prompt, answer, score} line cannot hold: two rubrics must never share one line
        return False
    if getattr(request, "images", ()):
        # a {prompt, answer, score} line cannot hold the image hashes: an edited image must
        # never find its old score, so image requests are not written (the score cache keeps them)
        return False
    if isinstance(request, StepsRequest):  # one finite score per step, as the reader wants
        scores = result.score
        return (
            len(request.steps) > 0
            and all(isinstance(step, str) for step in request.steps)
            and isinstance(scores, (list, tuple))
            and len(scores) == len(request.steps)
            and all(_finite_number(s) for s in scores)
        )
    # a JudgeRequest has no single answer: skipped
    return isinstance(request, ScoreRequest) and _finite_number(result.score)


def start_score_file(path: str) -> None:
    """Create the file empty (or empty it): call once per run, before any writer writes."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "wb"):
        pass


class ScoreWriter:
    """Appends (ScoreRequest or StepsRequest, ScoreResult) rows to a score file; several
    processes may share it.

    `write(rows)` takes what the engine's `on_batch` callback gets. The file is opened on
    the first write (its folder created if needed) and appended to: a run that must start
    from an empty file calls start_score_file first, once, before its workers write.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self._offset = 0  # how far this writer has read the file
        self._written: set[ScoreKey] = set()
        self.lines_written = 0

    def _open(self) -> int:
        if self._fd is None:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        return self._fd

    def write(self, rows: Iterable[tuple[ScoreRequest, ScoreResult]]) -> int:
        """Append the rows with finite scores that the file does not hold yet; returns how many."""
        rows = [(request, result) for request, result in rows if _writable(request, result)]
        if not rows:
            return 0
        fd = self._open()
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            self._catch_up(fd)
            lines = []
            for request, result in rows:
                key = request_key(request)
                if key in self._written:
                    continue
                self._written.add(key)
                lines.append(encode_row(request, result.score))
            if lines:
                data = b"".join(lines)
                end = os.fstat(fd).st_size
                if end and self._last_byte(fd, end) != b"\n":
                    data = b"\n" + data  # another process died mid-line: never glue onto it
                _write_all(fd, data)
                self._offset = os.fstat(fd).st_size
            self.lines_written += len(lines)
            return len(lines)
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _catch_up(self, fd: int) -> None:
        """Learn the keys other processes appended since this writer last looked."""
        end = os.fstat(fd).st_size
        if end < self._offset:  # emptied by someone: start over
            self._offset = 0
            self._written.clear()
        if end == self._offset:
            return
        data = os.pread(fd, end - self._offset, self._offset) if hasattr(os, "pread") else self._read_at(fd, self._offset, end)
        complete = data.rfind(b"\n") + 1  # a partial last line is read again next time
        for raw in data[:complete].split(b"\n"):
            if not raw.strip():
                continue
            try:
                key, _ = parse_line(raw.decode("utf-8"))
            except ValueError:
                continue  # not ours to judge here: read_scores reports it
            self._written.add(key)
        self._offset += complete

    @staticmethod
    def _read_at(fd: int, start: int, end: int) -> bytes:  # pragma: no cover - no pread
        os.lseek(fd, start, os.SEEK_SET)
        chunks, left = [], end - start
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _last_byte(self, fd: int, end: int) -> bytes:
        return os.pread(fd, 1, end - 1) if hasattr(os, "pread") else self._read_at(fd, end - 1, end)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ScoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
