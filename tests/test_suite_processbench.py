"""ProcessBench as a suite: one steps item per row, absent splits, and F1 per split."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, Rules, StepsItem
from pytest_rmbench.suites import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.processbench import PROCESSBENCH, f1

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import scored, write_json, write_jsonl  # noqa: E402


def row(id, label, steps=3):
    return {"id": id, "generator": "m", "problem": f"problem {id}", "steps": [f"step {i} of {id}" for i in range(steps)],
            "final_answer_correct": label == -1, "label": label}


def load(tmp_path):
    source = DataSource(suite="processbench", data_dir=str(tmp_path))
    return source, list(PROCESSBENCH.load(source))


def test_split_files_give_one_item_per_row(tmp_path):
    write_json(tmp_path / "gsm8k.json", [row("gsm8k-0", 1), row("gsm8k-1", -1), row("gsm8k-2", 3),
                                         row("gsm8k-3", True), {**row("gsm8k-4", 0), "steps": []}])
    write_jsonl(tmp_path / "math.jsonl", [row("math-0", 2)])
    write_json(tmp_path / "olympiadbench.json", [{"question": "another benchmark's file"}])
    write_json(tmp_path / "math_filtered.json", [row("x", 0)])  # not a ProcessBench name
    source, entries = load(tmp_path)
    items = [e for e in entries if not isinstance(e, ItemProblem)]
    assert [i.node for i in items] == ["gsm8k/gsm8k-0", "gsm8k/gsm8k-1", "math/math-0"]
    assert all(isinstance(i, StepsItem) for i in items)
    assert items[0].steps == ("step 0 of gsm8k-0", "step 1 of gsm8k-0", "step 2 of gsm8k-0") and items[0].label == 1
    assert items[2].subset == "math" and items[2].source == "math.jsonl#0" and items[2].order == 5
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(p.field, p.index) for p in problems] == [("label", 2), ("label", 3), ("steps", 4)]
    assert {n["part"] for n in source.not_run} == {"olympiadbench", "omnimath"}
    assert [u["part"] for u in source.used] == ["gsm8k", "math"]


def test_no_split_file_is_a_data_error(tmp_path):
    write_json(tmp_path / "math.json", [{"question": "q", "answer": "a"}])
    with pytest.raises(SuiteDataError) as info:
        load(tmp_path)
    assert "gsm8k.json" in str(info.value) and "math.json (columns" in str(info.value)


def test_hub_split_missing_from_the_cache_is_not_run(monkeypatch):
    def hub(self, dataset, config=None, split=None, part=None):
        if split != "gsm8k":
            raise SuiteDataError(f"split {split} not cached")
        return Rows.from_list([row("gsm8k-0", -1)])

    monkeypatch.setattr(DataSource, "hub", hub)
    source = DataSource(suite="processbench")
    (item,) = PROCESSBENCH.load(source)
    assert item.source == "Qwen/ProcessBench:gsm8k#0"
    assert [n["part"] for n in source.not_run] == ["math", "olympiadbench", "omnimath"]


def result_of(split, n, label, step_scores):
    rules = Rules(step_threshold=0.5)
    item = StepsItem(id=f"{split}/{n}", subset=split, problem=f"p{n}", steps=tuple(f"s{i}" for i in range(len(step_scores))),
                     label=label)
    return scored(item, [tuple(step_scores)], rules)


def test_f1_per_split_by_hand():
    results = [
        # gsm8k: erroneous rows 1 of 2 found exactly, correct rows 2 of 2 -> F1 = 2 * .5 * 1 / 1.5
        result_of("gsm8k", 0, 1, [0.9, 0.2, 0.1]),    # first step under 0.5 is step 1: right
        result_of("gsm8k", 1, 2, [0.9, 0.2, 0.1]),    # predicted 1, label 2: wrong
        result_of("gsm8k", 2, -1, [0.9, 0.8, 0.7]),   # no step under 0.5: -1, right
        result_of("gsm8k", 3, -1, [0.5, 0.5, 0.5]),   # 0.5 is not under the threshold: right
        # olympiadbench: both kinds present, both wrong -> F1 0 (not a division by zero)
        result_of("olympiadbench", 0, 0, [0.9, 0.9]),
        result_of("olympiadbench", 1, -1, [0.1, 0.9]),
        # math: no row without an error -> no acc_correct, no F1
        result_of("math", 0, 0, [0.1, 0.9]),
        SuiteResult("math/1", "math", "error", None, {}),
        SuiteResult(None, "(invalid)", "error", None, {}),  # how the plugin reports an error item
    ]
    assert [r.outcome for r in results[:4]] == ["correct", "incorrect", "correct", "correct"]
    scores = PROCESSBENCH.score(results)
    assert scores["splits"]["gsm8k"] == {"acc_error": 0.5, "acc_correct": 1.0, "f1": pytest.approx(2 / 3)}
    assert scores["splits"]["olympiadbench"] == {"acc_error": 0.0, "acc_correct": 0.0, "f1": 0.0}
    assert scores["splits"]["math"] == {"acc_error": 1.0, "acc_correct": None, "f1": None}
    assert list(scores["splits"]) == ["gsm8k", "math", "olympiadbench"]
    assert scores["average_f1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert scores["errors"] == 2
    assert PROCESSBENCH.score([]) is None


def test_f1_formula():
    assert f1(0.5, 1.0) == pytest.approx(2 / 3)
    assert f1(0.0, 0.0) == 0.0
    assert f1(None, 1.0) is None
