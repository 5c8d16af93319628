"""VL-RewardBench's own judge protocol: --rm-kind grader --rm-grader-mode vl-rewardbench (k sampled
verdicts in random answer orders, the majority of all k, items without one left out of the suite's
figures), on its parser, its tally, and a real session against a local chat-completions server."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL", reason="the [vision] extra (Pillow) is part of the test extra")

from pytest_rmbench.items import JudgeRequest  # noqa: E402
from pytest_rmbench.models import grader as g  # noqa: E402

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from test_grader import GraderServer, spec  # noqa: E402
from test_vl_suites import save_png, vl_row  # noqa: E402
from suite_data import write_jsonl  # noqa: E402

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("text, want", [
    ("Accuracy: ... Overall Judgment: Answer 2 is better.", 2),
    ("**Overall Judgment:** Answer 1 is slightly better", 1),  # the stars go first
    ("Overall Judgment:\nAnswer 1 is the better one", 1),  # so do newlines
    ("Both are fine. Therefore, Answer 2 is better", 2),
])
def test_the_parser(text, want):
    assert g.parse_vlrb(text) == want


@pytest.mark.parametrize("text", ["Answer 1 is better", "Overall Judgment: both are good", "Overall: Answer 3 is better"])
def test_what_the_parser_refuses(text):
    with pytest.raises(g.GradeParseError):
        g.parse_vlrb(text)


class Voter(g._GraderBase):
    """Writes a verdict per generation from `pick(first, second, index) -> text`; counts calls."""

    name, dtype, device, versions = "voter", "n/a", "none", {}

    def __init__(self, pick, **options):
        self._start_grader(spec(grader_mode="vl-rewardbench", **options))
        self.pick, self.generated = pick, []

    def _generate(self, batch, attempt):
        out = []
        for p in batch:
            job = p.request
            first, second = re.search(r"Answer 1: (.*)\n\nAnswer 2: (.*)\n\nPlease", job.messages[0]["content"]).groups()
            self.generated.append((job.pair, job.index, first))
            out.append(self.pick(first, second, job.index))
        return out


def prepared(grader, *requests):
    return grader.prepare(list(requests))


def test_k_votes_per_pair_shared_by_both_orders_and_the_majority_of_all_k():
    a_first = JudgeRequest("q?", "good answer", "bad answer")
    b_first = JudgeRequest("q?", "bad answer", "good answer")
    good = Voter(lambda first, second, i: f"Overall Judgment: Answer {1 if 'good' in first else 2} is better.",
                 grader_samples=5)
    first, swapped = good.score_batch(prepared(good, a_first, b_first))
    assert float(first) == 1.0 and float(swapped) == -1.0
    assert first.votes == {"for_a": 5, "for_b": 0, "unparsed": 0, "samples": 5, "verdict": "A"}
    assert len(good.generated) == 5  # one generation per sample, not one per order
    assert {shown for _, _, shown in good.generated} == {"good answer", "bad answer"}  # both orders shown
    # 2 votes each way and one unreadable: no answer has more than half of the 5 -> no verdict (0.0)
    def split_pick(first, second, i):
        if i == 2:
            return "I cannot decide"
        wanted = "good" if i in (0, 3) else "bad"
        return f"Overall Judgment: Answer {1 if wanted in first else 2} is better"

    split = Voter(split_pick, grader_samples=5)
    (score,) = split.score_batch(prepared(split, a_first))
    assert score.votes == {"for_a": 2, "for_b": 2, "unparsed": 1, "samples": 5, "verdict": None} and float(score) == 0.0
    # 3 of 5 for the good answer, 2 unreadable: 3 > 5/2, a verdict
    three = Voter(lambda first, second, i: "???" if i >= 3 else
                  f"Overall Judgment: Answer {1 if 'good' in first else 2} is better", grader_samples=5)
    (score,) = three.score_batch(prepared(three, a_first))
    assert score.votes == {"for_a": 3, "for_b": 0, "unparsed": 2, "samples": 5, "verdict": "A"}


def test_the_mode_has_the_protocols_sampling_and_no_retries():
    s = g.GraderSettings(spec(grader_mode="vl-rewardbench"))
    assert (s.temperature, s.top_p, s.max_tokens, s.repetition_penalty, s.samples) == (0.2, 0.2, 2048, 1.0, 5)
    assert "5 sampled verdicts per item" in s.describe()
    jobs = s.sample_jobs(JudgeRequest("q?", "x", "y"))
    assert jobs == s.sample_jobs(JudgeRequest("q?", "y", "x"))  # the same k generations for either order
    assert g.GraderSettings(spec(grader_mode="vl-rewardbench", grader_samples="9")).samples == 9


# -- a real session: the suite from its own files, a local multimodal chat-completions server ---------
ROWS = [  # (id, responses, ranking, image); the server prefers an answer holding "good"
    ("wildvision_1", ["good one", "meh"], [0, 1], "images/wildvision-battle/1.png"),  # general, correct
    ("povid_2", ["meh", "good two"], [0, 1], "images/povid/2.png"),  # hallucination, wrong
    ("RLHF-V_3", ["plain", "plainer"], [0, 1], "images/rlhf-v/3.png"),  # no verdict: excluded
    ("mathverse_4", ["meh", "good four"], [1, 0], "images/reasoning_tasks/4.png"),  # reasoning, correct (ranked 0 is second)
]


def reply(payload, auth):
    content = payload["messages"][0]["content"]
    text = next(part["text"] for part in content if part["type"] == "text")
    first, second = re.search(r"Answer 1: (.*)\n\nAnswer 2: (.*)\n\nPlease", text).groups()
    if "good" not in first + second:
        return "They look the same to me."
    return f"1. Accuracy ...\n**Overall Judgment:** Answer {1 if 'good' in first else 2} is better."


@pytest.mark.usefixtures("subprocess_env")
def test_the_protocol_through_the_vl_rewardbench_suite(pytester):
    data = pytester.path / "vlrb"
    for _, _, _, image in ROWS:
        save_png(str(data / image))
    write_jsonl(str(data / "data.jsonl"), [vl_row(*r) for r in ROWS])
    server = GraderServer(reply)
    try:
        result = pytester.runpytest_subprocess(
            "--rm-bench", "vl-rewardbench", f"--rm-data-dir={data}", f"--rm-model={server.url}", "--rm-kind", "grader",
            "--rm-grader-mode", "vl-rewardbench", "--rm-grader-samples", "3", "--rm-report=run.json", "--rm-no-store",
            "-p", "no:cacheprovider")
    finally:
        server.close()
    report = json.loads((pytester.path / "run.json").read_text())
    scores = report["scores"]["vl-rewardbench"]
    assert scores["protocol"] == "judge" and scores["samples"] == 3 and scores["excluded"] == 1, result.stdout.str()
    # by hand, the excluded row left out: general 1/1, hallucination 0/1, reasoning 1/1
    assert scores["overall"] == 2 / 3 and scores["groups"] == {"general": 1.0, "hallucination": 0.0, "reasoning": 1.0}
    assert scores["macro"] == pytest.approx(2 / 3)
    items = {i["id"]: i for i in report["items"]}
    assert items["RLHF-V_3"]["details"]["excluded"].startswith("no answer won more than half")
    assert items["RLHF-V_3"]["details"]["votes"] == {"for_a": 0, "for_b": 0, "unparsed": 3, "samples": 3, "verdict": None}
    assert items["wildvision_1"]["outcome"] == "correct" and items["povid_2"]["outcome"] == "incorrect"
    assert len(server.payloads) == 3 * len(ROWS)  # k generations per item: the second order reuses them
    first = server.payloads[0]
    assert first["temperature"] == 0.2 and first["top_p"] == 0.2 and first["max_tokens"] == 2048
    assert [p["type"] for p in first["messages"][0]["content"]] == ["image_url", "text"]
    assert first["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "vl-rewardbench (VL-RewardBench's judge protocol" in json.dumps(report["run"]["versions"])
