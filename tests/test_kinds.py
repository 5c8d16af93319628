"""Choosing the kind, and the pairwise-judge path through the engine, on conftest-defined kinds."""

import json

import pytest

from pytest_rmbench.items import ScoreResult, judge_both_orders
from pytest_rmbench.models.base import ModelLoadError, ModelSpec
from pytest_rmbench.models.kinds import detect_kind, pairwise_hint

JUDGE_CONFTEST = """
import pytest
from pytest_rmbench.models.base import Prepared

class Judge:
    kind = "toy-judge"; dtype = "n/a"; device = "cpu"; pairwise = True
    def __init__(self, mode):
        self.name = mode
        self.mode = mode
    def prepare(self, requests):
        return [Prepared(r, len(r.answer_a) + len(r.answer_b)) for r in requests]
    def score_batch(self, batch):
        if self.mode == "first":  # position bias: always prefers whatever is shown first
            return [1.0 for p in batch]
        if self.mode == "tie":
            return [0.0 for p in batch]
        return [float(len(p.request.answer_a) - len(p.request.answer_b)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    if spec.model.startswith("judge:"):
        return Judge(spec.model.split(":", 1)[1])
"""

ITEMS = "\n".join(json.dumps(r) for r in [
    {"id": 1, "subset": "s", "prompt": "q1", "chosen": "a long answer", "rejected": "short"},
    {"id": 2, "subset": "s", "prompt": "q2", "chosen": "tiny", "rejected": "a long wrong answer"},
]) + "\n"


@pytest.fixture
def judged(pytester):
    pytester.makeconftest(JUDGE_CONFTEST)
    (pytester.path / "j.rmbench.jsonl").write_text(ITEMS)
    return pytester


def run(pytester, model):
    result = pytester.runpytest(f"--rm-model={model}", "--rm-report=run.json", "--rm-no-store")
    return result, json.loads((pytester.path / "run.json").read_text())


def test_a_consistent_judge_is_scored_in_both_orders(judged):
    result, data = run(judged, "judge:length")
    first, second = data["items"]
    assert first["outcome"] == "correct" and first["verdicts"] == ["A>B", "B>A"]
    assert second["outcome"] == "incorrect" and second["verdicts"] == ["B>A", "A>B"]
    assert data["judge"] == {"n": 2, "inconsistent": 0, "inconsistency": 0.0}


def test_a_position_biased_judge_is_wrong_and_inconsistent(judged):
    result, data = run(judged, "judge:first")
    assert [i["outcome"] for i in data["items"]] == ["incorrect", "incorrect"]
    assert data["items"][0]["verdicts"] == ["A>B", "A>B"]
    assert data["judge"]["inconsistency"] == 1.0


def test_ties_in_both_orders_are_wrong(judged):
    _, data = run(judged, "judge:tie")
    assert [i["outcome"] for i in data["items"]] == ["incorrect", "incorrect"]


@pytest.mark.parametrize(
    "first, second, outcome",
    [(1.0, -1.0, "correct"), (1.0, 0.0, "correct"), (0.0, -2.0, "correct"), (0.0, 0.0, "incorrect"),
     (1.0, 1.0, "incorrect"), (-1.0, 1.0, "incorrect"), (-1.0, 0.0, "incorrect")],
)
def test_judgebench_rule(first, second, outcome):
    assert judge_both_orders(ScoreResult(first), ScoreResult(second)).outcome == outcome


def test_kind_detection(tmp_path):
    assert detect_kind(ModelSpec("builtin:length")) == "builtin"
    assert detect_kind(ModelSpec("scores:run.jsonl")) == "scores"
    assert detect_kind(ModelSpec("http://127.0.0.1:8000")) == "http"
    assert detect_kind(ModelSpec("https://rm.example.com")) == "http"
    assert detect_kind(ModelSpec("anything", kind="dpo")) == "dpo"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForSequenceClassification"]}))
    assert detect_kind(ModelSpec(str(tmp_path))) == "classifier"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ModelLoadError, match="--rm-kind dpo.*--rm-kind judge"):
        detect_kind(ModelSpec(str(tmp_path)))
    assert pairwise_hint(ModelSpec("x", kind="judge")) is True
    assert pairwise_hint(ModelSpec("builtin:length")) is False
    assert pairwise_hint(ModelSpec("http://h:1")) is None and pairwise_hint(ModelSpec("x", kind="mine")) is None
    assert pairwise_hint(ModelSpec("not-on-this-machine")) is None
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert pairwise_hint(ModelSpec(str(tmp_path))) is False


def test_help_lists_the_kinds(pytester):
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())  # help lines wrap
    assert "--rm-kind=KIND model kind: classifier, dpo, judge, prm, http, scores, builtin" in text
    assert "--rm-beta=BETA dpo: beta" in text


def test_ambiguous_causal_lm_is_one_clear_error(pytester, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (pytester.path / "j.rmbench.jsonl").write_text(ITEMS)
    result = pytester.runpytest(f"--rm-model={tmp_path}", "--rm-no-store")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*could be scored as a DPO policy (--rm-kind dpo), a pairwise judge*"])
