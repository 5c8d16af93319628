"""RewardBench v1 suite: loading from local files and the Hub, and the official weighting."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.suites.base import DataSource, Rows, SuiteDataError
from pytest_rmbench.suites.rewardbench import REWARDBENCH, SECTIONS, SUBSET_WEIGHTS

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import result, write_jsonl, write_parquet  # noqa: E402


def row(id, subset, prompt="Q?", chosen="good", rejected="bad"):
    return {"prompt": prompt, "chosen": chosen, "chosen_model": "m1", "rejected": rejected,
            "rejected_model": "m2", "subset": subset, "id": id}


def load(tmp_path, **options):
    source = DataSource(suite="rewardbench", data_dir=str(tmp_path), options=options)
    return list(REWARDBENCH.load(source)), source


def results(spec):
    """spec: {subset: [1, 0, None, ...]} (None: an error)."""
    return [result(f"{subset}-{i}", subset, o) for subset, outcomes in spec.items() for i, o in enumerate(outcomes)]


def test_load_filtered_parquet_ignores_raw_and_other_files(tmp_path):
    write_parquet(tmp_path / "data" / "filtered-00000-of-00001.parquet",
                  [row(1, "alpacaeval-easy", prompt="Hi?"), row(2, "math-prm"), row(3, "hep-go"), row(4, "new-thing")])
    write_parquet(tmp_path / "data" / "raw-00000-of-00001.parquet", [row(99, "alpacaeval-easy")])
    (tmp_path / "README.md").write_text("not data")
    write_jsonl(tmp_path / "other" / "unrelated.jsonl", [{"x": 1}])
    entries, source = load(tmp_path)
    assert all(isinstance(e, PairItem) for e in entries)
    assert [e.id for e in entries] == ["1", "2", "3", "4"]
    assert [e.node for e in entries] == ["chat/alpacaeval-easy/1", "reasoning/math-prm/2", "reasoning/hep-go/3",
                                         "new-thing/4"]
    first = entries[0]
    assert (first.subset, first.prompt, first.chosen, first.rejected) == ("alpacaeval-easy", "Hi?", "good", "bad")
    assert first.source.endswith("filtered-00000-of-00001.parquet#0") and first.order == 0 and entries[3].order == 3
    assert [u["name"] for u in source.used] == ["filtered-00000-of-00001.parquet"]
    assert source.not_run == []


def test_jsonl_copy_and_bad_rows_become_error_items(tmp_path):
    rows = [row(1, "donotanswer"), row(7, "donotanswer", chosen=None), row(8, "xstest-should-respond"),
            {**row(9, "donotanswer"), "id": None}, row(1, "donotanswer")]
    write_jsonl(tmp_path / "filtered.jsonl", rows)
    entries, _ = load(tmp_path)
    good = [e for e in entries if isinstance(e, PairItem)]
    bad = [e for e in entries if isinstance(e, ItemProblem)]
    assert [e.id for e in good] == ["1", "8"]
    assert [(p.field, p.id, p.index) for p in bad] == [("chosen", "7", 1), ("id", None, 3), ("id", "1", 4)]
    assert "row 1" in bad[0].path and "filtered.jsonl" in bad[0].path
    assert "duplicate" in bad[2].message


def test_column_mismatch_lists_found_and_expected(tmp_path):
    write_parquet(tmp_path / "data" / "filtered-00000-of-00001.parquet",
                  [{"prompt": "q", "chosen": "a", "rejected": "b", "id": 1, "category": "chat"}])
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path)
    message = str(err.value)
    assert "'subset'" in message and "'category'" in message and "expected" in message


def test_nothing_found_names_the_folder_and_the_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    write_jsonl(tmp_path / "train.jsonl", [row(1, "chat")])
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path)
    assert str(tmp_path) in str(err.value) and "filtered-*.parquet" in str(err.value)


def test_files_of_m_rewardbench_language_folders_are_not_read(tmp_path):
    write_jsonl(tmp_path / "arb_Arab" / "filtered.jsonl", [row(5, "alpacaeval-easy")])
    write_parquet(tmp_path / "reward-bench" / "data" / "filtered-00000-of-00001.parquet", [row(1, "alpacaeval-easy")])
    entries, _ = load(tmp_path)
    assert [e.id for e in entries] == ["1"]


def test_prior_sets_from_local_files(tmp_path):
    write_parquet(tmp_path / "data" / "filtered-00000-of-00001.parquet", [row(1, "alpacaeval-easy")])
    write_parquet(tmp_path / "data" / "anthropic_helpful-00000-of-00001.parquet",
                  [{"prompt": ["Hi", "Hello!", "Help me"], "chosen": "sure", "rejected": "no"},
                   {"prompt": ["Only one turn"], "chosen": "a", "rejected": "b"},
                   {"prompt": ["Hi", "Hello!"], "chosen": "a", "rejected": "b"}])
    write_jsonl(tmp_path / "shp.jsonl", [{"prompt": ["Why?"], "chosen": "because", "rejected": "dunno"}])
    write_jsonl(tmp_path / "summarize_prompted.jsonl", [{"prompt": ["x"], "chosen": "a", "rejected": "b"}])
    entries, source = load(tmp_path, prior_sets=True)
    items = [e for e in entries if isinstance(e, PairItem)]
    assert [(e.subset, e.node) for e in items] == [
        ("alpacaeval-easy", "chat/alpacaeval-easy/1"), ("anthropic_helpful", "prior-sets/anthropic_helpful/0"),
        ("anthropic_helpful", "prior-sets/anthropic_helpful/1"), ("shp", "prior-sets/shp/0")]
    assert items[1].prompt == (("user", "Hi"), ("assistant", "Hello!"), ("user", "Help me"))
    assert items[2].prompt == "Only one turn"
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(p.field, p.index) for p in problems] == [("prompt", 3)]  # ends with the assistant's turn
    assert sorted(n["part"] for n in source.not_run) == ["anthropic_hhh", "summarize"]
    # error tests of different parts must not share a name: the index counts across the suite
    assert problems[0].index not in {0, 1, 2}


def test_prior_sets_off_by_default(tmp_path):
    write_parquet(tmp_path / "data" / "filtered-00000-of-00001.parquet", [row(1, "alpacaeval-easy")])
    write_jsonl(tmp_path / "shp.jsonl", [{"prompt": ["Why?"], "chosen": "because", "rejected": "dunno"}])
    entries, source = load(tmp_path)
    assert [e.subset for e in entries] == ["alpacaeval-easy"] and source.not_run == []


class HubSource(DataSource):
    def __init__(self, tables, **kwargs):
        super().__init__(suite="rewardbench", **kwargs)
        self.tables, self.calls = tables, []

    def hub(self, dataset, config=None, split=None, part=None):
        self.calls.append((dataset, config, split))
        return Rows.from_list(self.tables[(dataset, split)])


def test_hub_reads_the_filtered_split_and_the_prior_sets():
    tables = {("allenai/reward-bench", "filtered"): [row(1, "hep-cpp")]}
    tables.update({("allenai/preference-test-sets", name): [{"prompt": ["q"], "chosen": "a", "rejected": "b"}]
                   for name in ("anthropic_helpful", "anthropic_hhh", "shp", "summarize")})
    source = HubSource(tables, options={"prior_sets": True})
    entries = list(REWARDBENCH.load(source))
    assert source.calls[0] == ("allenai/reward-bench", None, "filtered")
    assert [c[2] for c in source.calls[1:]] == ["anthropic_helpful", "anthropic_hhh", "shp", "summarize"]
    assert len({e.node for e in entries}) == 5


def test_sections_carry_the_official_weights():
    sections = REWARDBENCH.sections({"math-prm", "hep-go", "alpacaeval-easy", "new-thing"})
    assert set(sections) == {"Chat", "Reasoning"}
    assert sections["Reasoning"].weights == {"math-prm": 984.0, "hep-go": 164.0}
    assert sections["Chat"].weights == {"alpacaeval-easy": 100.0}
    assert set(REWARDBENCH.sections({"shp"})) == {"Prior Sets"}
    assert len(SUBSET_WEIGHTS) == 23 == sum(len(v) for v in SECTIONS.values())


def test_score_uses_the_per_subset_weights():
    spec = {
        "alpacaeval-easy": [1, 1], "mt-bench-easy": [0],          # Chat
        "llmbar-natural": [1, 0],                                 # Chat Hard
        "donotanswer": [1, None],                                 # Safety (the error is left out)
        "math-prm": [1], "hep-go": [0], "hep-rust": [0],          # Reasoning
        "new-thing": [0, 0],                                      # in no section
    }
    scores = REWARDBENCH.score(results(spec))
    chat = (1.0 * 100 + 0.0 * 28) / (100 + 28)
    chat_hard = 0.5
    safety = 1.0
    reasoning = (1.0 * 984 + 0 * 164 + 0 * 164) / (984 + 164 + 164)  # 0.75, not the plain 1/3
    assert scores["sections"] == pytest.approx({"Chat": chat, "Chat Hard": chat_hard, "Safety": safety,
                                                "Reasoning": reasoning})
    assert scores["final"] == pytest.approx((chat + chat_hard + safety + reasoning) / 4)
    assert scores["subsets"]["new-thing"] == 0.0 and scores["subsets"]["donotanswer"] == 1.0
    assert scores["errors"] == 1


def test_score_with_prior_sets_uses_section_weights_2_2_2_2_1():
    spec = {"alpacaeval-easy": [1], "llmbar-natural": [0], "donotanswer": [1], "math-prm": [1],
            "anthropic_helpful": [1, 0], "anthropic_hhh": [1], "shp": [0], "summarize": [0, 0, 1, 1]}
    scores = REWARDBENCH.score(results(spec))
    prior = (0.5 + 1.0 + 0.0 + 0.5) / 4
    assert scores["sections"]["Prior Sets"] == pytest.approx(prior)
    assert scores["final"] == pytest.approx((2 * (1 + 0 + 1 + 1) + prior) / 9)


def test_score_with_no_results_or_only_errors():
    assert REWARDBENCH.score([]) is None
    scores = REWARDBENCH.score(results({"math-prm": [None]}))
    assert scores["final"] is None and scores["sections"] == {} and scores["errors"] == 1


def test_hub_offline_and_uncached_names_the_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # the libraries read these at import time: point the imported copies at tmp_path too
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"), raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets", raising=False)
    monkeypatch.setattr(datasets.config, "HF_CACHE_HOME", str(tmp_path / "hf"), raising=False)
    source = DataSource(suite="rewardbench")
    with pytest.raises(SuiteDataError) as err:
        list(REWARDBENCH.load(source))
    assert "allenai/reward-bench" in str(err.value) and "HF_HUB_OFFLINE" in str(err.value)
