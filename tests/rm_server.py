"""A small stand-in for vLLM's OpenAI-compatible server (the v0.15.0 schema), for tests/test_http.py.

    python tests/rm_server.py --port 0 --mode MODE [--model-dir DIR] [--delay S] [--stall S]
                              [--api-key-env NAME] [--echo-auth] [--served-model-name NAME]

prints ``PORT <n>`` once it listens on 127.0.0.1, then serves until killed. It logs nothing.

Endpoints
    GET  /v1/models            {"object": "list", "data": [{"id": NAME, "object": "model", ...}]}
    POST /classify             chat messages -> {"data": [{"index", "label", "probs", "num_classes"}]}
    POST /pooling              the same body plus "task" -> {"data": [{"index", "object": "pooling", "data"}]}
    POST /v1/chat/completions  max_tokens 1 with logprobs/top_logprobs -> choices[0].logprobs.content[0]
    GET  /stats[?reset=1]      {"requests", "in_flight", "max_in_flight", "failed"} of the scoring POSTs
                               (a request is in flight from the moment its body is read until
                               just before its answer is written, so the count never exceeds
                               the number of requests the clients are waiting on)
    GET  /health

Scoring: with --model-dir, a transformers sequence classifier: the chat template is applied
to the messages (add_generation_prompt as asked, default false), tokenized without extra
special tokens (as asked, default false), and the logits are returned raw when
"use_activation" is false (else sigmoid for one output, softmax for several), like vLLM.
Without --model-dir, fake_score(messages), a pure function of the messages. The judge
(chat completions) is always fake_judge_top(messages).

Modes (the scoring POSTs only; /v1/models, /stats and /health always answer normally,
except in auth mode, which guards /v1/models too):
    ok       answers every request
    flaky    500 on every 2nd request (a body that already failed once is then answered,
             so two attempts always suffice, whatever the concurrency)
    500      500 on every request (a server that is up but broken); with --echo-auth the
             error message repeats the Authorization header it got
    stall    sleeps --stall seconds (default 5) before answering: past the client's timeout
    drop     reads the request, then closes the connection without a response
    garbage  200 with a body that is not JSON (a truncated document)
    429      rate-limits each distinct body once (Retry-After: 0), then answers it
    auth     requires "Authorization: Bearer $KEY", KEY from the variable named by
             --api-key-env (default RM_SERVER_KEY): 401 otherwise. The key is never
             logged; --echo-auth makes the 401 body repeat the Authorization header it
             got (a careless server), to test that the client redacts it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODES = ("ok", "flaky", "500", "stall", "drop", "garbage", "429", "auth")
SCORING = ("/classify", "/pooling", "/v1/chat/completions")


def _digest(value) -> bytes:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def fake_score(messages: list[dict]) -> float:
    """A deterministic reward in [-4, 4) from the conversation's text."""
    return int.from_bytes(_digest(messages)[:8], "big") / 2**64 * 8 - 4


def fake_judge_top(messages: list[dict]) -> list[dict]:
    """Top logprobs of the judge's first token: "A", " B" (missing for about 1 in 4
    conversations) and a distractor, all from the conversation's text."""
    d = _digest(["judge", messages])
    top = [{"token": "A", "logprob": -(d[0] / 255) * 5 - 0.01}]
    if d[2] % 4:
        top.append({"token": " B", "logprob": -(d[1] / 255) * 5 - 0.01})
    top.append({"token": "C", "logprob": -9.5})
    for entry in top:
        entry["bytes"] = list(entry["token"].encode("utf-8"))
    return sorted(top, key=lambda e: -e["logprob"])


class RealScorer:
    """A local transformers sequence classifier, one conversation at a time."""

    def __init__(self, folder: str):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        self.lock = threading.Lock()  # a fast tokenizer must not be used by two threads at once

    def logits(self, messages, add_generation_prompt: bool, add_special_tokens: bool) -> list[float]:
        with self.lock:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
            ids = self.tokenizer(text, add_special_tokens=add_special_tokens, return_tensors="pt")
            with self.torch.no_grad():
                out = self.model(**ids).logits[0]
            return [float(x) for x in out]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.failed = 0
        self.seen: set[bytes] = set()
        self.scorer = RealScorer(args.model_dir) if args.model_dir else None
        self.key = os.environ.get(args.api_key_env) if args.mode == "auth" else None
        if args.mode == "auth" and not self.key:
            sys.exit(f"auth mode: set the key in ${args.api_key_env}")

    def stats(self, reset: bool) -> dict:
        with self.lock:
            out = {"requests": self.requests, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight, "failed": self.failed}
            if reset:
                self.requests = self.failed = 0
                self.max_in_flight = self.in_flight
                self.seen.clear()
        return out


class Handler(BaseHTTPRequestHandler):
    server_version = "rm-server/1"
    state: State  # set on the class by main()

    def log_message(self, format, *args):  # noqa: A002 - nothing is logged, the key least of all
        pass

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, status: int, body, headers: dict | None = None) -> None:
        self._done()  # counted out BEFORE the answer leaves: the count nests inside the client's wait
        raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        kind = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 429: "RateLimitError"}.get(status, "InternalServerError")
        self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": status}}, headers)

    def _authorized(self) -> bool:
        state = self.state
        if state.args.mode != "auth":
            return True
        got = self.headers.get("Authorization") or ""
        if got == f"Bearer {state.key}":
            return True
        message = "Unauthorized"
        if state.args.echo_auth:
            message += f": got Authorization {got!r}"
        self._error(401, message)
        return False

    # -- GET -----------------------------------------------------------------------------
    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path == "/stats":
            return self._send(200, self.state.stats(bool(parse_qs(parts.query).get("reset"))))
        if parts.path == "/health":
            return self._send(200, {})
        if parts.path == "/v1/models":
            if not self._authorized():
                return
            name = self.state.args.served_model_name
            return self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "created": int(time.time()), "owned_by": "vllm", "root": name, "max_model_len": 128}]})
        self._error(404, f"no route {parts.path}")

    # -- POST ----------------------------------------------------------------------------
    def do_POST(self):
        state = self.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = urlsplit(self.path).path
        if path not in SCORING:
            return self._error(404, f"no route {path}")
        with state.lock:
            state.requests += 1
            count = state.requests
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        self._counted = True
        try:
            self._scoring(path, raw, count)
        finally:
            self._done()

    def _done(self) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            with self.state.lock:
                self.state.in_flight -= 1

    def _scoring(self, path: str, raw: bytes, count: int) -> None:
        state, mode = self.state, self.state.args.mode
        if not self._authorized():
            return
        if state.args.delay:
            time.sleep(state.args.delay)
        key = hashlib.sha256(path.encode() + raw).digest()
        if mode == "flaky" and count % 2 == 0:
            with state.lock:
                fail = key not in state.seen
                state.seen.add(key)
                state.failed += fail
            if fail:
                return self._error(500, "flaky server: internal error")
        if mode == "500":
            with state.lock:
                state.failed += 1
            message = "broken server: internal error"
            if state.args.echo_auth:  # a careless server that repeats the header in its error
                message += f"; got Authorization {self.headers.get('Authorization')!r}"
            return self._error(500, message)
        if mode == "429":
            with state.lock:
                fail = key not in state.seen
                state.seen.add(key)
                state.failed += fail
            if fail:
                return self._error(429, "rate limited, try again", {"Retry-After": "0"})
        if mode == "stall":
            time.sleep(state.args.stall)
        if mode == "drop":
            self.close_connection = True
            return  # nothing written: the client sees the connection close without a response
        if mode == "garbage":
            return self._send(200, b'{"data": [{"index": 0, "probs": [0.25,')
        try:
            body = json.loads(raw)
            messages = body["messages"]
            if not (isinstance(messages, list) and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages)):
                raise ValueError("messages must be a list of {role, content}")
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, f"invalid request: {exc}")
        if body.get("model") != state.args.served_model_name:
            return self._error(404, f"The model `{body.get('model')}` does not exist.")
        if path == "/v1/chat/completions":
            return self._chat(body, messages)
        values = self._values(body, messages)
        if path == "/classify":
            data = [{"index": 0, "label": "LABEL_0", "probs": values, "num_classes": len(values)}]
            return self._send(200, self._envelope("classify", data))
        task = body.get("task") or "classify"
        if task not in ("classify", "token_classify"):
            return self._error(400, f"unsupported task {task!r}")
        output = values if task == "classify" else [[0.0] * len(values), values]  # per token: the last row is the final token's
        return self._send(200, self._envelope("pool", [{"index": 0, "object": "pooling", "data": output}]))

    def _values(self, body: dict, messages: list[dict]) -> list[float]:
        if self.state.scorer is None:
            values = [fake_score(messages)]
        else:
            values = self.state.scorer.logits(messages, bool(body.get("add_generation_prompt", False)), bool(body.get("add_special_tokens", False)))
        if body.get("use_activation", True) is not False:  # vLLM's default: the classify activation
            if len(values) == 1:
                values = [1 / (1 + math.exp(-values[0]))]
            else:
                top = max(values)
                exps = [math.exp(v - top) for v in values]
                values = [e / sum(exps) for e in exps]
        return values

    def _envelope(self, prefix: str, data: list) -> dict:
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
            "model": self.state.args.served_model_name, "data": data,
            "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0, "prompt_tokens_details": None},
        }

    def _chat(self, body: dict, messages: list[dict]) -> None:
        if body.get("logprobs") is not True or not isinstance(body.get("top_logprobs"), int) or not 0 < body["top_logprobs"] <= 20:
            return self._error(400, "this judge needs logprobs: true and top_logprobs between 1 and 20")
        if (body.get("max_tokens") or body.get("max_completion_tokens")) != 1:
            return self._error(400, "this judge answers one token: max_tokens must be 1")
        top = fake_judge_top(messages)[: body["top_logprobs"]]
        first = dict(top[0], top_logprobs=top)
        choice = {
            "index": 0, "message": {"role": "assistant", "content": top[0]["token"], "tool_calls": []},
            "logprobs": {"content": [first]}, "finish_reason": "length", "stop_reason": None,
        }
        self._send(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.state.args.served_model_name, "choices": [choice],
            "usage": {"prompt_tokens": 0, "total_tokens": 1, "completion_tokens": 1},
        })


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--served-model-name", default="tiny-rm")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each scoring request takes")
    parser.add_argument("--stall", type=float, default=5.0, help="stall mode: seconds before answering")
    parser.add_argument("--api-key-env", default="RM_SERVER_KEY")
    parser.add_argument("--echo-auth", action="store_true")
    args = parser.parse_args(argv)
    Handler.state = State(args)
    ThreadingHTTPServer.request_queue_size = 64
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
