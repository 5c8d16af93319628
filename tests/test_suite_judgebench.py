"""JudgeBench as a suite: response sets, source prefixes, the counter rule and the scalar rule."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, JudgedItem, Rules
from pytest_rmbench.suites import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.judgebench import JUDGEBENCH, source_prefix

GPT = "dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl"
CLAUDE = "dataset=judgebench,response_model=claude-3-5-sonnet-20240620.jsonl"
MODELS = {GPT: "gpt-4o-2024-05-13", CLAUDE: "claude-3-5-sonnet-20240620"}

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import scored, write_jsonl  # noqa: E402


def pair(pair_id, source, label="A>B", model="gpt-4o-2024-05-13", original_id=None):
    return {"pair_id": pair_id, "original_id": original_id, "source": source, "question": f"q {pair_id}",
            "response_model": model, "response_A": f"A {pair_id}", "response_B": f"B {pair_id}", "label": label}


def load(tmp_path):
    source = DataSource(suite="judgebench", data_dir=str(tmp_path))
    return source, list(JUDGEBENCH.load(source))


@pytest.mark.parametrize("source, prefix", [
    ("mmlu-pro-law", "mmlu-pro"), ("mmlu-pro-computer science", "mmlu-pro"), ("livebench-reasoning", "livebench-reasoning"),
    ("livebench-math", "livebench-math"), ("livecodebench", "livecodebench"), ("mmlu-prox", None), ("arena", None),
])
def test_source_prefixes(source, prefix):
    assert source_prefix(source) == prefix


def test_both_response_sets_prefix_their_nodes(tmp_path):
    write_jsonl(tmp_path / GPT, [pair("p1", "mmlu-pro-law", original_id=1420), pair("p2", "livecodebench", "B>A"),
                           pair("p3", "livebench-math", "A=B"), pair("p4", "arena")])
    write_jsonl(tmp_path / CLAUDE, [pair("p1", "livebench-reasoning", model="claude-3-5-sonnet-20240620")])
    (tmp_path / "outputs").mkdir()
    write_jsonl(tmp_path / "outputs" / (GPT[:-6] + ",judge_name=arena_hard,judge_model=o1-mini.jsonl"), [pair("z", "arena")])
    source, entries = load(tmp_path)
    items = [e for e in entries if not isinstance(e, ItemProblem)]
    assert [i.node for i in items] == ["claude-3-5-sonnet-20240620/livebench-reasoning/p1",
                                       "gpt-4o-2024-05-13/mmlu-pro/p1", "gpt-4o-2024-05-13/livecodebench/p2"]
    assert [i.id for i in items] == ["p1", "p1", "p2"]  # the pair_id, as the issue asks
    assert [i.group for i in items] == ["claude-3-5-sonnet-20240620", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"]
    assert all(isinstance(i, JudgedItem) for i in items)
    assert items[2].label == "B>A" and items[2].response_a == "A p2" and items[2].subset == "livecodebench"
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [p.field for p in problems] == ["label", "source"]
    assert len({p.index for p in problems}) == 2
    assert sorted(u["part"] for u in source.used) == sorted(MODELS.values())


def test_one_response_set_keeps_short_nodes(tmp_path):
    write_jsonl(tmp_path / GPT, [pair("p1", "mmlu-pro-law"), pair("p1", "mmlu-pro-law")])
    _, entries = load(tmp_path)
    assert entries[0].node == "mmlu-pro/p1"
    assert isinstance(entries[1], ItemProblem) and entries[1].field == "pair_id"


def test_no_files_names_the_expected_ones(tmp_path):
    write_jsonl(tmp_path / "judgebench.jsonl", [pair("p1", "livecodebench")])
    with pytest.raises(SuiteDataError, match="response_model=gpt-4o-2024-05-13.jsonl"):
        load(tmp_path)


def test_hub_set_missing_from_the_cache_is_not_run(monkeypatch):
    def hub(self, dataset, config=None, split=None, part=None):
        if split == "claude":
            raise SuiteDataError("dataset 'ScalerLab/JudgeBench' is not in the local cache")
        return Rows.from_list([pair("p1", "livebench-math")])

    monkeypatch.setattr(DataSource, "hub", hub)
    source = DataSource(suite="judgebench")
    (item,) = JUDGEBENCH.load(source)
    assert item.node == "livebench-math/p1" and item.source == "ScalerLab/JudgeBench:gpt#0"
    assert [n["part"] for n in source.not_run] == ["claude"]

    def no_hub(self, *args, **kwargs):
        raise SuiteDataError("nothing cached")

    monkeypatch.setattr(DataSource, "hub", no_hub)
    with pytest.raises(SuiteDataError, match="nothing cached"):
        list(JUDGEBENCH.load(DataSource(suite="judgebench")))


def judged(label="A>B", n=1):
    return JudgedItem(id=str(n), subset="mmlu-pro", question="q", response_a=f"a{n}", response_b=f"b{n}", label=label,
                      group="gpt")


PAIRWISE = Rules(pairwise=True)


@pytest.mark.parametrize("label, first, second, correct", [
    # first: the judge on (A, B); second: on (B, A), whose verdict is flipped back
    ("A>B", 1.0, -1.0, True),    # both orders right
    ("A>B", 1.0, 1.0, False),    # inconsistent (position bias): +1 - 1 = 0
    ("A>B", 1.0, 0.0, True),     # one right, one tie
    ("A>B", 0.0, -2.0, True),    # a tie, then right
    ("A>B", 0.0, 0.0, False),    # both ties
    ("A>B", -1.0, 0.0, False),   # one wrong, one tie
    ("B>A", -1.0, 1.0, True),
    ("B>A", 1.0, -1.0, False),
])
def test_counter_rule_for_a_pairwise_judge(label, first, second, correct):
    result = scored(judged(label), [first, second], PAIRWISE)
    assert result.outcome == ("correct" if correct else "incorrect")


@pytest.mark.parametrize("label, a, b, correct", [
    ("A>B", 2.0, 1.0, True), ("B>A", 1.0, 2.0, True), ("A>B", 1.0, 2.0, False),
    ("B>A", 1.0, 1.0, True),   # equal scores read B>A
    ("A>B", 1.0, 1.0, False),
])
def test_scalar_rule_reads_anything_but_a_above_b_as_b(label, a, b, correct):
    result = scored(judged(label), [a, b])
    assert result.outcome == ("correct" if correct else "incorrect")
    assert result.details["verdict"] == ("A>B" if a > b else "B>A")


def test_score_by_source_and_by_set():
    results = [
        scored(judged("A>B", 1), [1.0, -1.0], PAIRWISE),   # right
        scored(judged("A>B", 2), [1.0, 1.0], PAIRWISE),    # inconsistent: wrong
        SuiteResult("3", "livecodebench", "correct", 1.0, {}, "gpt"),
        SuiteResult("1", "livecodebench", "incorrect", 0.0, {}, "claude"),
        SuiteResult("2", "livebench-math", "error", None, {}, "claude"),
        SuiteResult(None, "(invalid)", "error", None, {}),  # how the plugin reports an error item
    ]
    scores = JUDGEBENCH.score(results)
    assert scores["overall"] == pytest.approx(2 / 4)
    assert scores["sources"] == {"mmlu-pro": 0.5, "livecodebench": 0.5}
    assert scores["sets"]["gpt"] == {"overall": pytest.approx(2 / 3), "sources": {"mmlu-pro": 0.5, "livecodebench": 1.0}}
    assert scores["sets"]["claude"] == {"overall": 0.0, "sources": {"livecodebench": 0.0}}
    assert set(scores["sets"]) == {"gpt", "claude"}
    assert scores["errors"] == 2
    assert JUDGEBENCH.score([]) is None
