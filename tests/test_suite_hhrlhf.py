"""HH-RLHF suite: transcript splitting into a multi-turn prompt and two answers."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import PairItem
from pytest_rmbench.parse import ItemProblem
from pytest_rmbench.suites.base import DataSource, RowError, SuiteDataError, SuiteResult
from pytest_rmbench.suites.hhrlhf import HH_RLHF, split_transcript

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import write_jsonl  # noqa: E402


def t(*turns):
    """A transcript from alternating Human / Assistant turns."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {turn}" for i, turn in enumerate(turns))


def test_single_turn():
    messages, chosen, rejected = split_transcript(t("Hi", "Hello!"), t("Hi", "Go away."))
    assert messages == [{"role": "user", "content": "Hi"}]
    assert (chosen, rejected) == ("Hello!", "Go away.")


def test_multi_turn_prompt_ends_with_the_user():
    messages, chosen, rejected = split_transcript(t("Hi", "Hello", "Tell me a joke", "Knock knock"),
                                                  t("Hi", "Hello", "Tell me a joke", "No."))
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [m["content"] for m in messages] == ["Hi", "Hello", "Tell me a joke"]
    assert (chosen, rejected) == ("Knock knock", "No.")


def test_answers_sharing_a_beginning_and_identical_transcripts():
    messages, chosen, rejected = split_transcript(t("Q", "Yes"), t("Q", "Yes, sure"))
    assert (messages, chosen, rejected) == ([{"role": "user", "content": "Q"}], "Yes", "Yes, sure")
    assert split_transcript(t("Q", "Same"), t("Q", "Same"))[1:] == ("Same", "Same")
    # the answers are whole even when one of them is empty
    assert split_transcript(t("Q", ""), t("Q", "Something"))[1:] == ("", "Something")


def test_leading_blank_line_is_optional_and_repeated_speakers_are_joined():
    chosen = "Human: first\n\nHuman: second\n\nAssistant: answer"
    messages, answer, _ = split_transcript(chosen, chosen.replace("answer", "other"))
    assert messages == [{"role": "user", "content": "first\n\nsecond"}] and answer == "answer"


@pytest.mark.parametrize("chosen, rejected, field, words", [
    (t("A", "x", "B", "y"), t("A", "z", "B", "y2"), "chosen", "differ before the final"),   # earlier turn differs
    (t("A", "x", "B", "y"), t("A", "w"), "chosen", "differ before the final"),              # more turns in chosen
    (t("A", "w"), t("A", "x", "B", "y"), "rejected", "differ before the final"),            # more turns in rejected
    ("\n\nHuman: no answer here", "\n\nHuman: nor here", "chosen", "share no"),
    ("Preamble\n\nHuman: q\n\nAssistant: a", "Preamble\n\nHuman: q\n\nAssistant: b", "chosen", "start with"),
    ("\n\nAssistant: a\n\nAssistant: b", "\n\nAssistant: a\n\nAssistant: c", "chosen", "start with"),
    (None, t("A", "b"), "chosen", "missing"),
    (t("A", "b"), 3, "rejected", "must be a string"),
])
def test_malformed_transcripts(chosen, rejected, field, words):
    with pytest.raises(RowError) as err:
        split_transcript(chosen, rejected)
    assert err.value.field == field and words in err.value.message


def test_prompt_must_end_with_the_human():
    with pytest.raises(RowError, match="not the human"):
        split_transcript("\n\nHuman: q\n\nAssistant: a\n\nAssistant: b", "\n\nHuman: q\n\nAssistant: a\n\nAssistant: c")


def test_local_folders_are_the_subsets(tmp_path):
    write_jsonl(tmp_path / "helpful-base" / "test.jsonl.gz",
          [{"chosen": t("Hi", "Hello", "Joke?", "Ha"), "rejected": t("Hi", "Hello", "Joke?", "No")},
           {"chosen": t("Q", "a"), "rejected": None},
           {"chosen": t("Q2", "good"), "rejected": t("Q2", "bad")}])
    write_jsonl(tmp_path / "helpful-base" / "train.jsonl.gz", [{"chosen": t("T", "a"), "rejected": t("T", "b")}])
    write_jsonl(tmp_path / "harmless-base" / "test.jsonl", [{"chosen": t("Bad?", "No"), "rejected": t("Bad?", "Sure")}])
    write_jsonl(tmp_path / "red-team-attempts" / "red_team_attempts.jsonl", [{"transcript": "x"}])
    write_jsonl(tmp_path / "somewhere" / "test.jsonl", [{"chosen": t("X", "a"), "rejected": t("X", "b")}])
    source = DataSource(suite="hh-rlhf", data_dir=str(tmp_path))
    entries = list(HH_RLHF.load(source))
    items = [e for e in entries if isinstance(e, PairItem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [(e.subset, e.id, e.node) for e in items] == [
        ("helpful-base", "0", "helpful-base/0"), ("helpful-base", "2", "helpful-base/2"),
        ("harmless-base", "0", "harmless-base/0")]
    assert items[0].prompt == (("user", "Hi"), ("assistant", "Hello"), ("user", "Joke?"))
    assert items[1].prompt == (("user", "Q2"),)
    assert (items[0].chosen, items[0].rejected) == ("Ha", "No")
    assert [(p.field, p.index) for p in problems] == [("rejected", 1)]
    assert "test.jsonl.gz row 1" in problems[0].path
    assert sorted(n["part"] for n in source.not_run) == ["helpful-online", "helpful-rejection-sampled"]
    assert len(source.used) == 2


def test_nothing_found_and_missing_columns(tmp_path):
    with pytest.raises(SuiteDataError) as err:
        list(HH_RLHF.load(DataSource(suite="hh-rlhf", data_dir=str(tmp_path))))
    assert "helpful-base/test.jsonl.gz" in str(err.value)
    write_jsonl(tmp_path / "harmless-base" / "test.jsonl", [{"good": "a", "bad": "b"}])
    with pytest.raises(SuiteDataError, match="'chosen'"):
        list(HH_RLHF.load(DataSource(suite="hh-rlhf", data_dir=str(tmp_path))))


def test_score():
    results = [SuiteResult("0", "helpful-base", "correct", 1.0), SuiteResult("1", "helpful-base", "incorrect", 0.0),
               SuiteResult("0", "harmless-base", "correct", 1.0), SuiteResult("1", "harmless-base", "error", None)]
    scores = HH_RLHF.score(results)
    assert scores == {"overall": pytest.approx(2 / 3), "subsets": {"harmless-base": 1.0, "helpful-base": 0.5},
                      "errors": 1}
