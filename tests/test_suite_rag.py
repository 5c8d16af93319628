"""RAG-RewardBench suite: validated field names, prompts built from references and question."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.suites.base import DataSource, Rows, SuiteDataError
from pytest_rmbench.suites.ragrewardbench import RAG_REWARDBENCH, build_prompt

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import result, write_json, write_jsonl  # noqa: E402


def row(id, question="Who wrote Hamlet?", refs="[1] Hamlet is a play by Shakespeare.", **extra):
    return {"id": id, "subset": "whatever", "prompt": refs, "question": question, "chosen": "Shakespeare [1].",
            "reject": "Marlowe.", "chosen_model": "a", "reject_model": "b", **extra}


def load(tmp_path):
    source = DataSource(suite="rag-rewardbench", data_dir=str(tmp_path))
    return list(RAG_REWARDBENCH.load(source)), source


def test_local_files_name_the_subsets(tmp_path):
    write_jsonl(tmp_path / "Dataset" / "reason.jsonl", [row(1), row(2, refs="Q: Who wrote Hamlet?\nDocs: ...")])
    citation = {k: v for k, v in row(1).items() if k != "reject"}
    citation["rejected"] = "Bacon."
    write_json(tmp_path / "Dataset" / "citation.json", [citation])
    write_jsonl(tmp_path / "Dataset" / "notes.jsonl", [{"x": 1}])
    entries, source = load(tmp_path)
    assert all(isinstance(e, PairItem) for e in entries)
    assert [(e.subset, e.id, e.node) for e in entries] == [
        ("reason", "1", "reason/1"), ("reason", "2", "reason/2"), ("citation", "1", "citation/1")]
    assert entries[0].prompt == "[1] Hamlet is a play by Shakespeare.\n\nQuestion: Who wrote Hamlet?"
    assert entries[1].prompt == "Q: Who wrote Hamlet?\nDocs: ..."  # the question is there already
    assert (entries[0].chosen, entries[0].rejected, entries[2].rejected) == ("Shakespeare [1].", "Marlowe.", "Bacon.")
    assert sorted(n["part"] for n in source.not_run) == ["abstain", "conflict", "harmless", "helpful"]
    assert source.used[0]["fields"] == {"question": "question", "references": "prompt", "chosen": "chosen",
                                        "rejected": "reject"}
    assert source.used[1]["fields"]["rejected"] == "rejected"


def test_prompt_building():
    assert build_prompt("Q?", "refs") == "refs\n\nQuestion: Q?"
    assert build_prompt("Q?", None) == "Q?"
    assert build_prompt(None, "refs") == "refs"
    assert build_prompt("Q?", "see Q? below") == "see Q? below"


def test_reference_lists_are_numbered(tmp_path):
    write_jsonl(tmp_path / "conflict.jsonl", [
        {**row(1), "prompt": ["Doc one.", {"title": "T", "text": "Doc two."}]},
        {**row(2), "prompt": None, "question": "Just a question?"},
        {**row(3), "prompt": [1, 2]},
    ])
    entries, _ = load(tmp_path)
    assert entries[0].prompt == "[1] Doc one.\n\n[2] T\nDoc two.\n\nQuestion: Who wrote Hamlet?"
    assert entries[1].prompt == "Just a question?"
    assert isinstance(entries[2], ItemProblem) and entries[2].field == "prompt"


def test_missing_fields_are_named(tmp_path):
    write_jsonl(tmp_path / "helpful.jsonl", [{"id": 1, "question": "q", "chosen": "a", "worse": "b"}])
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path)
    message = str(err.value)
    assert "'reject' (or 'rejected')" in message and "'worse'" in message


def test_bad_rows_and_repeated_ids(tmp_path):
    write_jsonl(tmp_path / "abstain.jsonl", [row(1), {**row(2), "chosen": None}, row(1), {**row(3), "question": 5}])
    entries, _ = load(tmp_path)
    items = [e for e in entries if isinstance(e, PairItem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [e.node for e in items] == ["abstain/1", "abstain/1-row2"]
    assert [(p.field, p.id) for p in problems] == [("chosen", "2"), ("question", "3")]
    assert "row 1" in problems[0].path


def test_hub_subset_column_required():
    class Hub(DataSource):
        def __init__(self, rows):
            super().__init__(suite="rag-rewardbench")
            self.rows = rows

        def hub(self, dataset, config=None, split=None, part=None):
            assert (dataset, split) == ("jinzhuoran/RAG-RewardBench", "train")
            self.used.append({"name": dataset})
            return Rows.from_list(self.rows)

    entries = list(RAG_REWARDBENCH.load(Hub([{**row(1), "subset": "harmless"}, {**row(1), "subset": "reason"}])))
    assert [e.node for e in entries] == ["harmless/1", "reason/1"]
    no_subset = {k: v for k, v in row(1).items() if k != "subset"}
    with pytest.raises(SuiteDataError, match="subset"):
        list(RAG_REWARDBENCH.load(Hub([no_subset])))


def test_nothing_found(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path)
    assert str(tmp_path) in str(err.value) and "reason.jsonl" in str(err.value)


def test_score_overall_and_mean_of_subsets():
    spec = [("reason", 1), ("reason", 1), ("reason", 1), ("reason", 0), ("citation", 0), ("citation", None)]
    results = [result(i, s, ok) for i, (s, ok) in enumerate(spec)]
    scores = RAG_REWARDBENCH.score(results)
    assert scores["overall"] == pytest.approx(3 / 5)
    assert scores["subsets"] == {"citation": 0.0, "reason": 0.75}
    assert scores["mean_subsets"] == pytest.approx(0.375)
    assert scores["errors"] == 1
    assert RAG_REWARDBENCH.score([]) is None
