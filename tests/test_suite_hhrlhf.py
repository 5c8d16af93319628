"""HH-RLHF suite: transcript splitting into a multi-turn prompt and two answers."""

import json
import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.suites.base import DataSource, RowError, SuiteDataError, SuiteResult
from pytest_rmbench.suites.hhrlhf import HH_RLHF, split_transcript

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import write_jsonl  # noqa: E402

pytest_plugins = ["pytester"]


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
    ("\n\nHuman: no answer here", "\n\nHuman: nor here", "chosen", "share no"),
    (t("Q", "a"), "\n\nHuman: Q and no answer", "rejected", "'rejected' has no"),
    (t("Q", "a"), t("Other question", "b"), "rejected", "differs from 'chosen' before the first"),
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


# Rows modelled on the real test files, where the model that wrote an answer sometimes rambled
# on into turns of its own ("...\n\nHuman: ...\n\nAssistant: ..."): the invented turns belong
# to that answer, and the prompt is still everything the two transcripts share.
BASIL = "\n\nHuman: How do I keep basil alive indoors?\n\nAssistant:"
RAMBLING_ROWS = [
    # the chosen answer rambles (and the two answers share their first words)
    {"chosen": BASIL + " Give it a sunny window and water it when the top of the soil is dry."
               "\n\nHuman: Thanks! What about mint?\n\nAssistant: Mint wants a bit more water than basil.",
     "rejected": BASIL + " Give it up."},
    # the rejected answer rambles
    {"chosen": BASIL + " A south-facing window, well-drained soil, and pinch off the flower buds as they appear.",
     "rejected": BASIL + " Water it.\n\nHuman: how much?\n\nAssistant: A lot."},
    # both ramble, into different numbers of invented turns
    {"chosen": BASIL + " Six hours of light a day.\n\nHuman: And if I have no window?\n\nAssistant: Use a grow "
               "light.\n\nHuman: ok thanks\n\nAssistant: You're welcome!",
     "rejected": BASIL + " No idea.\n\nHuman: ?\n\nAssistant: Sorry."},
    # a multi-turn prompt, and the chosen answer rambles
    {"chosen": "\n\nHuman: I want to cook dinner.\n\nAssistant: What do you have?\n\nHuman: Eggs and rice."
               "\n\nAssistant: Make egg fried rice: fry the rice, push it aside, scramble the eggs, mix."
               "\n\nHuman: Can I add peas?\n\nAssistant: Yes, frozen peas work well.",
     "rejected": "\n\nHuman: I want to cook dinner.\n\nAssistant: What do you have?\n\nHuman: Eggs and rice."
                 "\n\nAssistant: Order a pizza."},
]


def test_a_chosen_answer_that_rambles_into_invented_turns_keeps_them():
    messages, chosen, rejected = split_transcript(RAMBLING_ROWS[0]["chosen"], RAMBLING_ROWS[0]["rejected"])
    assert messages == [{"role": "user", "content": "How do I keep basil alive indoors?"}]
    assert chosen == ("Give it a sunny window and water it when the top of the soil is dry."
                      "\n\nHuman: Thanks! What about mint?\n\nAssistant: Mint wants a bit more water than basil.")
    assert rejected == "Give it up."


def test_a_rejected_answer_that_rambles_into_invented_turns_keeps_them():
    messages, chosen, rejected = split_transcript(RAMBLING_ROWS[1]["chosen"], RAMBLING_ROWS[1]["rejected"])
    assert messages == [{"role": "user", "content": "How do I keep basil alive indoors?"}]
    assert chosen.startswith("A south-facing window") and "Human:" not in chosen
    assert rejected == "Water it.\n\nHuman: how much?\n\nAssistant: A lot."


def test_both_answers_ramble_into_different_invented_turns():
    messages, chosen, rejected = split_transcript(RAMBLING_ROWS[2]["chosen"], RAMBLING_ROWS[2]["rejected"])
    assert messages == [{"role": "user", "content": "How do I keep basil alive indoors?"}]
    assert chosen == ("Six hours of light a day.\n\nHuman: And if I have no window?\n\nAssistant: Use a grow light."
                      "\n\nHuman: ok thanks\n\nAssistant: You're welcome!")
    assert rejected == "No idea.\n\nHuman: ?\n\nAssistant: Sorry."


def test_a_multi_turn_prompt_with_a_rambling_answer():
    messages, chosen, rejected = split_transcript(RAMBLING_ROWS[3]["chosen"], RAMBLING_ROWS[3]["rejected"])
    assert messages == [{"role": "user", "content": "I want to cook dinner."},
                        {"role": "assistant", "content": "What do you have?"},
                        {"role": "user", "content": "Eggs and rice."}]
    assert chosen.endswith("\n\nHuman: Can I add peas?\n\nAssistant: Yes, frozen peas work well.")
    assert rejected == "Order a pizza."


@pytest.mark.parametrize("chosen, rejected, answers", [
    # an earlier turn differs: that assistant turn is where the answers start
    (t("A", "x", "B", "y"), t("A", "z", "B", "y2"), ("x\n\nHuman: B\n\nAssistant: y", "z\n\nHuman: B\n\nAssistant: y2")),
    (t("A", "x", "B", "y"), t("A", "w"), ("x\n\nHuman: B\n\nAssistant: y", "w")),
    (t("A", "w"), t("A", "x", "B", "y"), ("w", "x\n\nHuman: B\n\nAssistant: y")),
    # an answer that is nothing but invented turns, right after the marker with or without its space
    (t("A", "real answer"), "\n\nHuman: A\n\nAssistant:\n\nHuman: hello?\n\nAssistant: hi",
     ("real answer", "Human: hello?\n\nAssistant: hi")),
    (t("A", ""), t("A", "x", "B", "y"), ("", "x\n\nHuman: B\n\nAssistant: y")),
])
def test_the_prompt_is_the_longest_shared_prefix_ending_with_the_assistant_marker(chosen, rejected, answers):
    messages, *got = split_transcript(chosen, rejected)
    assert messages == [{"role": "user", "content": "A"}]
    assert tuple(got) == answers


def test_rambling_rows_are_items_and_a_row_without_a_shared_prompt_names_file_row_and_field(tmp_path):
    write_jsonl(tmp_path / "helpful-base" / "test.jsonl.gz",
                RAMBLING_ROWS[:2] + [{"chosen": t("Q", "a"), "rejected": t("Another Q", "b")}] + RAMBLING_ROWS[2:])
    entries = list(HH_RLHF.load(DataSource(suite="hh-rlhf", data_dir=str(tmp_path))))
    items = [e for e in entries if isinstance(e, PairItem)]
    problems = [e for e in entries if isinstance(e, ItemProblem)]
    assert [e.id for e in items] == ["0", "1", "3", "4"]
    assert items[3].prompt == (("user", "I want to cook dinner."), ("assistant", "What do you have?"),
                               ("user", "Eggs and rice."))
    assert len(problems) == 1
    described = problems[0].describe()
    assert "helpful-base/test.jsonl.gz row 2" in described and "field 'rejected'" in described
    assert "share no prompt" in described


def test_a_session_on_rambling_rows_has_no_error_items(pytester):
    data = pytester.mkdir("data")
    write_jsonl(data / "helpful-base" / "test.jsonl.gz", RAMBLING_ROWS)
    write_jsonl(data / "harmless-base" / "test.jsonl.gz", RAMBLING_ROWS[1:3])
    result = pytester.runpytest("--rm-bench", "hh-rlhf", f"--rm-data-dir={data}", "--rm-model=builtin:length",
                                "--rm-report=run.json", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "run.json").read_text())
    assert [(i["nodeid"], i["outcome"]) for i in report["items"]] == [
        ("hh-rlhf::helpful-base/0", "correct"), ("hh-rlhf::helpful-base/1", "correct"),
        ("hh-rlhf::helpful-base/2", "correct"), ("hh-rlhf::helpful-base/3", "correct"),
        ("hh-rlhf::harmless-base/0", "correct"), ("hh-rlhf::harmless-base/1", "correct")]
    assert report["scores"]["hh-rlhf"]["errors"] == 0 and report["scores"]["hh-rlhf"]["overall"] == 1.0
    assert result.ret == 0


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
