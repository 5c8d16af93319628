"""M-RewardBench suite: languages as configurations / folders, scored per language as RewardBench v1."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.suites.base import DataSource, Rows, SuiteDataError
from pytest_rmbench.suites.mrewardbench import LANGUAGES, M_REWARDBENCH

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import result, write_json, write_jsonl, write_parquet  # noqa: E402


def row(id, subset, lang="arb_Arab", column="source", chosen="جيد"):
    return {"id": id, "language": lang, "prompt": "سؤال", "chosen": chosen, "rejected": "سيء",
            "chosen_model": "a", "rejected_model": "b", column: subset}


def load(tmp_path, **options):
    source = DataSource(suite="m-rewardbench", data_dir=str(tmp_path), options=options)
    return list(M_REWARDBENCH.load(source)), source


def test_the_23_languages():
    assert len(LANGUAGES) == len(set(LANGUAGES)) == 23
    assert {"arb_Arab", "zho_Hans", "zho_Hant", "pes_Arab", "ukr_Cyrl"} <= set(LANGUAGES)
    assert "eng_Latn" not in LANGUAGES


def test_local_language_folders_and_files(tmp_path):
    write_parquet(tmp_path / "arb_Arab" / "test-00000-of-00001.parquet",
                  [row(1, "alpacaeval-easy"), row(2, "math-prm"), row(3, "brand-new")])
    write_json(tmp_path / "arb_Arab" / "filtered.json", [row(50, "alpacaeval-easy")])  # same rows again
    write_json(tmp_path / "arb_Arab" / "raw.json", [row(60, "alpacaeval-easy")])
    write_jsonl(tmp_path / "deu_Latn.jsonl", [row(1, "donotanswer", lang="deu_Latn", column="subset")])
    write_json(tmp_path / "eng_Latn" / "filtered.json", [row(70, "alpacaeval-easy")])
    (tmp_path / "notes.txt").write_text("x")
    entries, source = load(tmp_path, languages=["arb_Arab", "deu_Latn", "zho_Hans"])
    assert all(isinstance(e, PairItem) for e in entries)
    assert [(e.subset, e.id, e.node) for e in entries] == [
        ("arb_Arab/alpacaeval-easy", "1", "arb_Arab/chat/alpacaeval-easy/1"),
        ("arb_Arab/math-prm", "2", "arb_Arab/reasoning/math-prm/2"),
        ("arb_Arab/brand-new", "3", "arb_Arab/brand-new/3"),
        ("deu_Latn/donotanswer", "1", "deu_Latn/safety/donotanswer/1"),
    ]
    assert entries[0].prompt == "سؤال" and entries[0].chosen == "جيد"
    assert [n["part"] for n in source.not_run] == ["zho_Hans"]
    assert [u["part"] for u in source.used] == ["arb_Arab", "deu_Latn"]


def test_filtered_json_is_read_when_there_is_no_test_file(tmp_path):
    write_json(tmp_path / "ces_Latn" / "filtered.json", [row(4, "hep-go", lang="ces_Latn")])
    entries, _ = load(tmp_path, languages=["ces_Latn"])
    assert [e.node for e in entries] == ["ces_Latn/reasoning/hep-go/4"]


def test_every_language_by_default_and_absent_ones_recorded(tmp_path):
    write_jsonl(tmp_path / "zho_Hant.jsonl", [row(1, "alpacaeval-easy", lang="zho_Hant")])
    entries, source = load(tmp_path)
    assert [e.subset for e in entries] == ["zho_Hant/alpacaeval-easy"]
    assert len(source.not_run) == 22 and "zho_Hans" in {n["part"] for n in source.not_run}


def test_unknown_language_lists_the_valid_codes(tmp_path):
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path, languages=["arb_Arab", "xx_Klingon"])
    assert "xx_Klingon" in str(err.value) and "zho_Hant" in str(err.value) and "arb_Arab" in str(err.value)


def test_nothing_found(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path, languages=["arb_Arab"])
    assert str(tmp_path) in str(err.value) and "test-*.parquet" in str(err.value)


def test_missing_subset_column_and_bad_rows(tmp_path):
    write_jsonl(tmp_path / "pol_Latn.jsonl", [{k: v for k, v in row(1, "x").items() if k != "source"}])
    with pytest.raises(SuiteDataError) as err:
        load(tmp_path, languages=["pol_Latn"])
    assert "'source'" in str(err.value) and "'language'" in str(err.value)

    write_jsonl(tmp_path / "pol_Latn.jsonl", [row(1, "donotanswer", chosen=None), row(2, "donotanswer")])
    entries, _ = load(tmp_path, languages=["pol_Latn"])
    assert isinstance(entries[0], ItemProblem) and entries[0].field == "chosen" and entries[0].id == "1"
    assert isinstance(entries[1], PairItem)


def test_hub_configurations():
    calls = []

    class Hub(DataSource):
        def hub(self, dataset, config=None, split=None, part=None):
            calls.append((dataset, config, split))
            return Rows.from_list([row(1, "alpacaeval-easy", lang=config)])

    entries = list(M_REWARDBENCH.load(Hub(suite="m-rewardbench", options={"languages": ["kor_Hang", "tur_Latn"]})))
    assert calls == [("C4AI-Community/multilingual-reward-bench", "kor_Hang", "test"),
                     ("C4AI-Community/multilingual-reward-bench", "tur_Latn", "test")]
    assert [e.node for e in entries] == ["kor_Hang/chat/alpacaeval-easy/1", "tur_Latn/chat/alpacaeval-easy/1"]


def test_sections_per_language():
    sections = M_REWARDBENCH.sections({"arb_Arab/math-prm", "arb_Arab/hep-go", "deu_Latn/donotanswer"})
    assert set(sections) == {"arb_Arab/Reasoning", "deu_Latn/Safety"}
    assert sections["arb_Arab/Reasoning"].weights == {"arb_Arab/math-prm": 984.0, "arb_Arab/hep-go": 164.0}


def test_score_is_the_mean_of_the_languages_finals():
    spec = [("arb_Arab/alpacaeval-easy", 1), ("arb_Arab/math-prm", 1), ("arb_Arab/hep-go", 0),
            ("arb_Arab/hep-java", 0), ("deu_Latn/donotanswer", 0), ("deu_Latn/donotanswer", 1),
            ("deu_Latn/llmbar-natural", 1), ("deu_Latn/llmbar-natural", None)]
    scores = M_REWARDBENCH.score([result(i, s, ok) for i, (s, ok) in enumerate(spec)])
    arb_reasoning = 984 / (984 + 164 + 164)
    arb = (1.0 + arb_reasoning) / 2
    deu = (0.5 + 1.0) / 2
    assert scores["languages"]["arb_Arab"]["sections"] == pytest.approx({"Chat": 1.0, "Reasoning": arb_reasoning})
    assert scores["languages"]["arb_Arab"]["final"] == pytest.approx(arb)
    assert scores["languages"]["deu_Latn"]["final"] == pytest.approx(deu)
    assert scores["mean"] == pytest.approx((arb + deu) / 2)
    assert scores["errors"] == 1
    assert M_REWARDBENCH.score([]) is None
