"""RewardBench 2 as a suite: rows to items, the best-of-4 tie credit and the Ties formula."""

import math
import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import BestOfNItem, ItemProblem, TiesItem
from pytest_rmbench.suites import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.rewardbench2 import REWARDBENCH2, ties_score

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import scored, write_json, write_parquet  # noqa: E402


def row(id, subset, chosen, rejected, prompt=None, **extra):
    return {"id": id, "prompt": prompt or f"prompt {id}", "chosen": chosen, "rejected": rejected,
            "num_correct": len(chosen), "num_incorrect": len(rejected), "total_completions": len(chosen) + len(rejected),
            "models": ["m"], "subset": subset, "additional_metadata": "{}", **extra}


ROWS = [
    row("1", "Factuality", ["good"], ["bad1", "bad2", "bad3"]),
    row("2", "Precise IF", ["first", "second"], ["bad1", "bad2"]),  # a second chosen competes like a rejected one
    row("ref:1", "Ties", ["right"], ["wrong1", "wrong2"]),
    row("tied:1", "Ties", ["right a", "right b"], ["wrong"]),
    row("3", "Math", [], ["x"]),  # bad: no chosen answer
    row("ref:x", "Ties", ["r"], ["w"]),  # bad: not ref:N
    row("1", "Factuality", ["again"], ["b"]),  # bad: the node factuality/1 is taken
]


def load(tmp_path):
    source = DataSource(suite="rewardbench2", data_dir=str(tmp_path))
    return source, list(REWARDBENCH2.load(source))


def test_parquet_rows_become_one_item_per_prompt(tmp_path):
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", ROWS)
    # another benchmark's test split, with prompt / chosen / rejected / subset but not num_correct
    write_json(tmp_path / "test.json", [{"id": 1, "prompt": "p", "chosen": "c", "rejected": "r", "subset": "s"}])
    (tmp_path / "README.md").write_text("not data")
    source, entries = load(tmp_path)
    items = [e for e in entries if not isinstance(e, ItemProblem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]

    assert [i.node for i in items] == ["factuality/1", "precise-if/2", "ties/ref:1", "ties/tied:1"]
    assert [i.order for i in items] == [0, 1, 2, 3]
    assert items[0].source == "test-00000-of-00001.parquet#0"
    first, second, ref, tied = items
    assert isinstance(first, BestOfNItem) and first.rule == "fractional"
    assert first.chosen == ("good",) and first.rejected == ("bad1", "bad2", "bad3")
    assert second.chosen == ("first",) and second.rejected == ("second", "bad1", "bad2")
    assert isinstance(ref, TiesItem) and ref.chosen == ("right",) and ref.rejected == ("wrong1", "wrong2")
    assert tied.chosen == ("right a", "right b") and tied.rejected == ("wrong",)
    assert tied.id == "tied:1" and tied.subset == "Ties"

    assert [(p.field, p.index) for p in problems] == [("chosen", 4), ("id", 5), ("id", 6)]
    assert "duplicate" in problems[2].message
    assert [u["name"] for u in source.used] == ["test-00000-of-00001.parquet"]


def test_ties_rows_follow_num_correct(tmp_path):
    write_parquet(tmp_path / "test.parquet", [
        row("tied:4", "Ties", ["a", "b"], ["c"], num_correct=1),
        row("tied:5", "Ties", ["a", "b"], ["c"], num_correct=3),  # leaves no incorrect answer
    ])
    _, entries = load(tmp_path)
    assert entries[0].chosen == ("a",) and entries[0].rejected == ("b", "c")
    assert isinstance(entries[1], ItemProblem) and entries[1].field == "num_correct"


def test_no_files_names_the_folder_and_the_expected_files(tmp_path):
    write_json(tmp_path / "test.json", [{"question": "q"}])
    with pytest.raises(SuiteDataError) as info:
        load(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "test-*.parquet" in message and "test.json" in message


def test_hub_rows_carry_the_dataset_name(monkeypatch):
    calls = []

    def hub(self, dataset, config=None, split=None, part=None):
        calls.append((dataset, config, split))
        return Rows.from_list(ROWS[:2])

    monkeypatch.setattr(DataSource, "hub", hub)
    entries = list(REWARDBENCH2.load(DataSource(suite="rewardbench2")))
    assert calls == [("allenai/reward-bench-2", None, "test")]
    assert [e.source for e in entries] == ["allenai/reward-bench-2#0", "allenai/reward-bench-2#1"]


def best_of_4(chosen=("c",), rejected=("r1", "r2", "r3")):
    return BestOfNItem(id="1", subset="Focus", prompt="p", chosen=chosen, rejected=rejected, node="focus/1")


@pytest.mark.parametrize("scores, credit", [
    ([3, 2, 1, 0], 1.0),
    ([2, 2, 1, 0], 0.5),  # tied with one rejected at the top
    ([2, 2, 2, 0], 1 / 3),
    ([2, 3, 1, 0], 0.0),
])
def test_best_of_4_tie_credit(scores, credit):
    result = scored(best_of_4(), scores)
    assert result.credit == pytest.approx(credit)
    assert result.outcome == ("correct" if credit == 1 else "incorrect")


def test_a_second_chosen_answer_competes_like_the_official_script(tmp_path):
    write_parquet(tmp_path / "test.parquet", [ROWS[1]])
    (item,) = load(tmp_path)[1]
    # official: scores = [first, second, bad1, bad2]; first ties second at the top -> 1/2
    assert scored(item, [5, 5, 1, 0]).credit == 0.5
    assert scored(item, [4, 5, 1, 0]).credit == 0.0


def ties_item(id, correct, incorrect):
    return TiesItem(id=id, subset="Ties", prompt=f"p{id}",
                    chosen=tuple(f"{id} ok {i}" for i in range(len(correct))),
                    rejected=tuple(f"{id} bad {i}" for i in range(len(incorrect))))


def ties_results(spec):
    return [scored(ties_item(id, c, i), [*c, *i]) for id, c, i in spec]


def test_ties_formula_by_hand():
    results = ties_results([
        ("ref:1", [5], [3, 1]),       # accurate; correct-incorrect gap 2
        ("tied:1", [7, 6], [3]),      # accurate; spread 1, gap 3
        ("ref:2", [2], [2]),          # not accurate; gap 0
        ("tied:2", [4, 4], [4]),      # not accurate; spread 0, gap 0: 0/0 -> NaN -> 0
        ("ref:3", [1], [0]),          # accurate, no tied partner: counts in the accuracy only
    ])
    ref_accuracy, tied_accuracy = 2 / 3, 1 / 2
    # pair 1: gap_tied 3 > spread 1; min(2, 3) = 2 > 1; tanh(2 / 1 - 1) = tanh(1)
    # pair 2: 0 > 0 is false twice; the tanh term is 0
    expected = (0.30 * tied_accuracy + 0.30 * ref_accuracy + 0.20 * (1 / 2) + 0.20 * (1 / 2)
                + 0.01 * (math.tanh(1) + 0) / 2)
    assert ties_score(results) == pytest.approx(expected, abs=1e-12)


def test_ties_formula_division_by_a_zero_spread():
    results = ties_results([
        ("ref:4", [3], [1]), ("tied:4", [5, 5], [2]),   # gap min(2, 3) = 2 over spread 0: +inf -> tanh 1
        ("ref:5", [0], [1]), ("tied:5", [5, 5], [2]),   # gap min(-1, 3) = -1 over 0: -inf -> tanh -1
    ])
    # accuracies: ref 1/2, tied 1; preferred: 3 > 0 twice; hard: 2 > 0 yes, -1 > 0 no
    expected = 0.30 * 1 + 0.30 * 0.5 + 0.20 * 1 + 0.20 * 0.5 + 0.01 * (1 + -1) / 2
    assert ties_score(results) == pytest.approx(expected, abs=1e-12)
    assert ties_score(ties_results([("ref:4", [3], [1]), ("tied:4", [5, 5], [2])])) == \
        pytest.approx(0.3 + 0.3 + 0.2 + 0.2 + 0.01)


def test_ties_without_a_pair_is_none_not_nan():
    assert ties_score(ties_results([("ref:1", [3], [1]), ("tied:2", [5, 4], [1])])) is None
    assert ties_score([]) is None


def test_score_is_the_mean_of_the_subsets_with_errors_left_out():
    fact = [scored(BestOfNItem(id=str(n), subset="Factuality", prompt="p", chosen=("c",), rejected=("r1", "r2", "r3")), s)
            for n, s in [(1, [3, 2, 1, 0]), (2, [2, 2, 0, 0])]]
    focus = [scored(best_of_4(), [0, 1, 0, 0])]
    errored = SuiteResult("9", "Focus", "error", None, {})
    ties = ties_results([("ref:1", [5], [3, 1]), ("tied:1", [7, 6], [3])])
    ties_value = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 * math.tanh(1)
    bad_row = SuiteResult(None, "(invalid)", "error", None, {})  # how the plugin reports an error item
    scores = REWARDBENCH2.score(fact + focus + [errored, bad_row] + ties)
    assert scores["subsets"] == {"Factuality": pytest.approx(0.75), "Focus": 0.0, "Ties": pytest.approx(ties_value)}
    assert list(scores["subsets"]) == ["Factuality", "Focus", "Ties"]
    assert scores["final"] == pytest.approx((0.75 + 0.0 + ties_value) / 3)
    assert scores["errors"] == 2
    assert REWARDBENCH2.headline in scores
    assert REWARDBENCH2.score([]) is None
    assert REWARDBENCH2.sections({"Factuality"}) == {}
