"""--rm-null-answer: a constant non-answer compared with every pair and judged item's chosen
answer, in both orders; the report's null_answer block and the --rm-max-null-win-rate gate.

Every figure below is worked out by hand from the answers' lengths.
"""

import json

import pytest

from pytest_rmbench.items import JudgedItem, PairItem, Rules, ScoreRequest, ScoreResult
from pytest_rmbench.options import BUILTIN_NULL_ANSWER

NULL = "NULLNULLNULL"  # 12 characters

ITEMS = """\
items:
  # chosen lengths 40, 4, 31 and 12 (j1's chosen is B, j2's is A)
  - {kind: pair, id: p1, subset: pairs, prompt: p, chosen: "a long chosen answer that beats the null", rejected: short}
  - {kind: pair, id: p2, subset: pairs, prompt: p, chosen: tiny, rejected: x}
  - {kind: judged, id: j1, subset: judged, question: q, response_a: aaaaa, response_b: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", label: "B>A"}
  - {kind: judged, id: j2, subset: judged, question: q, response_a: aaaaaaaaaaaa, response_b: b, label: "A>B"}
"""

# a judge that prefers the longer answer, with a bias of 1 towards the answer shown as A
JUDGE = """
import pytest
from pytest_rmbench.models.base import Prepared

class Judge:
    kind = "judge"; dtype = "n/a"; device = "cpu"; name = "judge"; pairwise = True
    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]
    def score_batch(self, batch):
        return [float(len(p.request.answer_a) - len(p.request.answer_b) + 1) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Judge()
"""


@pytest.fixture
def items(pytester):
    pytester.makefile(".rmbench.yaml", items=ITEMS)
    return pytester


def run(pytester, *args, judge=False):
    if judge:
        pytester.makeconftest(JUDGE)
    model = ("--rm-model=judge", "--rm-kind=judge") if judge else ("--rm-model=builtin:length",)
    result = pytester.runpytest(*model, "--rm-report=run.json", "-p", "no:cacheprovider", "--rm-no-store", *args)
    report = json.loads((pytester.path / "run.json").read_text()) if (pytester.path / "run.json").exists() else None
    return result, report


def verdicts(report):
    return {i["id"]: (i["outcome"], i["credit"], i["verdicts"]) for i in report["items"]}


def test_a_judge_is_asked_both_orders_and_the_report_gives_each_orders_win_rate(items):
    _, plain = run(items, judge=True)
    (items.path / "run.json").unlink()
    result, report = run(items, f"--rm-null-answer={NULL}", judge=True)
    # the null answer (12) shown as A wins when 12 - c + 1 > 0 (c < 13): p2 (4) and j2 (12);
    # shown as B it wins when c - 12 + 1 < 0 (c < 11): p2 only
    assert report["null_answer"] == {"answer": NULL, "n": 4, "wins_as_a": 2, "wins_as_b": 1, "win_rate_as_a": 0.5,
                                     "win_rate_as_b": 0.25, "win_rate": 0.375, "errors": 0}
    items_ = {i["id"]: i for i in report["items"]}
    # verdicts: with the null answer as A, then as B (A>B then B>A: it won both)
    assert items_["p2"]["details"]["null"] == {"verdicts": ["A>B", "B>A"], "wins_as_a": True, "wins_as_b": True}
    assert items_["j2"]["details"]["null"] == {"verdicts": ["A>B", "A>B"], "wins_as_a": True, "wins_as_b": False}
    assert items_["p1"]["details"]["null"] == {"verdicts": ["B>A", "A>B"], "wins_as_a": False, "wins_as_b": False}
    # the items' own verdicts are unchanged; the null block comes after the kinds' blocks
    assert verdicts(report) == verdicts(plain) and all(v[0] == "correct" for v in verdicts(report).values())
    assert "null_answer" not in plain and list(report)[list(report).index("null_answer") - 1] == "heads"
    assert result.ret == 0


def test_the_gate_caps_the_null_answers_win_rate(items):
    result, report = run(items, f"--rm-null-answer={NULL}", "--rm-max-null-win-rate=0.3", judge=True)
    check = next(c for c in report["gate"]["checks"] if c["name"] == "null_answer")
    assert (check["kind"], check["value"], check["threshold"], check["status"], check["passed"]) == ("max", 0.375, 0.3, "fail", False)
    assert report["gate"]["configured"] and not report["gate"]["passed"]
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*null_answer 0.375, needs <= 0.300: FAIL (from --rm-max-null-win-rate)*"])
    (items.path / "run.json").unlink()
    result, report = run(items, f"--rm-null-answer={NULL}", "--rm-max-null-win-rate=0.375", judge=True)
    assert report["gate"]["passed"] and result.ret == 0


def test_a_scalar_model_compares_the_null_answers_score_with_the_chosen_one(items):
    result, report = run(items, f"--rm-null-answer={NULL}", "--rm-max-null-win-rate=0.25")
    # builtin:length: the null answer (12) beats a chosen answer only when strictly longer: p2 (4)
    assert report["null_answer"] == {"answer": NULL, "n": 4, "wins_as_a": 1, "wins_as_b": 1, "win_rate_as_a": 0.25,
                                     "win_rate_as_b": 0.25, "win_rate": 0.25, "errors": 0}
    items_ = {i["id"]: i for i in report["items"]}
    assert items_["p2"]["details"]["null"] == {"null_score": 12.0, "chosen_score": 4.0, "wins_as_a": True, "wins_as_b": True}
    assert items_["j2"]["details"]["null"]["wins_as_a"] is False  # 12 vs 12: strict
    assert report["gate"]["passed"] and result.ret == 0


def test_builtin_and_file_forms(items):
    _, report = run(items, "--rm-null-answer=builtin")
    assert report["null_answer"]["answer"] == BUILTIN_NULL_ANSWER and report["null_answer"]["n"] == 4
    (items.path / "run.json").unlink()
    items.path.joinpath("null.txt").write_text("I do not know, but here is a long non-answer.", encoding="utf-8")
    items.makeini("[pytest]\nrm_null_answer = null.txt\nrm_max_null_win_rate = 0.5\n")
    result, report = run(items)
    assert report["null_answer"]["answer"] == "I do not know, but here is a long non-answer."
    # 46 characters: longer than every chosen answer but p1 (40 < 46 too) -> all four win
    assert report["null_answer"]["win_rate"] == 1.0
    check = next(c for c in report["gate"]["checks"] if c["name"] == "null_answer")
    assert check["status"] == "fail" and result.ret == 1


def test_without_the_option_nothing_changes(items):
    _, report = run(items)
    assert "null_answer" not in report
    assert all("null" not in (i["details"] or {}) for i in report["items"])
    assert all(c["name"] != "null_answer" for c in report["gate"]["checks"])


@pytest.mark.parametrize("args, message", [
    (["--rm-max-null-win-rate=0.1"], "--rm-max-null-win-rate needs --rm-null-answer"),
    (["--rm-null-answer=x", "--rm-max-null-win-rate=1.5"], "--rm-max-null-win-rate: must be between 0 and 1"),
    (["--rm-null-answer= "], "--rm-null-answer: the null answer is empty"),
])
def test_usage_errors(items, args, message):
    result, _ = run(items, *args)
    assert result.ret == 4 and message in result.stderr.str()


def test_null_requests_are_ordinary_requests():
    pair = PairItem(id="1", subset="s", prompt="p", chosen="good", rejected="bad")
    judged = JudgedItem(id="2", subset="s", question="p", response_a="bad", response_b="good", label="B>A")
    rules = Rules(null_answer="N")
    assert pair.requests(rules)[2:] == judged.requests(rules)[2:] == [ScoreRequest("p", "N")]  # scored once per chunk
    judge = Rules(pairwise=True, null_answer="N")
    assert [(r.answer_a, r.answer_b) for r in pair.requests(judge)[2:]] == [("good", "N"), ("N", "good")]
    assert [(r.answer_a, r.answer_b) for r in judged.requests(judge)[2:]] == [("good", "N"), ("N", "good")]
    assert len(pair.requests()) == 2 and len(judged.requests(Rules(pairwise=True))) == 2
    # a failed null score leaves the item's verdict and says so in its details
    results = {r: ScoreResult(v) for r, v in zip(pair.requests(rules), [2.0, 1.0])}
    results[ScoreRequest("p", "N")] = ScoreResult(None, error="boom")
    outcome = pair.outcome(results, rules)
    assert outcome.outcome == "correct" and outcome.details["null"] == {"error": "boom"}
