"""--rm-dataset: any preference dataset, mapped with --rm-columns, string or chat-message columns."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.suites.base import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.dataset import DatasetSuite, parse_columns, suite_name_for

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import write_jsonl, write_parquet  # noqa: E402


def load(suite, data_dir=None):
    source = DataSource(suite=suite.name, data_dir=data_dir)
    return list(suite.load(source)), source


def msg(role, content):
    return {"role": role, "content": content}


def test_parse_columns():
    assert parse_columns("prompt=question, chosen=good,rejected=bad,subset=category,id=uid") == {
        "prompt": "question", "chosen": "good", "rejected": "bad", "subset": "category", "id": "uid"}
    assert parse_columns("") == {} and parse_columns(" , ") == {}
    with pytest.raises(ValueError) as err:
        parse_columns("prompt=q,answer=a")
    assert "'answer'" in str(err.value) and "prompt, chosen, rejected, subset, id" in str(err.value)
    with pytest.raises(ValueError, match="KEY=COLUMN"):
        parse_columns("prompt")
    with pytest.raises(ValueError, match="KEY=COLUMN"):
        parse_columns("prompt=")
    with pytest.raises(ValueError, match="twice"):
        parse_columns("prompt=a,prompt=b")


def test_suite_names(tmp_path):
    assert suite_name_for("Anthropic/hh-rlhf") == "hh-rlhf"
    assert suite_name_for("imdb") == "imdb"
    path = tmp_path / "my-prefs.jsonl.gz"
    path.write_bytes(b"")
    assert suite_name_for(str(path)) == "my-prefs"
    (tmp_path / "folder").mkdir()
    assert suite_name_for(str(tmp_path / "folder") + "/") == "folder"
    assert DatasetSuite.for_target(str(path), {}).name == "my-prefs"


def test_mapped_columns_from_a_file(tmp_path):
    path = tmp_path / "prefs.jsonl"
    write_jsonl(path, [
        {"question": "Q1", "good": "a", "bad": "b", "category": "math", "uid": "u1"},
        {"question": "Q2", "good": None, "bad": "b", "category": "math", "uid": "u2"},
        {"question": [msg("user", "hi"), msg("assistant", "hello"), msg("user", "more")], "good": "c", "bad": "d",
         "category": "chat", "uid": "u3"},
        {"question": "Q4", "good": "a", "bad": "b", "category": "math", "uid": "u1"},
    ])
    suite = DatasetSuite.for_target(str(path), parse_columns("prompt=question,chosen=good,rejected=bad,subset=category,id=uid"))
    entries, source = load(suite)
    items = [e for e in entries if isinstance(e, PairItem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(e.id, e.subset, e.node) for e in items] == [("u1", "math", "math/u1"), ("u3", "chat", "chat/u3")]
    assert items[0].prompt == "Q1" and (items[0].chosen, items[0].rejected) == ("a", "b")
    assert items[1].prompt == (("user", "hi"), ("assistant", "hello"), ("user", "more"))
    assert [(p.field, p.index, p.id) for p in problems] == [("good", 1, "u2"), ("uid", 3, "u1")]
    assert "prefs.jsonl row 1" in problems[0].path
    assert source.used[0]["name"] == "prefs.jsonl"


def test_defaults_subset_and_row_index(tmp_path):
    path = tmp_path / "plain.parquet"
    write_parquet(path, [{"prompt": "p1", "chosen": "a", "rejected": "b"}, {"prompt": "p2", "chosen": "c", "rejected": "d"}])
    entries, _ = load(DatasetSuite.for_target(str(path)))
    assert [(e.id, e.subset, e.node, e.order) for e in entries] == [("0", "default", "default/0", 0),
                                                                   ("1", "default", "default/1", 1)]


def test_conversations_without_a_prompt_column(tmp_path):
    path = tmp_path / "convs.jsonl"
    shared = [msg("user", "Hi"), msg("assistant", "Hello"), msg("user", "Joke?")]
    write_jsonl(path, [
        {"chosen": shared + [msg("assistant", "Knock knock")], "rejected": shared + [msg("assistant", "No")]},
        {"chosen": [msg("user", "Q")] + [msg("assistant", "A")], "rejected": [msg("user", "other")] + [msg("assistant", "B")]},
        {"chosen": [msg("user", "Q"), msg("user", "Q again")], "rejected": [msg("user", "Q"), msg("assistant", "B")]},
        {"chosen": [{"from": "human", "value": "S?"}, {"from": "gpt", "value": "yes"}],
         "rejected": [{"from": "human", "value": "S?"}, {"from": "gpt", "value": "no"}]},
    ])
    entries, _ = load(DatasetSuite.for_target(str(path)))
    first, last = entries[0], entries[3]
    assert isinstance(first, PairItem) and first.prompt == (("user", "Hi"), ("assistant", "Hello"), ("user", "Joke?"))
    assert (first.chosen, first.rejected) == ("Knock knock", "No")
    assert (entries[1].field, entries[2].field) == ("rejected", "chosen")
    assert "differ before the final answer" in entries[1].message
    assert "end with the assistant" in entries[2].message
    assert (last.prompt, last.chosen, last.rejected) == ("S?", "yes", "no")


def test_prompt_column_wins_over_the_conversation(tmp_path):
    path = tmp_path / "ultra.jsonl"
    write_jsonl(path, [{"prompt": "What?", "chosen": [msg("user", "What?"), msg("assistant", "This")],
                        "rejected": [msg("user", "What?"), msg("assistant", "That")], "score_chosen": 8}])
    (item,) = load(DatasetSuite.for_target(str(path)))[0]
    assert (item.prompt, item.chosen, item.rejected) == ("What?", "This", "That")


def test_missing_columns_list_found_and_expected(tmp_path):
    path = tmp_path / "odd.jsonl"
    write_jsonl(path, [{"question": "q", "good": "a", "bad": "b"}])
    with pytest.raises(SuiteDataError) as err:
        load(DatasetSuite.for_target(str(path), parse_columns("prompt=question,chosen=good,rejected=worse")))
    message = str(err.value)
    assert "'worse'" in message and "'bad'" in message and "prompt='question'" in message and "rejected='worse'" in message
    with pytest.raises(SuiteDataError) as err:  # string answers need a prompt column
        load(DatasetSuite.for_target(str(path), parse_columns("chosen=good,rejected=bad")))
    assert "'prompt'" in str(err.value)


def test_folder_with_a_split(tmp_path):
    folder = tmp_path / "snapshot"
    write_parquet(folder / "data" / "test-00000-of-00001.parquet", [{"prompt": "t", "chosen": "a", "rejected": "b"}])
    write_parquet(folder / "data" / "train-00000-of-00001.parquet", [{"prompt": "x", "chosen": "a", "rejected": "b"}] * 3)
    (folder / "README.md").write_text("card")
    entries, source = load(DatasetSuite.for_target(str(folder), split="test"))
    assert [e.prompt for e in entries] == ["t"] and len(source.used) == 1
    entries, _ = load(DatasetSuite.for_target(str(folder)))
    assert [e.id for e in entries] == ["0", "1", "2", "3"]  # positions count across the files
    with pytest.raises(SuiteDataError, match="split 'validation'"):
        load(DatasetSuite.for_target(str(folder), split="validation"))


def test_missing_local_path_and_hub(tmp_path):
    with pytest.raises(SuiteDataError, match="no such file"):
        load(DatasetSuite.for_target(str(tmp_path / "nope.jsonl")))
    calls = []

    class Hub(DataSource):
        def hub(self, dataset, config=None, split=None, part=None):
            calls.append((dataset, config, split))
            return Rows.from_list([{"prompt": "p", "chosen": "a", "rejected": "b"}])

    suite = DatasetSuite.for_target("org/prefs", {}, split="test", config="en")
    entries = list(suite.load(Hub(suite=suite.name)))
    assert calls == [("org/prefs", "en", "test")] and suite.name == "prefs" and len(entries) == 1


def test_relative_path_under_the_data_dir(tmp_path):
    write_jsonl(tmp_path / "sets" / "mine.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    entries, _ = load(DatasetSuite.for_target("sets/mine.jsonl"), data_dir=str(tmp_path))
    assert [e.node for e in entries] == ["default/0"]


def test_score():
    suite = DatasetSuite.for_target("org/prefs")
    results = [SuiteResult("0", "a", "correct", 1.0), SuiteResult("1", "a", "incorrect", 0.0),
               SuiteResult("2", "b", "correct", 1.0), SuiteResult("3", "b", "error", None)]
    assert suite.score(results) == {"overall": pytest.approx(2 / 3), "subsets": {"a": 0.5, "b": 1.0}, "errors": 1}
    assert suite.score([]) is None and suite.sections({"a"}) == {}
