"""RewardMATH as a suite: solutions grouped into problems, strict accuracy, ties and MRR."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import BestOfNItem, ItemProblem
from pytest_rmbench.suites import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.rewardmath import REWARDMATH

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import scored, write_json, write_jsonl, write_parquet  # noqa: E402


def solution(problem_id, sid, kind, steps=None, subject="Algebra"):
    return {"problem": f"problem {problem_id}", "answer": "1", "level": 1, "subject": subject,
            "eval_solution": steps or [f"step one of {sid}", f"step two of {sid}"],
            "solution_reference": "human_to_GPT-4" if kind == "chosen" else "some-model",
            "solution_type": kind, "problem_id": problem_id, "id": sid}


def load(tmp_path):
    source = DataSource(suite="rewardmath", data_dir=str(tmp_path))
    return source, list(REWARDMATH.load(source))


def test_rows_group_into_one_strict_item_per_problem(tmp_path):
    rows = [
        solution(0, 0, "chosen"), solution(0, 1, "rejected"), solution(0, 2, "rejected"),
        solution(1, 10, "rejected"), solution(1, 11, "rejected"),              # no chosen solution
        solution(2, 20, "chosen"), solution(2, 21, "maybe"),                    # a bad row spoils its problem
        {**solution(3, 30, "chosen"), "problem_id": None},                      # no problem to join
        solution(4, 40, "chosen", subject="Counting & Probability"),            # its rejected rows are in a shard
    ]
    write_json(tmp_path / "RewardMATH_direct.json", rows)
    write_json(tmp_path / "RewardMATH_pairwise.json", [{"eval_solution_A": ["x"]}])
    write_parquet(tmp_path / "test-00000-of-00001.parquet", [solution(4, 41, "rejected", subject="Counting & Probability")])
    source, entries = load(tmp_path)

    items = [e for e in entries if not isinstance(e, ItemProblem)]
    assert [i.node for i in items] == ["algebra/0", "counting-probability/4"]
    first, shard = items
    assert isinstance(first, BestOfNItem) and first.rule == "strict" and first.id == "0"
    assert first.prompt == "problem 0" and first.subset == "Algebra"
    assert first.chosen == ("step one of 0\nstep two of 0",)
    assert first.rejected == ("step one of 1\nstep two of 1", "step one of 2\nstep two of 2")
    assert shard.rejected == ("step one of 41\nstep two of 41",) and shard.subset == "Counting & Probability"

    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(p.field, p.id) for p in problems] == [("solution_type", "1"), ("solution_type", "2"), ("problem_id", "30")]
    assert "problem 1" in problems[0].message and "0 chosen" in problems[0].message
    assert "'maybe'" in problems[1].message
    assert len({p.index for p in problems}) == 3
    assert [e.order if not isinstance(e, ItemProblem) else e.index for e in entries] == [0, 3, 5, 7, 8]
    assert sorted(u["name"] for u in source.used) == ["RewardMATH_direct.json", "test-00000-of-00001.parquet"]


def test_two_copies_of_the_rows_are_an_error_not_a_double_count(tmp_path):
    rows = [solution(0, 0, "chosen"), solution(0, 1, "rejected")]
    write_json(tmp_path / "RewardMATH_direct.json", rows)
    write_jsonl(tmp_path / "rewardmath.jsonl", rows)
    _, (entry,) = load(tmp_path)
    assert isinstance(entry, ItemProblem) and entry.field == "id" and "twice" in entry.message


def test_no_files_is_a_data_error(tmp_path):
    write_json(tmp_path / "test.json", [{"id": 1, "prompt": "p"}])
    with pytest.raises(SuiteDataError, match="RewardMATH"):
        load(tmp_path)


def test_hub_reads_every_split(monkeypatch):
    calls = []

    def hub(self, dataset, config=None, split=None, part=None):
        calls.append((dataset, split))
        return Rows.from_list([solution(7, 70, "chosen"), solution(7, 71, "rejected")])

    monkeypatch.setattr(DataSource, "hub", hub)
    (item,) = REWARDMATH.load(DataSource(suite="rewardmath"))
    assert calls == [("RewardMATH/RewardMATH", None)] and item.source == "RewardMATH/RewardMATH#0"


def result_of(problem_id, chosen_score, rejected_scores, subject="Algebra"):
    item = BestOfNItem(id=str(problem_id), subset=subject, prompt=f"p{problem_id}", chosen=("right",),
                       rejected=tuple(f"wrong {i}" for i in range(len(rejected_scores))), rule="strict")
    return scored(item, [chosen_score, *rejected_scores])


def test_accuracy_ties_and_mrr_by_hand():
    tied_below = result_of(1, 5, [5, 7, 1])   # 7 above, 5 tied (ranked above the chosen): rank 3
    tied_top = result_of(2, 5, [5, 1, 0])     # tie at the top: wrong, right with ties, rank 2
    clear = result_of(3, 9, [1, 2, 3], subject="Geometry")  # rank 1
    assert [r.details["reciprocal_rank"] for r in (tied_below, tied_top, clear)] == [1 / 3, 1 / 2, 1.0]
    assert [r.outcome for r in (tied_below, tied_top, clear)] == ["incorrect", "incorrect", "correct"]
    errored = SuiteResult("4", "Algebra", "error", None, {})
    bad_row = SuiteResult(None, "(invalid)", "error", None, {})
    scores = REWARDMATH.score([tied_below, tied_top, clear, errored, bad_row])
    assert scores["accuracy"] == pytest.approx(1 / 3)
    assert scores["accuracy_with_ties"] == pytest.approx(2 / 3)
    assert scores["mrr"] == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)
    assert scores["subjects"] == {"Algebra": 0.0, "Geometry": 1.0}
    assert scores["errors"] == 2
    assert REWARDMATH.score([]) is None
