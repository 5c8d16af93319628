"""Reward models and pairwise judges behind a vLLM OpenAI-compatible HTTP server.

    pytest --rm-model=http://host:8000            # a reward model (sequence classifier)
    pytest --rm-model='http://host:8000/v1?model=my-rm&endpoint=pooling'
    pytest --rm-model='https://host/v1?judge=1'   # a pairwise judge (chat completions)

Only the standard library is used (http.client, threading, fcntl).

Schema followed: vLLM v0.15.0 (``vllm serve``'s OpenAI-compatible server; the request and
response models of ``vllm/entrypoints/pooling/{base,classify,pooling}/protocol.py`` and of
the chat completions API at that release). Newer releases accept the same fields.

Served model name
    ``?model=NAME`` in the URL, else the first entry of ``GET {base}/v1/models``
    (``{"data": [{"id": NAME, ...}, ...]}``).

Reward models: ``POST {base}/classify`` (default, ``?endpoint=classify``)
    request  ``{"model": NAME, "messages": [...prompt..., {"role": "assistant", "content": ANSWER}],
               "add_generation_prompt": false, "continue_final_message": false,
               "add_special_tokens": false, "use_activation": false}``
    response ``{"data": [{"index": 0, "label": ..., "probs": [r0, r1, ...], "num_classes": K}], ...}``
    The SERVER applies the model's chat template to the messages; with
    ``use_activation: false`` the "probs" are the raw logits, so output 0 (or
    ``--rm-head`` / ``--rm-head-weights``) is the same reward a local transformers
    classifier gives.
    ``?endpoint=pooling``: ``POST {base}/pooling`` with the same body plus ``"task": "classify"``
    (the ``?task=`` parameter overrides it, e.g. ``token_classify`` for a per-token reward
    model); response ``{"data": [{"index": 0, "object": "pooling", "data": D}]}`` where D is
    a number, a list of numbers (outputs) or a list of lists (one row per token: the LAST
    row, the final token's, is the reward).

Pairwise judges (``?judge=1``, or ``--rm-judge-template`` given): ``POST {base}/v1/chat/completions``
    request  ``{"model": NAME, "messages": [{"role": "user", "content": JUDGE_PROMPT}],
               "max_tokens": 1, "temperature": 0, "logprobs": true, "top_logprobs": 20,
               "seed": --rm-seed, "n": 1, "stream": false}``
    response ``{"choices": [{"logprobs": {"content": [{"token", "logprob",
               "top_logprobs": [{"token": "A", "logprob": -0.1}, ...]}]}}]}``
    score = logprob("A") - logprob("B"), read from the first token's top logprobs (the
    sampled token counts too; tokens compare after stripping whitespace, the best of
    several spellings wins). A label missing from the top list, or below the floor,
    counts as LOGPROB_FLOOR (-100): both missing is a tie (0). The judge prompt is the
    judge kind's (pytest_rmbench.models.judge: DEFAULT_TEMPLATE, or the file given by
    --rm-judge-template, with {question}, {answer_a} and {answer_b}), filled the same way.

Concurrency (``--rm-concurrency N``, default 8)
    At most N requests are in flight against one server from ALL processes of this
    machine together (every xdist worker of a run, and any other run pointed at the same
    server): a cross-process semaphore made of N lock files
    ``$TMPDIR/pytest-rmbench-http-<uid>/<hash of scheme://host:port/path>/slot-<i>.lock``,
    each held with ``fcntl.flock`` for the duration of one HTTP attempt (not during the
    back-off sleep). The kernel drops a flock when its holder dies, so a killed worker
    never leaks a slot. Inside each process a thread pool of N threads sends a batch's
    requests. Without fcntl (Windows) the bound holds per process only.

Timeouts and retries (``--rm-timeout S``, default 60; ``?retries=R``, default 3)
    Each attempt has S seconds for connecting, sending and reading the whole answer.
    A 408/429/5xx answer, a refused, dropped or reset connection, a timeout, a broken
    HTTP answer and a 2xx answer that is not JSON are retried R times, after
    0.5 s x 2^k (at most 8 s, or the server's Retry-After up to 8 s) plus up to 50 %
    jitter from an RNG seeded by --rm-seed and the xdist worker id. Other 4xx answers
    and answers of the wrong shape fail at once. A request therefore ends within
    (R + 1) x S + 12 x R seconds (each back-off is at most 8 s x 1.5), plus waiting for a
    slot (whose holders are bounded the same way), and then raises HttpModelError naming
    the status or the reason: the engine errors just that item. A batch whose requests
    partly failed raises once; the engine then asks for each request alone and gets the
    outcome already known, so no request is sent twice and no item waits twice.

Circuit breaker (``?breaker=N``, default max(8, 2 x --rm-concurrency); 0 turns it off)
    The adapter counts failed attempts in a row, across all its threads: a retryable
    answer or a connection that fails (refused, dropped, timed out, TLS, DNS) adds one;
    any other answer (2xx JSON, or a 4xx that is the request's fault) resets the count.
    At N the breaker opens for the rest of the run (per process: each xdist worker has
    its own): requests waiting to retry stop at once, and every request after that fails
    without being sent, with "the scoring server failed N requests in a row (last answer:
    HTTP 500 ...: ...); no more requests are sent this run". A server that always fails
    therefore costs at most N + --rm-concurrency - 1 attempts, not (retries + 1) per request.

Images (items with ``images``, pytest_rmbench.items.images)
    Decoded with Pillow in ``prepare`` (per chunk) and sent as OpenAI content parts: the
    ``images`` field's in the last user message, before its text, an image from a message's
    content parts where it sat (items.images.place): ``{"type": "image_url", "image_url":
    {"url": "data:image/png;base64,..."}}`` and ``{"type": "text", "text": ...}``, for reward
    endpoints and judges alike (a vLLM multimodal server reads them). The original bytes go
    with their MIME type (PNG, JPEG, GIF, WebP), other formats re-encoded as PNG. A bad
    image errors its item only; no message shows the base64.

Secrets
    ``--rm-api-key-env NAME`` names the environment variable that holds the key, sent as
    ``Authorization: Bearer KEY``; the adapter stores only NAME and reads the value when
    it sends. Credentials in the URL (``http://user:pass@host``) are sent as HTTP Basic
    auth when no key is named. Every message this module makes has the key, the URL's
    user and password and anything after "Bearer"/"Basic" replaced by "<redacted>";
    ``name`` is the URL without credentials, and repr() shows no secret.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import math
import os
import random
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Sequence

from ..items import JudgeRequest
from ..items.images import ImageError, data_uri, place
from .base import ModelLoadError, ModelSpec, Prepared
from .judge import DEFAULT_TEMPLATE, fill_template, load_template, question_text

try:
    import fcntl
except ImportError:  # Windows: the bound is per process
    fcntl = None

VLLM_VERSION = "0.15.0"
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
LOGPROB_FLOOR = -100.0
TOP_LOGPROBS = 20
LABELS = ("A", "B")
ENDPOINTS = ("classify", "pooling")
URL_PARAMS = ("model", "judge", "endpoint", "task", "retries", "breaker")
REDACTED = "<redacted>"
RETRY_STATUSES = (408, 429)
# The breaker's default threshold: more failed attempts in a row than one moment of failure can
# produce (every attempt in flight failing at once is --rm-concurrency failures), so a blip
# never trips it; it takes failures that outlast at least one back-off. 8 at the least.
BREAKER_MIN = 8
BREAKER_PER_SLOT = 2


class HttpModelError(Exception):
    """A request to the server failed for good; the message names the status or reason."""


class _Transient(Exception):
    """One attempt failed in a way worth retrying."""


class _BreakerOpen(Exception):
    """The circuit breaker opened: the attempt was not sent."""


class _Breaker:
    """Failed attempts in a row, counted across all threads of one adapter.

    failure() adds one and opens the breaker for good once the count reaches `threshold`
    (0: never); success() resets the count. `opened` is an Event, so a thread waiting out
    a back-off wakes as soon as it opens.
    """

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.opened = threading.Event()
        self.reason = ""
        self._lock = threading.Lock()
        self._run = 0

    @property
    def is_open(self) -> bool:
        return self.opened.is_set()

    @property
    def failures_in_a_row(self) -> int:
        return self._run

    def success(self) -> None:
        with self._lock:
            self._run = 0

    def failure(self, answer: str) -> bool:
        """Counts one failed attempt (`answer` says what came back, already scrubbed); True once open."""
        with self._lock:
            self._run += 1
            if self.threshold and self._run >= self.threshold and not self.opened.is_set():
                self.reason = (
                    f"the scoring server failed {self._run} requests in a row (last answer: {_snippet(answer, 120)}); "
                    "no more requests are sent this run"
                )
                self.opened.set()
            return self.opened.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleeps `seconds`, or less if the breaker opens meanwhile; True when open."""
        return self.opened.wait(seconds)


class _Hidden:
    """Holds a secret; repr() and str() never show it, and it refuses to be pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: Any):
        self._value = value

    def get(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a hidden secret cannot be pickled")


class _Headers(dict):
    """Request headers: a traceback that shows locals (pytest -l) shows no Authorization."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {REDACTED if k.lower() == 'authorization' else v!r}" for k, v in self.items()) + "}"


_GENERIC_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@"), rf"\1{REDACTED}@"),
)


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """The text with every secret, and anything that looks like a credential, redacted."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _GENERIC_SECRETS:
        text = pattern.sub(replacement, text)
    return text


from ..text import strip_credentials  # noqa: E402,F401  (one URL redactor for the package; re-exported)


def _secret_forms(value: str) -> list[str]:
    """A secret as it may appear in text: raw and percent-encoded (only forms long enough to be specific)."""
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    return [f for f in forms if len(f) >= 3]


def _flag(value: str | None) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def judge_text(request: JudgeRequest, template: str = DEFAULT_TEMPLATE) -> str:
    """The judge prompt, filled exactly as the local judge kind fills it."""
    return fill_template(template, question_text(request.prompt), request.answer_a, request.answer_b)


def label_margin(entries: Sequence[dict], labels: Sequence[str] = LABELS, floor: float = LOGPROB_FLOOR) -> float:
    """logprob(labels[0]) - logprob(labels[1]) among {"token", "logprob"} entries; a label
    that is missing (or below the floor) counts as the floor."""
    best: dict[str, float] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, (int, float)) or isinstance(logprob, bool):
            continue
        label = token.strip()
        if label in labels and not math.isnan(logprob):
            best[label] = max(best.get(label, -math.inf), float(logprob))
    a, b = (max(best.get(label, floor), floor) for label in labels)
    return a - b


def _pick(values: list, head: int, weights: list[float] | None, what: str) -> float:
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise HttpModelError(f"{what} is not a list of numbers: {_snippet(json.dumps(values))}")
    if weights is not None:
        if len(weights) != len(values):
            raise HttpModelError(f"{what} has {len(values)} outputs but --rm-head-weights gives {len(weights)} weights")
        return float(sum(w * v for w, v in zip(weights, values)))
    if head >= len(values):
        raise HttpModelError(f"{what} has {len(values)} output(s); --rm-head {head} is out of range")
    return float(values[head])


def reward_from_classify(body: Any, head: int = 0, weights: list[float] | None = None) -> float:
    """The reward in a /classify answer: data[0].probs[head] (raw logits with use_activation false)."""
    try:
        probs = body["data"][0]["probs"]
    except (KeyError, IndexError, TypeError):
        raise HttpModelError(f"unexpected /classify answer (no data[0].probs): {_snippet(json.dumps(body))}") from None
    return _pick(probs if isinstance(probs, list) else [probs], head, weights, "data[0].probs")


def reward_from_pooling(body: Any, head: int = 0, weights: list[float] | None = None) -> float:
    """The reward in a /pooling answer: data[0].data is a number, a list of outputs, or one
    row of outputs per token (the last row, the final token's, is the reward)."""
    try:
        data = body["data"][0]["data"]
    except (KeyError, IndexError, TypeError):
        raise HttpModelError(f"unexpected /pooling answer (no data[0].data): {_snippet(json.dumps(body))}") from None
    if isinstance(data, str):
        raise HttpModelError("the /pooling answer is base64-encoded; this client asks for and reads floats only")
    if isinstance(data, list) and data and isinstance(data[-1], list):
        data = data[-1]
    return _pick(data if isinstance(data, list) else [data], head, weights, "data[0].data")


def margin_from_chat(body: Any) -> float:
    """logprob("A") - logprob("B") at the first generated token of a chat completion."""
    try:
        first = body["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        raise HttpModelError(
            "the chat completion holds no logprobs (choices[0].logprobs.content[0]): the server must "
            f"support logprobs/top_logprobs: {_snippet(json.dumps(body))}"
        ) from None
    if not isinstance(first, dict):
        raise HttpModelError(f"unexpected logprobs entry: {_snippet(json.dumps(first))}")
    entries = list(first.get("top_logprobs") or []) + [first]
    return label_margin(entries)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _error_detail(raw: bytes) -> str:
    """The server's own error message, if any (vLLM: {"error": {"message": ...}} or {"message": ...})."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return _snippet(text) if text.strip() else ""
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else (error if isinstance(error, str) else body.get("message"))
        if message:
            return _snippet(message)
    return _snippet(text)


class SlotPool:
    """A semaphore of `size` slots shared by every process that uses `folder`.

    Slot i is the lock file slot-i.lock; whoever holds an exclusive flock on it holds the
    slot. flock locks belong to an open file description, so two threads of one process
    exclude each other like two processes do; the kernel releases them when a holder dies.
    """

    def __init__(self, folder: str, size: int, seed: int = 0):
        self.folder = folder
        self.size = size
        self._local = threading.BoundedSemaphore(size)
        self._rng = random.Random(seed)
        if fcntl is not None:
            os.makedirs(folder, mode=0o700, exist_ok=True)

    @contextmanager
    def hold(self):
        with self._local:
            fd = self._acquire() if fcntl is not None else None
            try:
                yield
            finally:
                if fd is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    finally:
                        os.close(fd)

    def _acquire(self) -> int:
        start = self._rng.randrange(self.size)
        pause = 0.002
        while True:
            for k in range(self.size):
                path = os.path.join(self.folder, f"slot-{(start + k) % self.size}.lock")
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
                except BaseException:
                    os.close(fd)
                    raise
            time.sleep(pause)
            pause = min(0.05, pause * 2)


def slot_folder(server: str) -> str:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    digest = hashlib.sha256(server.encode("utf-8")).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"pytest-rmbench-http-{uid}", digest)


class HttpModel:
    """A reward model (or pairwise judge) served over HTTP; see the module docstring."""

    name: str  # the URL without credentials
    kind = "http"
    dtype = "n/a"
    device = "remote"
    pairwise = False  # set from the URL (?judge=1, or a judge template)
    steps = False
    images = True  # image_url content parts with data URIs
    versions: dict  # the schema it speaks

    def __init__(self, spec: ModelSpec):
        options = spec.options or {}
        self.api_key_env: str | None = options.get("api_key_env") or None
        parts, params = self._read_url(spec.model)
        self._read_credentials(parts)
        self._read_options(options, params, spec.seed)
        self._read_judge(options, params)
        self._start_state(spec.seed)
        self.served_model = params.get("model") or self._first_model()
        self.versions = {"http-schema": f"vllm {VLLM_VERSION}"}

    # -- configuration ---------------------------------------------------------------------
    def _read_url(self, url: str) -> tuple[urllib.parse.SplitResult, dict]:
        """Sets name, scheme, host, port, root, api and server; (the URL's parts, its ?parameters)."""
        parts = self._parse(url)
        self.name = strip_credentials(url)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(params) - set(URL_PARAMS))
        if unknown:
            raise ModelLoadError(
                f"unknown parameter(s) {', '.join(unknown)} in the model URL {self.name!r}; "
                f"the http kind reads: {', '.join(URL_PARAMS)}"
            )
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ModelLoadError(f"the model URL {self.name!r} has an invalid port") from None
        path = parts.path.rstrip("/")
        self.root = path[: -len("/v1")] if path.endswith("/v1") else path  # /classify and /pooling live here
        self.api = self.root + "/v1"  # /v1/models and /v1/chat/completions
        self.server = f"{self.scheme}://{self.host}:{self.port}{self.root}"
        return parts, params

    def _read_credentials(self, parts: urllib.parse.SplitResult) -> None:
        """The URL's user:password (as Basic auth, hidden) and the --rm-api-key-env check."""
        secrets = []
        basic = None
        if parts.username is not None or parts.password is not None:
            user = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            raw_userinfo = parts.netloc.rpartition("@")[0]
            token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
            secrets += [raw_userinfo, token] + _secret_forms(user) + _secret_forms(password)
            basic = f"Basic {token}"
        self._url_secrets = _Hidden(tuple(s for s in secrets if s))
        self._basic = _Hidden(basic)
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise ModelLoadError(
                f"--rm-api-key-env names the environment variable {self.api_key_env!r}, which is not set or empty"
            )

    def _read_options(self, options: dict, params: dict, seed) -> None:
        """Concurrency, timeout, retries, breaker, endpoint, task, head and head weights."""
        self.concurrency = self._int_option(options, "concurrency", DEFAULT_CONCURRENCY, minimum=1)
        self.timeout = self._float_option(options, "timeout", DEFAULT_TIMEOUT)
        self.retries = self._int_value(params.get("retries"), "?retries", DEFAULT_RETRIES, minimum=0)
        self.breaker_threshold = self._int_value(
            params.get("breaker"), "?breaker", max(BREAKER_MIN, BREAKER_PER_SLOT * self.concurrency), minimum=0
        )
        self.endpoint = params.get("endpoint") or "classify"
        if self.endpoint not in ENDPOINTS:
            raise ModelLoadError(f"?endpoint={self.endpoint} in the model URL: choose one of {', '.join(ENDPOINTS)}")
        self.task = params.get("task") or "classify"
        self.head = self._int_option(options, "head", 0, minimum=0)
        self.head_weights = self._weights(options.get("head_weights"))
        self.seed = seed

    def _read_judge(self, options: dict, params: dict) -> None:
        """pairwise (?judge=1, or a judge template) and the judge prompt."""
        template_path = options.get("judge_template")
        self.pairwise = _flag(params["judge"]) if "judge" in params else bool(template_path)
        self.judge_template = DEFAULT_TEMPLATE  # one default judge prompt for local and served judges
        if self.pairwise:
            if (options.get("judge_mode") or "logprob") != "logprob":
                raise ModelLoadError("an http judge compares the labels' logprobs: --rm-judge-mode must be logprob")
            if template_path:
                self.judge_template = load_template(template_path)

    def _start_state(self, seed) -> None:
        """The back-off's random numbers, the slots shared with other workers, the breaker, the pool."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        rng_seed = int.from_bytes(hashlib.sha256(f"{seed}\0{worker}".encode()).digest()[:8], "big")
        self._rng = random.Random(rng_seed)
        self._rng_lock = threading.Lock()
        self._slots = SlotPool(slot_folder(self.server), self.concurrency, seed=rng_seed)
        self._breaker = _Breaker(self.breaker_threshold)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._settled: dict[Any, tuple[float | None, str | None]] = {}

    @staticmethod
    def _parse(url: str) -> urllib.parse.SplitResult:
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as exc:
            raise ModelLoadError(f"the model URL {strip_credentials(url)!r} cannot be parsed: {scrub(str(exc))}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelLoadError(f"the model URL {strip_credentials(url)!r} must look like http://host:port[/v1]")
        if parts.fragment:
            raise ModelLoadError(f"the model URL {strip_credentials(url)!r} must not have a #fragment")
        return parts

    @staticmethod
    def _int_value(raw, what: str, default: int, minimum: int) -> int:
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ModelLoadError(f"{what}: expected an integer, got {raw!r}") from None
        if value < minimum:
            raise ModelLoadError(f"{what}: must be at least {minimum}, got {value}")
        return value

    def _int_option(self, options: dict, key: str, default: int, minimum: int) -> int:
        return self._int_value(options.get(key), f"--rm-{key.replace('_', '-')}", default, minimum)

    @staticmethod
    def _float_option(options: dict, key: str, default: float) -> float:
        raw = options.get(key)
        if raw in (None, ""):
            return default
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ModelLoadError(f"--rm-{key}: expected a number of seconds, got {raw!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise ModelLoadError(f"--rm-{key}: must be a positive number of seconds, got {raw!r}")
        return value

    @staticmethod
    def _weights(raw) -> list[float] | None:
        if raw in (None, ""):
            return None
        try:
            return [float(w) for w in str(raw).split(",")]
        except ValueError:
            raise ModelLoadError(f"--rm-head-weights: expected numbers separated by commas, got {raw!r}") from None

    def __repr__(self) -> str:
        return (
            f"HttpModel(name={self.name!r}, served_model={getattr(self, 'served_model', None)!r}, "
            f"pairwise={self.pairwise!r}, endpoint={self.endpoint!r}, concurrency={self.concurrency}, "
            f"timeout={self.timeout:g}, retries={self.retries}, breaker={self.breaker_threshold}, "
            f"api_key_env={self.api_key_env!r})"
        )

    # -- secrets ---------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        found = list(self._url_secrets.get())
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if key:
                found += _secret_forms(key) + [key]
        return found

    def scrub(self, text: str) -> str:
        return scrub(str(text), self._secrets())

    def _headers(self, body: bytes | None) -> _Headers:
        headers = _Headers({"Accept": "application/json", "User-Agent": "pytest-rmbench"})
        if body is not None:
            headers["Content-Type"] = "application/json"
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif self._basic.get():
            headers["Authorization"] = self._basic.get()
        return headers

    # -- HTTP ------------------------------------------------------------------------------
    def _first_model(self) -> str:
        try:
            body = self._call("GET", self.api + "/models", None)
        except HttpModelError as exc:
            raise ModelLoadError(f"could not ask the server for its model name: {exc}") from None
        try:
            name = body["data"][0]["id"]
        except (KeyError, IndexError, TypeError):
            name = None
        if not isinstance(name, str) or not name:
            raise ModelLoadError(
                self.scrub(f"{self.name}: GET {self.api}/models lists no model ({_snippet(json.dumps(body))}); "
                           "name one with ?model=NAME in the URL")
            )
        return name

    def _call(self, method: str, path: str, payload: dict | None) -> Any:
        """One request with retries; the decoded JSON answer, or HttpModelError (scrubbed)."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8") if payload is not None else None
        what = f"{self.name}: {method} {path}"
        attempts = self.retries + 1
        last = "no attempt was made"
        retry_after = None
        breaker = self._breaker
        for attempt in range(attempts):
            # the breaker is read before each attempt, and wakes a back-off as soon as it opens
            if breaker.is_open or (attempt and breaker.wait(self._backoff(attempt, retry_after))):
                raise HttpModelError(self.scrub(f"{what}: {breaker.reason}"))
            retry_after = None
            try:
                with self._slots.hold():
                    if breaker.is_open:  # read again once a slot is ours: the wait for it may have been long
                        raise _BreakerOpen()
                    status, reason, retry_after_header, raw = self._attempt(method, path, body)
            except _BreakerOpen:
                raise HttpModelError(self.scrub(f"{what}: {breaker.reason}")) from None
            except _Transient as exc:
                last = str(exc)
                breaker.failure(self.scrub(last))
                continue
            except HttpModelError as exc:
                breaker.failure(self.scrub(str(exc)))  # TLS or DNS: no answer at all
                raise HttpModelError(self.scrub(f"{what}: {exc}")) from None
            detail = _error_detail(raw) if not 200 <= status < 300 else ""
            if 200 <= status < 300:
                try:
                    answer = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    last = f"the server answered {status} with malformed JSON ({type(exc).__name__}: {_snippet(str(exc), 80)}; body {_snippet(raw.decode('utf-8', 'replace'), 60)!r})"
                    breaker.failure(self.scrub(f"HTTP {status} {reason} with malformed JSON: {raw.decode('utf-8', 'replace')}"))
                    continue
                breaker.success()
                return answer
            if status in RETRY_STATUSES or status >= 500:
                last = f"the server answered {status} {reason}" + (f" ({detail})" if detail else "")
                breaker.failure(self.scrub(f"HTTP {status} {reason}" + (f": {detail}" if detail else "")))
                retry_after = retry_after_header
                continue
            breaker.success()  # a 4xx is the request's fault: the server is up and answering
            detail = f" ({detail})" if detail else ""
            hint = ""
            if status in (401, 403):
                hint = (
                    f"; the key in ${self.api_key_env} (--rm-api-key-env) was refused" if self.api_key_env
                    else "; if the server wants an API key, name the environment variable that holds it with --rm-api-key-env"
                )
            elif status == 404 and path.endswith(("/classify", "/pooling")):
                hint = "; is this a vLLM pooling server (vllm serve ... --runner pooling)? try ?endpoint=pooling or ?endpoint=classify"
            raise HttpModelError(self.scrub(f"{what}: the server answered {status} {reason}{detail}{hint}"))
        raise HttpModelError(
            self.scrub(f"{what}: gave up after {attempts} attempt(s) of at most {self.timeout:g} s each; last: {last}")
        )

    def _attempt(self, method: str, path: str, body: bytes | None) -> tuple[int, str, float | None, bytes]:
        """One HTTP exchange, bounded by self.timeout as a whole; raises _Transient to retry."""
        deadline = time.monotonic() + self.timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline")
            return left

        conn = self._connection()
        try:
            return self._exchange(conn, method, path, body, remaining)
        except (socket.timeout, TimeoutError):
            raise _Transient(f"timed out: no complete answer within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            raise _Transient(f"connection refused by {self.host}:{self.port}") from None
        except http.client.RemoteDisconnected:
            raise _Transient("connection dropped: the server closed it without an answer") from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            raise _Transient(f"connection dropped: {type(exc).__name__}") from None
        except http.client.IncompleteRead as exc:
            raise _Transient(f"connection dropped mid-answer ({len(exc.partial)} bytes read)") from None
        except ssl.SSLCertVerificationError as exc:
            raise HttpModelError(f"TLS certificate verification failed: {exc.verify_message or exc}") from None
        except socket.gaierror as exc:
            raise HttpModelError(f"cannot resolve the host {self.host!r}: {exc.strerror or exc}") from None
        except http.client.HTTPException as exc:
            raise _Transient(f"broken HTTP answer: {type(exc).__name__}: {_snippet(str(exc), 80)}") from None
        except OSError as exc:
            raise _Transient(f"network error: {type(exc).__name__}: {exc.strerror or _snippet(str(exc), 80)}") from None
        finally:
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _exchange(self, conn, method: str, path: str, body: bytes | None, remaining) -> tuple[int, str, float | None, bytes]:
        """Connects, sends the request and reads the whole answer, each step within remaining() seconds."""
        conn.connect()
        sock = conn.sock
        sock.settimeout(remaining())
        conn.request(method, path, body=body, headers=self._headers(body))
        sock.settimeout(remaining())
        response = conn.getresponse()
        chunks = []
        while True:
            try:
                sock.settimeout(remaining())
            except OSError:
                pass  # the connection object handed the socket to the response
            chunk = response.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            remaining()
        return response.status, response.reason or "", _retry_after(response), b"".join(chunks)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, BACKOFF_MAX))
        with self._rng_lock:
            jitter = self._rng.uniform(0.0, 0.5)
        return delay * (1.0 + jitter)

    # -- the adapter interface ---------------------------------------------------------------
    def prepare(self, requests: Sequence) -> list[Prepared]:
        out = []
        for request in requests:
            if isinstance(request, JudgeRequest):
                if not self.pairwise:
                    raise HttpModelError("a judge request reached a reward model (add ?judge=1 to the URL for a judge)")
                messages = [{"role": "user", "content": judge_text(request, self.judge_template)}]
            else:
                if self.pairwise:
                    raise HttpModelError("a (prompt, answer) request reached a pairwise judge")
                messages = request.messages()
            length = sum(len(m["content"]) for m in messages)
            if getattr(request, "images", ()):
                messages, length = with_images(messages, request.images), length + IMAGE_LENGTH * len(request.images)
            out.append(Prepared(request, length, payload=messages))
        return out

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        """Every request of the batch at once (at most --rm-concurrency in flight).

        When some fail, the batch raises; the engine then asks for each request alone, and
        those answers come from what this call already learned, without asking the server
        again: one failed request errors one item, and nothing is retried twice.
        """
        outcomes: dict[int, tuple[float | None, str | None]] = {}
        futures = {}
        for i, p in enumerate(batch):
            if p.request in self._settled:
                outcomes[i] = self._settled.pop(p.request)
            else:
                futures[i] = self._executor().submit(self._score_one, p)
        for i, future in futures.items():
            try:
                outcomes[i] = (future.result(), None)
            except HttpModelError as exc:
                outcomes[i] = (None, str(exc))
            except Exception as exc:  # a bug here must not show a secret either
                outcomes[i] = (None, self.scrub(f"{type(exc).__name__}: {exc}"))
        failed = [i for i, (_, error) in outcomes.items() if error is not None]
        if not failed:
            return [outcomes[i][0] for i in range(len(batch))]
        if len(batch) == 1:
            raise HttpModelError(outcomes[0][1]) from None
        for i, p in enumerate(batch):
            self._settled[p.request] = outcomes[i]
        raise HttpModelError(f"{len(failed)} of {len(batch)} requests failed; each is reported with its own item")

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="rmbench-http")
            return self._pool

    def _score_one(self, prepared: Prepared) -> float:
        messages = prepared.payload
        if self.pairwise:
            payload = {
                "model": self.served_model, "messages": messages, "max_tokens": 1, "temperature": 0,
                "logprobs": True, "top_logprobs": TOP_LOGPROBS, "seed": self.seed, "n": 1, "stream": False,
            }
            body = self._call("POST", self.api + "/chat/completions", payload)
            return self._read(margin_from_chat, body)
        payload = {
            "model": self.served_model, "messages": messages, "add_generation_prompt": False,
            "continue_final_message": False, "add_special_tokens": False, "use_activation": False,
        }
        if self.endpoint == "pooling":
            payload["task"] = self.task
            body = self._call("POST", self.root + "/pooling", payload)
            return self._read(reward_from_pooling, body, self.head, self.head_weights)
        body = self._call("POST", self.root + "/classify", payload)
        return self._read(reward_from_classify, body, self.head, self.head_weights)

    def _read(self, reader, body, *args) -> float:
        try:
            return reader(body, *args)
        except HttpModelError as exc:
            raise HttpModelError(self.scrub(f"{self.name}: {exc}")) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


IMAGE_LENGTH = 1_000  # what an image counts as in `Prepared.length` (sorting, batching)


def with_images(messages: list[dict], images: Sequence) -> list[dict]:
    """The messages with the images as image_url parts (data URIs), placed by items.images.place:
    an image from a message's content parts where it sat, the `images` field's at the start of
    the last user message; raises HttpModelError naming the image that cannot be used."""
    try:
        placed, order = place(messages, images)
        uris = {id(ref): data_uri(ref) for ref in order}  # each image decoded once, in order
    except ImageError as exc:
        raise HttpModelError(str(exc)) from None
    return [m if isinstance(m["content"], str) else {**m, "content": [
        {"type": "image_url", "image_url": {"url": uris[id(p["image"])]}} if p["type"] == "image" else p
        for p in m["content"]]} for m in placed]


def _retry_after(response) -> float | None:
    """The answer's Retry-After in seconds (None when absent or not a number)."""
    header = response.getheader("Retry-After")
    if header:
        try:
            return float(header)
        except ValueError:
            return None
    return None


def build(spec: ModelSpec) -> HttpModel:
    return HttpModel(spec)
