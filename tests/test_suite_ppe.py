"""PPE suites: human preference pairs with ties dropped, and best-of-K correctness with fractional credit."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import BestOfNItem, ItemProblem, PairItem
from pytest_rmbench.suites.base import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.ppe import PPE_BESTOFK, PPE_HUMAN

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import scored, write_jsonl, write_parquet  # noqa: E402


def battle(qid, winner, language="English"):
    return {"question_id": qid, "prompt": f"prompt {qid}", "response_1": f"A{qid}", "response_2": f"B{qid}",
            "model_a": "ma", "model_b": "mb", "winner": winner, "language": language}


def test_human_pairs_follow_the_winner_and_ties_are_dropped(tmp_path):
    write_parquet(tmp_path / "PPE-Human-Preference-V1" / "data" / "test-00000-of-00001.parquet", [
        battle("q1", "model_a"), battle("q2", "model_b", "Chinese"), battle("q3", "tie"),
        battle("q4", "tie (bothbad)"), battle("q5", "model_c"), battle("q1", "model_b"),
    ])
    write_parquet(tmp_path / "other" / "test-00000-of-00001.parquet", [battle("x", "model_a")])
    source = DataSource(suite="ppe-human", data_dir=str(tmp_path))
    entries = list(PPE_HUMAN.load(source))
    items = [e for e in entries if isinstance(e, PairItem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(e.id, e.subset, e.chosen, e.rejected) for e in items] == [
        ("q1", "English", "Aq1", "Bq1"), ("q2", "Chinese", "Bq2", "Aq2"), ("q1-row5", "English", "Bq1", "Aq1")]
    assert items[0].node == "English/q1" and items[0].prompt == "prompt q1"
    assert [(p.field, p.id) for p in problems] == [("winner", "q5")]
    assert "row 4" in problems[0].path and "model_c" in problems[0].message
    assert len(source.used) == 1


def test_human_subset_defaults_to_human_and_missing_columns_fail(tmp_path):
    rows = [{k: v for k, v in battle("q1", "model_b").items() if k != "language"}]
    write_jsonl(tmp_path / "ppe-human.jsonl", rows)
    entries = list(PPE_HUMAN.load(DataSource(suite="ppe-human", data_dir=str(tmp_path))))
    assert [(e.subset, e.node, e.chosen) for e in entries] == [("human", "human/q1", "Bq1")]
    write_jsonl(tmp_path / "ppe-human.jsonl", [{"prompt": "p", "response_1": "a", "response_2": "b"}])
    with pytest.raises(SuiteDataError, match="'winner'"):
        list(PPE_HUMAN.load(DataSource(suite="ppe-human", data_dir=str(tmp_path))))


def test_human_nothing_found(tmp_path):
    write_jsonl(tmp_path / "data" / "test.jsonl", [battle("q1", "model_a")])
    with pytest.raises(SuiteDataError) as err:
        list(PPE_HUMAN.load(DataSource(suite="ppe-human", data_dir=str(tmp_path))))
    assert str(tmp_path) in str(err.value) and "PPE-Human-Preference-V1" in str(err.value)


def bok(qid, scores, model="m1"):
    row = {"question_id": qid, "prompt": f"problem {qid}", "scores": scores, "model_name": model}
    row.update({f"response_{i + 1}": f"{qid}-r{i + 1}" for i in range(len(scores))})
    return row


def test_best_of_k_items(tmp_path):
    write_parquet(tmp_path / "PPE-MATH-Best-of-K" / "data" / "train-00000-of-00001.parquet", [
        bok("p1", [True, False, False, True]),
        bok("p2", [True, True, True, True]),      # cannot tell models apart: skipped
        bok("p3", [False, False, False, False]),  # idem
        bok("p4", [True, False, None, False]),
        bok("p1", [False, True, False, False], model="org/m2"),
    ])
    write_jsonl(tmp_path / "ppe-gpqa.jsonl", [bok("g1", [False, True])])
    write_jsonl(tmp_path / "math-00000-of-00001.jsonl", [bok("z", [True, False])])  # someone else's math split
    source = DataSource(suite="ppe-bestofk", data_dir=str(tmp_path))
    entries = list(PPE_BESTOFK.load(source))
    items = [e for e in entries if isinstance(e, BestOfNItem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(e.subset, e.id, e.node) for e in items] == [
        ("math", "p1-m1", "math/p1-m1"), ("math", "p1-org_m2", "math/p1-org_m2"), ("gpqa", "g1-m1", "gpqa/g1-m1")]
    first = items[0]
    assert first.rule == "fractional" and first.prompt == "problem p1"
    assert first.chosen == ("p1-r1", "p1-r4") and first.rejected == ("p1-r2", "p1-r3")
    assert [(p.field, p.index, p.id) for p in problems] == [("scores", 3, "p4")]
    assert sorted(n["part"] for n in source.not_run) == ["ifeval", "mbpp-plus", "mmlu-pro"]


def test_fractional_credit_is_the_expected_correctness_of_the_top_answer():
    item = BestOfNItem(id="x", subset="math", prompt="p", chosen=("c1", "c2"), rejected=("w1", "w2"))
    assert scored(item, [0.9, 0.1, 0.5, 0.2]).credit == 1.0       # a correct answer alone on top
    assert scored(item, [0.1, 0.2, 0.9, 0.3]).credit == 0.0       # a wrong answer alone on top
    assert scored(item, [0.9, 0.1, 0.9, 0.2]).credit == 0.5       # one correct, one wrong tied at the top
    assert scored(item, [0.9, 0.9, 0.9, 0.2]).credit == pytest.approx(2 / 3)


def test_best_of_k_options_and_columns(tmp_path):
    with pytest.raises(SuiteDataError) as err:
        list(PPE_BESTOFK.load(DataSource(suite="ppe-bestofk", data_dir=str(tmp_path), options={"sets": ["chess"]})))
    assert "'chess'" in str(err.value) and "mmlu-pro" in str(err.value)
    write_jsonl(tmp_path / "ppe-ifeval.jsonl", [{"prompt": "p", "response_1": "a", "scores": [True]}])
    with pytest.raises(SuiteDataError, match="response_1 .. response_K"):
        list(PPE_BESTOFK.load(DataSource(suite="ppe-bestofk", data_dir=str(tmp_path), options={"sets": ["ifeval"]})))


def test_best_of_k_hub_names():
    calls = []

    class Hub(DataSource):
        def hub(self, dataset, config=None, split=None, part=None):
            calls.append((dataset, split))
            return Rows.from_list([bok("q", [True, False])])

    entries = list(PPE_BESTOFK.load(Hub(suite="ppe-bestofk")))
    assert calls == [("lmarena-ai/PPE-MMLU-Pro-Best-of-K", "train"), ("lmarena-ai/PPE-MATH-Best-of-K", "train"),
                     ("lmarena-ai/PPE-GPQA-Best-of-K", "train"), ("lmarena-ai/PPE-IFEval-Best-of-K", "train"),
                     ("lmarena-ai/PPE-MBPP-Plus-Best-of-K", "train")]
    assert len({e.node for e in entries}) == 5


def test_scores():
    results = [SuiteResult("a", "math", "correct", 1.0), SuiteResult("b", "math", "incorrect", 0.5),
               SuiteResult("c", "gpqa", "incorrect", 0.0), SuiteResult("d", "gpqa", "error", None)]
    scores = PPE_BESTOFK.score(results)
    assert scores == {"accuracy": pytest.approx(0.5), "subsets": {"gpqa": 0.0, "math": 0.75}, "errors": 1}
    human = PPE_HUMAN.score([SuiteResult("a", "English", "correct", 1.0), SuiteResult("b", "Chinese", "incorrect", 0.0)])
    assert human["accuracy"] == 0.5 and human["subsets"] == {"Chinese": 0.0, "English": 1.0}
    assert PPE_HUMAN.score([]) is None and PPE_BESTOFK.score([]) is None
