"""The rubric grader kind (--rm-kind grader): parsers on recorded outputs, the Prometheus prompt
layout, the retry rule, WildBench's checklist choices and length penalty, a tiny local causal LM
end to end (its random words are never a verdict: the error path), and an http grader against a
scripted chat-completions server on 127.0.0.1 (absolute, relative in both orders, checklist)."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # tinymodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))

from pytest_rmbench.items import ITEM_KINDS, JudgeRequest, ScoreRequest, request_parts  # noqa: E402
from pytest_rmbench.items.files import parse_file  # noqa: E402
from pytest_rmbench.models import grader as g  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec, Prepared  # noqa: E402

pytest_plugins = ["pytester"]
KEY = "sk-grader-secret-0123456789"


# -- parsers on recorded outputs -----------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("The response is accurate and complete. [RESULT] 5", 5),
    ("Feedback: partly right.\n[RESULT] 3", 3),
    ("... [RESULT]: (2)", 2),
    ("The format is \"[RESULT] (an integer number between 1 and 5)\". Mine: [RESULT] 4", 4),  # the echoed format is skipped
    ("[RESULT] 4 ... to repeat, [RESULT] 4", 4),  # several markers that agree
])
def test_parse_absolute(text, want):
    assert g.parse_absolute(text) == want


@pytest.mark.parametrize("text, why", [
    ("A fine answer, I would give it 5.", "no \"[RESULT] N\""),
    ("", "no \"[RESULT] N\""),
    ("[RESULT] 7", "not an integer from 1 to 5"),
    ("[RESULT] 0", "not an integer from 1 to 5"),
    ("[RESULT] 3.5", "not an integer from 1 to 5"),
    ("[RESULT] 2 ... on reflection [RESULT] 4", "several different verdicts"),
    ("[RESULT] five", "no \"[RESULT] N\""),
])
def test_parse_absolute_failures(text, why):
    with pytest.raises(g.GradeParseError, match=why.replace("[", r"\[").replace("]", r"\]")):
        g.parse_absolute(text)


@pytest.mark.parametrize("text, want", [
    ("Response A is more precise. [RESULT] A", "A"),
    ("[RESULT] B", "B"),
    ("format: [RESULT] (A or B)\nverdict [RESULT] Response B", "B"),
])
def test_parse_relative(text, want):
    assert g.parse_relative(text) == want


@pytest.mark.parametrize("text", ["no verdict", "[RESULT] A ... [RESULT] B", "[RESULT] C", "[RESULT] (A or B)"])
def test_parse_relative_failures(text):
    with pytest.raises(g.GradeParseError):
        g.parse_relative(text)


@pytest.mark.parametrize("text, want", [
    ("[RESULT] A++", "A++"), ("[RESULT] A+", "A+"), ("[RESULT] A=B", "A=B"), ("[RESULT] B+", "B+"), ("[RESULT] B++", "B++"),
    ('{"analysis of A": "...", "choice": "B+"}', "B+"),
    ("format [RESULT] (A++, A+, A=B, B+ or B++) then [RESULT] B++", "B++"),
])
def test_parse_choice(text, want):
    assert g.parse_choice(text) == want


@pytest.mark.parametrize("text", ["[RESULT] A>B", "nothing", "[RESULT] A+ and [RESULT] B+", '"choice": "A+" "choice": "B+"'])
def test_parse_choice_failures(text):
    with pytest.raises(g.GradeParseError):
        g.parse_choice(text)


@pytest.mark.parametrize("choice, a, b, k, want", [
    ("A+", "x" * 30, "x" * 10, 19, "A=B"),   # the winner is 20 characters longer: more than 19
    ("A+", "x" * 30, "x" * 10, 20, "A+"),    # exactly K longer: stays
    ("B+", "x" * 10, "x" * 600, 500, "A=B"),
    ("B+", "x" * 600, "x" * 10, 0, "B+"),    # the winner is the shorter one
    ("A++", "x" * 900, "x", 0, "A++"),       # only a slight win is penalised
    ("B+", "x", "x" * 900, -1, "B+"),        # K = -1: off
    ("A=B", "x" * 9, "x", 0, "A=B"),
])
def test_length_penalty_hand_computed(choice, a, b, k, want):
    assert g.length_penalty(choice, a, b, k) == want


# -- prompts ---------------------------------------------------------------------------------------
PROMETHEUS_ABSOLUTE_WITH_REFERENCE = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, a reference answer that gets a score of 5, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"
4. Please do not generate any other opening, closing, and explanations.

###The instruction to evaluate:
What is 2+2?

###Response to evaluate:
4

###Reference Answer (Score 5):
2+2 = 4.

###Score Rubrics:
[Is it correct?]
Score 1: wrong
Score 5: right

###Feedback: """

RUBRIC = "[Is it correct?]\nScore 1: wrong\nScore 5: right"


def test_absolute_prompt_is_prometheus_layout_exactly():
    assert g.absolute_prompt("What is 2+2?", "4", RUBRIC, "2+2 = 4.") == PROMETHEUS_ABSOLUTE_WITH_REFERENCE
    without = g.absolute_prompt("What is 2+2?", "4", RUBRIC)
    assert "###Reference Answer" not in without and "a reference answer" not in without
    assert without.endswith("###Score Rubrics:\n" + RUBRIC + "\n\n###Feedback: ")


def test_relative_and_checklist_prompts_have_their_sections():
    rel = g.relative_prompt("Q", "first", "second", "[Helpful?]")
    assert rel.index("###Instruction:\nQ\n") < rel.index("###Response A:\nfirst\n") < rel.index("###Response B:\nsecond\n") \
        < rel.index("###Score Rubric:\n[Helpful?]\n") < rel.index("###Feedback: ")
    assert rel.endswith("###Feedback: ") and "[RESULT] (A or B)" in rel
    check = g.checklist_prompt("Q", "first", "second", ["Is it short?", "Is it right?"])
    assert "###Checklist:\n- Is it short?\n- Is it right?\n" in check and "A++" in check and check.endswith("###Feedback: ")


def spec(model="unused", **options) -> ModelSpec:
    return ModelSpec(model=model, kind="grader", options=options)


def test_messages_use_the_item_rubric_over_the_file_and_say_what_is_missing(tmp_path):
    settings = g.GraderSettings(spec())
    with pytest.raises(ValueError, match="no rubric"):
        settings.messages(ScoreRequest("Q", "A"))
    system, user = settings.messages(ScoreRequest("What is 2+2?", "4", rubric=RUBRIC, reference="2+2 = 4."))
    assert system == {"role": "system", "content": g.ABS_SYSTEM_PROMPT}
    assert user == {"role": "user", "content": PROMETHEUS_ABSOLUTE_WITH_REFERENCE}
    rubric_file = tmp_path / "rubric.txt"
    rubric_file.write_text("[From the file]\n")
    settings = g.GraderSettings(spec(rubric=str(rubric_file)))
    assert "###Score Rubrics:\n[From the file]\n" in settings.messages(ScoreRequest("Q", "A"))[1]["content"]
    assert "[Own]" in settings.messages(ScoreRequest("Q", "A", rubric="[Own]"))[1]["content"]
    checklist = g.GraderSettings(spec(grader_mode="checklist", length_penalty="-1"))
    with pytest.raises(ValueError, match="no checklist"):
        checklist.messages(JudgeRequest("Q", "a", "b"))


def test_settings_defaults_and_errors():
    s = g.GraderSettings(spec())
    assert (s.mode, s.temperature, s.top_p, s.max_tokens, s.repetition_penalty, s.retries) == ("absolute", 1.0, 0.9, 1024, 1.03, 10)
    assert not s.pairwise and g.GraderSettings(spec(grader_mode="relative")).pairwise
    with pytest.raises(ModelLoadError, match="needs --rm-length-penalty"):
        g.GraderSettings(spec(grader_mode="checklist"))
    with pytest.raises(ModelLoadError, match="unknown --rm-grader-mode"):
        g.GraderSettings(spec(grader_mode="pointwise"))
    assert "length penalty K=500" in g.GraderSettings(spec(grader_mode="checklist", length_penalty="500")).describe()


# -- the retry loop, on scripted outputs -----------------------------------------------------------
class Scripted(g._GraderBase):
    """The grader's loop over a list of outputs per answer (the last one repeats)."""

    name, dtype, device, versions = "scripted", "n/a", "none", {}

    def __init__(self, script: dict, **options):
        self._start_grader(spec(**options))
        self.script = {k: list(v) for k, v in script.items()}
        self.calls = []

    def _generate(self, batch, attempt):
        out = []
        for p in batch:
            key = p.request.answer if isinstance(p.request, ScoreRequest) else (p.request.answer_a, p.request.answer_b)
            self.calls.append((key, attempt))
            queue = self.script[key]
            out.append(queue.pop(0) if len(queue) > 1 else queue[0])
        return out


def test_retry_then_success_then_give_up():
    model = Scripted({"ok": ["[RESULT] 5"], "late": ["hmm", "still thinking", "[RESULT] 2"], "never": ["no verdict " * 60]},
                     grader_retries="3", rubric=None)
    requests = [ScoreRequest("Q", a, rubric="R") for a in ("ok", "late", "never")]
    batch = model.prepare(requests)
    with pytest.raises(ValueError, match="1 of 3 grader requests failed"):
        model.score_batch(batch)
    assert [c for c in model.calls if c[0] == "never"] == [("never", 0), ("never", 1), ("never", 2), ("never", 3)]
    assert [c for c in model.calls if c[0] == "late"] == [("late", 0), ("late", 1), ("late", 2)]
    # the engine then asks one by one: answered from what the batch learned, nothing generated again
    calls = len(model.calls)
    ok, late = model.score_batch([batch[0]]), model.score_batch([batch[1]])
    assert ok == [5.0] and late == [2.0] and late[0].grader_outputs == ("[RESULT] 2",)
    with pytest.raises(ValueError) as failed:
        model.score_batch([batch[2]])
    message = str(failed.value)
    assert "could not be read after 4 attempt(s)" in message and "no \"[RESULT] N\"" in message
    assert "last output: 'no verdict no verdict" in message and len(message) < 500  # clipped
    assert len(model.calls) == calls


def test_through_the_engine_a_parse_failure_errors_only_its_item():
    from pytest_rmbench.engine import BatchLimits, score_requests
    from pytest_rmbench.items import PairItem, Rules, item_outcome

    model = Scripted({"good": ["[RESULT] 4"], "bad": ["[RESULT] 2"], "same": ["[RESULT] 2"], "junk": ["?"]}, grader_retries="1")
    items = [PairItem(id=str(i), subset="s", prompt="Q", chosen=c, rejected=r, rubric="R")
             for i, (c, r) in enumerate([("good", "bad"), ("same", "bad"), ("junk", "bad")])]
    requests = [r for item in items for r in item.requests(Rules())]
    results = score_requests(model, requests, BatchLimits())
    outcomes = [item_outcome(item, results, Rules()) for item in items]
    assert [o.outcome for o in outcomes] == ["correct", "incorrect", "error"]
    assert (outcomes[0].chosen_score, outcomes[0].rejected_score) == (4.0, 2.0)
    assert outcomes[1].details["grader_outputs"] == ["[RESULT] 2", "[RESULT] 2"]  # a tie fails, its verdicts shown
    assert "grader_outputs" not in outcomes[0].details
    assert "could not be read after 2 attempt(s)" in outcomes[2].error and "'?'" in outcomes[2].error


def test_relative_and_checklist_scores():
    rel = Scripted({("x", "y"): ["[RESULT] A"], ("y", "x"): ["[RESULT] B"]}, grader_mode="relative")
    assert rel.score_batch(rel.prepare([JudgeRequest("Q", "x", "y", rubric="R"), JudgeRequest("Q", "y", "x", rubric="R")])) == [1.0, -1.0]
    long = "a long answer that goes on"
    check = Scripted({("short", long): ["[RESULT] A+"], (long, "short"): ["[RESULT] A+"], ("p", "q"): ["[RESULT] B++"]},
                     grader_mode="checklist", length_penalty="5")
    reqs = [JudgeRequest("Q", a, b, checklist=("c",)) for a, b in (("short", long), (long, "short"), ("p", "q"))]
    assert check.score_batch(check.prepare(reqs)) == [0.5, 0.0, -1.0]


# -- items: the optional grading fields -----------------------------------------------------------
def test_grading_fields_keep_old_hashes_and_keys_and_change_them_when_present():
    pair = ITEM_KINDS.get("pair")
    plain = pair(id="1", subset="s", prompt="Q", chosen="a", rejected="b")
    graded = pair(id="1", subset="s", prompt="Q", chosen="a", rejected="b", rubric="R")
    assert plain.content_hash() != graded.content_hash()
    assert request_parts(ScoreRequest("Q", "a")) == ["Q", "a"]
    assert request_parts(ScoreRequest("Q", "a", rubric="R")) != ["Q", "a"]
    assert request_parts(JudgeRequest("Q", "a", "b")) == ["judge", "Q", "a", "b"]
    assert request_parts(JudgeRequest("Q", "a", "b", checklist=("c",))) != request_parts(JudgeRequest("Q", "a", "b"))
    assert ScoreRequest("Q", "a") == ScoreRequest("Q", "a") and ScoreRequest("Q", "a") != ScoreRequest("Q", "a", rubric="R")
    assert graded.requests()[0] == ScoreRequest("Q", "a", rubric="R")


def test_item_files_accept_the_grading_fields_without_warning():
    text = """
items:
  - {id: p, subset: s, prompt: Q, chosen: a, rejected: b, rubric: R, reference: ref, checklist: [one, two]}
  - {id: j, subset: s, kind: judged, question: Q, response_a: a, response_b: b, label: "A>B", rubric: R}
  - {id: n, subset: s, kind: best_of_n, prompt: Q, chosen: [a], rejected: [b, c], checklist: [one]}
  - {id: bad, subset: s, prompt: Q, chosen: a, rejected: b, checklist: []}
"""
    parsed = parse_file("g.rmbench.yaml", text.encode())
    assert parsed.unknown_fields == []
    p, j, n, bad = parsed.entries
    assert (p.rubric, p.reference, p.checklist) == ("R", "ref", ("one", "two"))
    assert j.requests()[0].rubric == "R" and n.requests()[2] == ScoreRequest("Q", "c", checklist=("one",))
    assert bad.field == "checklist"


# -- a tiny local causal LM: real generation, never a verdict ---------------------------------------
@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    import tinymodels

    return tinymodels.build_tiny_llama(tmp_path_factory.mktemp("grader") / "lm", causal_lm=True)


GRADED_YAML = """
items:
  - id: one
    subset: graded
    prompt: What is the capital of France ?
    chosen: The capital of France is Paris .
    rejected: The capital of France is Berlin .
    rubric: "[Is the answer correct?]\\nScore 1: wrong\\nScore 5: right"
"""


def test_local_grader_generates_and_a_garbage_verdict_is_an_item_error(tiny_causal_lm):
    model = g.build(ModelSpec(str(tiny_causal_lm), kind="grader", seed=3,
                              options={"grader_max_tokens": "6", "grader_retries": "1"}))
    assert (model.kind, model.pairwise, model.steps) == ("grader", False, False)
    assert "absolute" in model.versions["grader"] and "torch" in model.versions
    request = ScoreRequest("What is the capital of France ?", "Paris", rubric="[Correct?]")
    (prepared,) = model.prepare([request])
    first = model._generate([prepared], 0)
    assert first == model._generate([prepared], 0)  # seeded: the same request and attempt sample the same words
    with pytest.raises(ValueError, match=r"could not be read after 2 attempt\(s\)"):
        model.score_batch([prepared])
    model.close()


@pytest.mark.usefixtures("subprocess_env")
def test_local_grader_end_to_end(pytester, tiny_causal_lm):
    pytester.makefile(".rmbench.yaml", items=GRADED_YAML)
    result = pytester.runpytest_subprocess(
        f"--rm-model={tiny_causal_lm}", "--rm-kind", "grader", "--rm-grader-max-tokens", "4", "--rm-grader-retries", "1",
        "--rm-report=run.json", "--rm-no-store", "--rm-no-cache", "-p", "no:cacheprovider", timeout=240)
    data = json.loads((pytester.path / "run.json").read_text())
    assert data["run"]["kind"] == "grader", result.stdout.str()
    (item,) = data["items"]
    assert item["outcome"] == "error" and "could not be read after 2 attempt(s)" in item["error"]


# -- http: a scripted chat-completions server ------------------------------------------------------
class GraderServer:
    """Answers /v1/chat/completions from `reply(payload) -> text`; keeps every payload it got."""

    def __init__(self, reply, key: str | None = None):
        self.reply, self.key, self.payloads = reply, key, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "prometheus", "object": "model"}]})

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if outer.key and self.headers.get("Authorization") != f"Bearer {outer.key}":
                    return self._send(401, {"error": {"message": "Unauthorized"}})
                outer.payloads.append(payload)
                text = outer.reply(payload, self.headers.get("Authorization") or "")
                self._send(200, {"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def section(text: str, name: str) -> str:
    return text.split(f"###{name}:\n", 1)[1].split("\n\n###", 1)[0]


ABSOLUTE_SCORES = {"Paris .": "Correct and brief. [RESULT] 5", "Berlin .": "Wrong city. [RESULT] 1",
                   "Rome .": "Wrong. [RESULT] 1"}


def absolute_reply(payload, auth):
    text = payload["messages"][1]["content"]
    answer = section(text, "Response to evaluate")
    if answer == "Lyon .":  # never a verdict; the output repeats the header a careless server saw
        return f"I cannot grade this. You sent {auth}"
    return ABSOLUTE_SCORES[answer]


HTTP_ITEMS = """
items:
  - {id: right, subset: s, prompt: "Capital of France?", chosen: "Paris .", rejected: "Berlin .", rubric: "[Correct?]"}
  - {id: tie, subset: s, prompt: "Capital of France?", chosen: "Berlin .", rejected: "Rome .", rubric: "[Correct?]"}
  - {id: junk, subset: s, prompt: "Capital of France?", chosen: "Lyon .", rejected: "Berlin .", rubric: "[Correct?]"}
"""


@pytest.fixture
def env_key(monkeypatch):
    monkeypatch.setenv("GRADER_KEY", KEY)


@pytest.mark.usefixtures("subprocess_env", "env_key")
def test_http_absolute_grading(pytester):
    server = GraderServer(absolute_reply, key=KEY)
    try:
        pytester.makefile(".rmbench.yaml", items=HTTP_ITEMS)
        result = pytester.runpytest_subprocess(
            f"--rm-model={server.url}", "--rm-kind", "grader", "--rm-api-key-env", "GRADER_KEY", "--rm-seed", "7",
            "--rm-grader-retries", "2", "--rm-report=run.json", "--rm-html=r.html", "--junitxml=j.xml", "--rm-no-store",
            "-p", "no:cacheprovider", "-rA")
    finally:
        server.close()
    data = json.loads((pytester.path / "run.json").read_text())
    items = {i["id"]: i for i in data["items"]}
    assert data["run"]["kind"] == "grader" and "absolute" in data["run"]["versions"]["grader"], result.stdout.str()
    assert items["right"]["outcome"] == "correct" and (items["right"]["chosen_score"], items["right"]["rejected_score"]) == (5, 1)
    assert items["tie"]["outcome"] == "incorrect"  # 1 vs 1: a tie fails
    assert items["tie"]["details"]["grader_outputs"] == ["Wrong city. [RESULT] 1", "Wrong. [RESULT] 1"] or \
        sorted(items["tie"]["details"]["grader_outputs"]) == sorted(["Wrong city. [RESULT] 1", "Wrong. [RESULT] 1"])
    assert items["junk"]["outcome"] == "error" and "could not be read after 3 attempt(s)" in items["junk"]["error"]
    # the payload: Prometheus' sampling defaults, the system prompt, seeds that differ per attempt
    first = server.payloads[0]
    assert (first["temperature"], first["top_p"], first["max_tokens"], first["repetition_penalty"]) == (1.0, 0.9, 1024, 1.03)
    assert first["model"] == "prometheus" and first["messages"][0]["content"] == g.ABS_SYSTEM_PROMPT
    junk_seeds = [p["seed"] for p in server.payloads if "Lyon ." in p["messages"][1]["content"]]
    assert len(junk_seeds) == 3 and len(set(junk_seeds)) == 3
    # the key never shows: not in the output, not in any file (the error quotes the scrubbed output)
    assert "<redacted>" in items["junk"]["error"]
    assert KEY not in result.stdout.str() + result.stderr.str()
    assert not [p for p in pytester.path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def relative_reply(payload, auth):
    text = payload["messages"][1]["content"]
    a, b = section(text, "Response A"), section(text, "Response B")
    if "biased" in (a + b):
        return "I like the first one. [RESULT] A"  # the same letter in both orders
    return "[RESULT] A" if a == "Paris ." else "[RESULT] B"


@pytest.mark.usefixtures("subprocess_env")
def test_http_relative_grading_in_both_orders(pytester):
    server = GraderServer(relative_reply)
    try:
        pytester.makefile(".rmbench.yaml", items="""
items:
  - {id: right, subset: s, prompt: "Capital of France?", chosen: "Paris .", rejected: "Berlin .", rubric: "[Correct?]"}
  - {id: biased, subset: s, prompt: "Capital of France?", chosen: "Paris . biased", rejected: "Berlin .", rubric: "[Correct?]"}
  - {id: judged, subset: s, kind: judged, question: "Capital?", response_a: "Berlin .", response_b: "Paris .", label: "B>A", rubric: "[Correct?]"}
""")
        result = pytester.runpytest_subprocess(f"--rm-model={server.url}", "--rm-kind", "grader", "--rm-grader-mode", "relative",
                                               "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider")
    finally:
        server.close()
    data = json.loads((pytester.path / "run.json").read_text())
    items = {i["id"]: i for i in data["items"]}
    assert items["right"]["outcome"] == "correct" and items["right"]["verdicts"] == ["A>B", "B>A"], result.stdout.str()
    assert items["biased"]["outcome"] == "incorrect" and items["biased"]["verdicts"] == ["A>B", "A>B"]
    assert items["biased"]["details"]["grader_outputs"] == ["I like the first one. [RESULT] A"] * 2
    assert items["judged"]["outcome"] == "correct"
    assert len(server.payloads) == 6 and all(p["messages"][0]["content"] == g.REL_SYSTEM_PROMPT for p in server.payloads)


LONG = "Paris is the capital and largest city of France ."  # 49 characters, 41 more than "Berlin ."
CHOICES = {("Paris .", "Berlin ."): "A+", ("Berlin .", "Paris ."): "B+",      # the short winner: no penalty
           (LONG, "Berlin ."): "A+", ("Berlin .", LONG): "B+",                # the long winner, 41 longer: a tie when K < 41
           ("Paris !", "Berlin ."): "A++", ("Berlin .", "Paris !"): "B++"}   # a clear win is never penalised


def checklist_reply(payload, auth):
    text = payload["messages"][1]["content"]
    assert "###Checklist:\n- Names Paris?\n" in text
    return "Checks done. [RESULT] " + CHOICES[(section(text, "Response A"), section(text, "Response B"))]


CHECKLIST_ITEMS = f"""
items:
  - {{id: short, subset: s, prompt: "Capital?", chosen: "Paris .", rejected: "Berlin .", checklist: ["Names Paris?"]}}
  - {{id: long, subset: s, prompt: "Capital?", chosen: "{LONG}", rejected: "Berlin .", checklist: ["Names Paris?"]}}
  - {{id: clear, subset: s, prompt: "Capital?", chosen: "Paris !", rejected: "Berlin .", checklist: ["Names Paris?"]}}
"""


@pytest.mark.usefixtures("subprocess_env")
@pytest.mark.parametrize("k, long_outcome, long_margin", [("40", "incorrect", 0.0), ("-1", "correct", 0.5), ("41", "correct", 0.5)])
def test_http_checklist_grading_with_the_length_penalty(pytester, k, long_outcome, long_margin):
    server = GraderServer(checklist_reply)
    try:
        pytester.makefile(".rmbench.yaml", items=CHECKLIST_ITEMS)
        result = pytester.runpytest_subprocess(f"--rm-model={server.url}", "--rm-kind", "grader", "--rm-grader-mode", "checklist",
                                               "--rm-length-penalty", k, "--rm-report=run.json", "--rm-no-store",
                                               "-p", "no:cacheprovider")
    finally:
        server.close()
    data = json.loads((pytester.path / "run.json").read_text())
    items = {i["id"]: i for i in data["items"]}
    assert f"K={k}" in data["run"]["versions"]["grader"], result.stdout.str()
    assert items["short"]["outcome"] == "correct" and items["short"]["margin"] == 0.5
    assert items["long"]["outcome"] == long_outcome and items["long"]["margin"] == long_margin
    assert items["clear"]["outcome"] == "correct" and items["clear"]["margin"] == 1.0


def test_checklist_without_k_is_a_usage_error(pytester):
    pytester.makefile(".rmbench.yaml", items=CHECKLIST_ITEMS)
    result = pytester.runpytest("--rm-model=http://127.0.0.1:9/v1", "--rm-kind", "grader", "--rm-grader-mode", "checklist",
                                "--rm-no-store", "-p", "no:cacheprovider")
    assert result.ret == 4
    assert "--rm-grader-mode checklist needs --rm-length-penalty K" in result.stderr.str()


def test_bad_grader_options_are_usage_errors(pytester):
    pytester.makefile(".rmbench.yaml", items=CHECKLIST_ITEMS)
    for args, message in ((("--rm-grader-mode", "pointwise"), "--rm-grader-mode: choose one of"),
                          (("--rm-grader-top-p", "0"), "--rm-grader-top-p: must be"),
                          (("--rm-length-penalty", "-2"), "--rm-length-penalty: must be")):
        result = pytester.runpytest("--rm-model=http://127.0.0.1:9/v1", "--rm-kind", "grader", *args, "--rm-no-store",
                                    "-p", "no:cacheprovider")
        assert result.ret == 4 and message in result.stderr.str(), args
