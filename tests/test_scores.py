"""Score files: reading (normalisation, duplicates, malformed lines), the `scores:PATH` model,
the writer (skips, odd text, concurrent processes) and the save -> replay round trip; the
same for steps lines (a process reward model's per-step scores)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_rmbench import engine
from pytest_rmbench.items import JudgeRequest, MultiHeadScore, ScoreRequest, ScoreResult, StepsRequest
from pytest_rmbench.models.base import ModelLoadError, ModelSpec
from pytest_rmbench.models.builtin import BuiltinModel
from pytest_rmbench.models.kinds import detect_kind
from pytest_rmbench.models.scores import MissingScoreError, build
from pytest_rmbench.items.files import parse_file
from pytest_rmbench.storage.scorefile import (
    ScoreFileError,
    ScoreWriter,
    normalize_prompt,
    read_scores,
    score_key,
    start_score_file,
    steps_key,
)

pytest_plugins = ["pytester"]

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
ITEMS = [
    {"id": "s1", "subset": "plain", "prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
    {"id": "s2", "subset": "plain", "prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
    {"id": "c1", "subset": "chat", "prompt": CHAT, "chosen": "Blue.", "rejected": "I like many colours, really."},
    {"id": "c2", "subset": "chat", "prompt": [{"role": "user", "content": "Say hi"}], "chosen": "Hi!", "rejected": "No."},
]
SCORES = {  # (item id, which) -> score; s2 and c2 are wrong on purpose
    ("s1", "chosen"): 2.5, ("s1", "rejected"): -1.0,
    ("s2", "chosen"): 0.125, ("s2", "rejected"): 0.75,
    ("c1", "chosen"): 1e-3, ("c1", "rejected"): -3,
    ("c2", "chosen"): 7, ("c2", "rejected"): 7,
}


def lines(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def score_lines(skip=()) -> str:
    rows = []
    for item in ITEMS:
        for which in ("chosen", "rejected"):
            if (item["id"], which) not in skip:
                rows.append({"prompt": item["prompt"], "answer": item[which], "score": SCORES[(item["id"], which)]})
    return lines(*rows)


def write_items(folder: Path) -> Path:
    path = folder / "items.rmbench.jsonl"
    path.write_text(lines(*ITEMS))
    return path


def report_items(pytester, name="run.json") -> dict[str, dict]:
    return {item["id"]: item for item in json.loads((pytester.path / name).read_text())["items"]}


# -- reading --------------------------------------------------------------------------------------


def test_read_normalises_a_string_prompt_and_one_user_message(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(lines(
        {"prompt": "hi", "answer": "a", "score": 1},
        {"prompt": [{"role": "user", "content": "hi"}], "answer": "a", "score": 1.0},  # the same, same score
        {"prompt": CHAT, "answer": "a", "score": -2.5, "model": "extra fields are ignored"},
        "",
        "   ",
        {"prompt": [{"role": "user", "content": "hi", "name": "x"}], "answer": "b", "score": 0},
    ))
    scores = read_scores(str(path))
    assert scores == {
        ("hi", "a"): 1.0,
        (tuple((m["role"], m["content"]) for m in CHAT), "a"): -2.5,
        ("hi", "b"): 0.0,
    }
    assert score_key([{"role": "user", "content": "hi"}], "a") == score_key("hi", "a") == score_key((("user", "hi"),), "a")
    assert normalize_prompt((("system", "s"), ("user", "hi"))) != normalize_prompt("hi")
    assert normalize_prompt((("assistant", "hi"),)) != "hi"  # only a single USER message is a plain prompt


def test_read_accepts_a_bom_crlf_and_no_final_newline(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "p", "answer": "a", "score": 1}).encode() + b"\r\n"
                     + json.dumps({"prompt": "p\u2028q", "answer": "\u00e9", "score": 2}, ensure_ascii=False).encode())
    assert read_scores(str(path)) == {("p", "a"): 1.0, ("p\u2028q", "\u00e9"): 2.0}


def test_a_different_score_for_the_same_sequence_names_both_lines(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(lines(
        {"prompt": "hi", "answer": "a", "score": 1},
        {"prompt": "other", "answer": "a", "score": 1},
        {"prompt": [{"role": "user", "content": "hi"}], "answer": "a", "score": 1.5},
    ))
    with pytest.raises(ScoreFileError) as info:
        read_scores(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:3: ") and "on line 1" in message and "1.5" in message and "'hi'" in message
    assert info.value.line == 3


@pytest.mark.parametrize(
    "bad, expected",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"prompt": "p", "answer": "a"}', "missing field(s): score"),
        ('{"answer": "a", "score": 1}', "missing field(s): prompt"),
        ('{"prompt": "p", "answer": "a", "score": "1.5"}', "'score' must be a number"),
        ('{"prompt": "p", "answer": "a", "score": true}', "'score' must be a number"),
        ('{"prompt": "p", "answer": "a", "score": null}', "'score' must be a number"),
        ('{"prompt": "p", "answer": "a", "score": NaN}', "must be finite"),
        ('{"prompt": "p", "answer": "a", "score": Infinity}', "must be finite"),
        ('{"prompt": "p", "answer": "a", "score": -Infinity}', "must be finite"),
        ('{"prompt": "p", "answer": "a", "score": 1e400}', "must be finite"),
        ('{"prompt": "p", "answer": "a", "score": 1' + "0" * 400 + "}", "must be finite"),
        ('{"prompt": "p", "answer": 3, "score": 1}', "'answer' must be a string"),
        ('{"prompt": 3, "answer": "a", "score": 1}', "'prompt' must be a string or a list"),
        ('{"prompt": [], "answer": "a", "score": 1}', "empty list of messages"),
        ('{"prompt": [{"role": "user"}], "answer": "a", "score": 1}', "message #0"),
        ('{"prompt": ["hi"], "answer": "a", "score": 1}', "message #0"),
        ('{"prompt": "p", "answer": "a", "score": 1, "score": 2}', "appears twice"),
    ],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, bad, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(lines({"prompt": "ok", "answer": "a", "score": 0}, "") + bad + "\n")
    with pytest.raises(ScoreFileError) as info:
        read_scores(str(path))
    assert str(info.value).startswith(f"{path}:3: "), str(info.value)
    assert expected in str(info.value)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(lines({"prompt": "ok", "answer": "a", "score": 0}).encode() + b'{"prompt": "\xff"}\n')
    with pytest.raises(ScoreFileError, match=r"bad\.jsonl:2: not valid UTF-8"):
        read_scores(str(path))


# -- the scores:PATH model -----------------------------------------------------------------------


def test_build_errors_are_model_load_errors_naming_the_file(tmp_path):
    assert detect_kind(ModelSpec("scores:x.jsonl")) == "scores"
    with pytest.raises(ModelLoadError, match="cannot read the score file .*missing.jsonl"):
        build(ModelSpec(f"scores:{tmp_path / 'missing.jsonl'}"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines({"prompt": "p", "answer": "a", "score": 1}, {"prompt": "p", "answer": "a"}))
    with pytest.raises(ModelLoadError, match=r"bad\.jsonl:2: missing field"):
        build(ModelSpec(f"scores:{bad}"))
    with pytest.raises(ModelLoadError, match="needs the path"):
        build(ModelSpec("scores:"))


def test_adapter_looks_scores_up_and_names_a_missing_one(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(lines({"prompt": "hi", "answer": "yes", "score": 1.5}))
    model = build(ModelSpec(f"scores:{path}", kind="scores"))
    assert (model.kind, model.dtype, model.device, model.name) == ("scores", "n/a", "cpu", f"scores:{path}")
    found, other_answer = ScoreRequest((("user", "hi"),), "yes"), ScoreRequest("hi", "x" * 200)
    other_prompt = ScoreRequest("a prompt that is not there " * 10, "yes")
    prepared = model.prepare([found, other_answer, other_prompt])
    assert [p.length for p in prepared] == [3, 200, 3]
    assert model.score_batch(prepared[:1]) == [1.5]
    with pytest.raises(MissingScoreError) as info:
        model.score_batch(prepared[1:2])
    message = str(info.value)
    assert "'hi'" in message and "xxxx\u2026" in message and len(message) < 300 and "not for this answer" in message
    assert "no score for this prompt" in str(pytest.raises(MissingScoreError, model.score_batch, prepared[2:]).value)
    # through the engine: the batch fails, is retried one by one, and only the missing ones error
    results = engine.score_requests(model, [found, other_answer, other_prompt], engine.BatchLimits())
    assert results[found] == ScoreResult(1.5, False)
    assert results[other_answer].error.startswith("scoring failed: MissingScoreError: no score in")
    assert results[other_prompt].error is not None
    with pytest.raises(TypeError, match="judge"):
        model.prepare([JudgeRequest("hi", "a", "b")])


def test_a_run_on_a_score_file_gives_exactly_its_scores(pytester):
    write_items(pytester.path)
    (pytester.path / "scores.jsonl").write_text(score_lines())
    result = pytester.runpytest("--rm-model=scores:scores.jsonl", "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider")
    assert result.ret == 0 and result.parseoutcomes() == {"passed": 2, "incorrect": 2}
    items = report_items(pytester)
    for item_id, item in items.items():
        assert item["chosen_score"] == SCORES[(item_id, "chosen")], item
        assert item["rejected_score"] == SCORES[(item_id, "rejected")], item
    assert {i: item["outcome"] for i, item in items.items()} == {"s1": "correct", "s2": "incorrect", "c1": "correct", "c2": "incorrect"}
    assert json.loads((pytester.path / "run.json").read_text())["run"]["kind"] == "scores"


def test_a_missing_score_errors_that_item_only(pytester):
    write_items(pytester.path)
    (pytester.path / "scores.jsonl").write_text(score_lines(skip={("c1", "rejected")}))
    result = pytester.runpytest("--rm-model=scores:scores.jsonl", "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider")
    assert result.ret == 1
    items = report_items(pytester)
    assert [i for i, item in items.items() if item["outcome"] == "error"] == ["c1"]
    assert items["s1"]["outcome"] == "correct" and items["c2"]["outcome"] == "incorrect"
    assert result.parseoutcomes() == {"passed": 1, "errors": 1, "incorrect": 2}
    result.stdout.fnmatch_lines([
        "*no score in scores.jsonl for the answer 'I like many colours, really.' to the prompt "
        "'system: Be brief. | user: Name a colour.' (it has scores for this prompt, but not for this answer)*",
        "ERROR items.rmbench.jsonl::chat/c1 - scoring failed: MissingScoreError: no sc*",
    ])


def test_a_broken_score_file_fails_the_run_naming_the_line(pytester):
    write_items(pytester.path)
    (pytester.path / "scores.jsonl").write_text(score_lines() + '{"prompt": "p", "answer": "a", "score": NaN}\n')
    result = pytester.runpytest("--rm-model=scores:scores.jsonl", "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider")
    assert result.ret == 1
    assert "scores.jsonl:9: 'score' must be finite" in result.stdout.str()


# -- writing --------------------------------------------------------------------------------------


def test_writer_skips_judge_requests_errors_and_non_finite_scores_and_writes_once(tmp_path):
    path = tmp_path / "sub" / "saved.jsonl"
    writer = ScoreWriter(str(path))
    assert writer.write([]) == 0 and not path.exists(), "the file is opened on the first row"
    chat = ScoreRequest((("system", "s"), ("user", "u")), "a")
    rows = [
        (ScoreRequest("p", "a"), ScoreResult(1.0)),
        (ScoreRequest((("user", "p"),), "a"), ScoreResult(1.0)),  # the same sequence: written once
        (chat, ScoreResult(-0.5, truncated=True)),
        (ScoreRequest("p", "err"), ScoreResult(None, error="boom")),
        (ScoreRequest("p", "none"), ScoreResult(None)),
        (ScoreRequest("p", "nan"), ScoreResult(math.nan)),
        (ScoreRequest("p", "inf"), ScoreResult(-math.inf)),
        (JudgeRequest("p", "a", "b"), ScoreResult(1.0)),
    ]
    assert writer.write(rows) == 2
    assert writer.write([(ScoreRequest("p", "a"), ScoreResult(2.0))]) == 0, "first score wins"
    writer.close()
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert written == [
        {"prompt": "p", "answer": "a", "score": 1.0},
        {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "answer": "a", "score": -0.5},
    ]
    assert read_scores(str(path)) == {("p", "a"): 1.0, ((("system", "s"), ("user", "u")), "a"): -0.5}


def test_writer_keeps_odd_text_and_exact_floats(tmp_path):
    path = tmp_path / "saved.jsonl"
    odd = ["line\nbreak", "sep\u2028arator", "lone \ud800 surrogate", "\u00e9\u4e2d\U0001f600", '"quotes" \\ back']
    scores = [0.1 + 0.2, 1e-300, -123456789.123456789, 5e-324, 1.7976931348623157e308]
    with ScoreWriter(str(path)) as writer:
        writer.write([(ScoreRequest(text, text), ScoreResult(s)) for text, s in zip(odd, scores)])
    assert path.read_bytes().decode("utf-8").count("\n") == len(odd)
    assert read_scores(str(path)) == {(text, text): s for text, s in zip(odd, scores)}


def test_writer_starts_a_fresh_line_after_a_partial_one_and_start_empties_the_file(tmp_path):
    path = tmp_path / "saved.jsonl"
    path.write_text('{"prompt": "p", "answer": "cut sh')  # a writer that died mid-line
    with ScoreWriter(str(path)) as writer:
        writer.write([(ScoreRequest("p", "a"), ScoreResult(1.0))])
    assert path.read_text().splitlines()[1] == json.dumps({"prompt": "p", "answer": "a", "score": 1.0}, ensure_ascii=False)
    with pytest.raises(ScoreFileError, match=r"saved\.jsonl:1: not valid JSON"):
        read_scores(str(path))
    start_score_file(str(path))
    assert path.read_bytes() == b""


def test_writer_emptied_under_it_writes_everything_again(tmp_path):
    path = tmp_path / "saved.jsonl"
    with ScoreWriter(str(path)) as writer:
        writer.write([(ScoreRequest("p", "a"), ScoreResult(1.0))])
        start_score_file(str(path))
        writer.write([(ScoreRequest("p", "a"), ScoreResult(1.0)), (ScoreRequest("p", "b"), ScoreResult(2.0))])
    assert read_scores(str(path)) == {("p", "a"): 1.0, ("p", "b"): 2.0}
    assert len(path.read_text().splitlines()) == 2


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pytest_rmbench.items import ScoreRequest, ScoreResult
    from pytest_rmbench.storage.scorefile import ScoreWriter

    path, worker = sys.argv[1], int(sys.argv[2])
    writer = ScoreWriter(path)
    keys = list(range(300))
    keys = keys[worker * 50:] + keys[:worker * 50]  # overlapping, in different orders
    for start in range(0, len(keys), 7):
        rows = []
        for k in keys[start:start + 7]:
            prompt = f"prompt {k % 13}" if k % 2 else ((("system", "s" * (k % 5))), ("user", f"prompt {k}"))
            # a tiny per-worker difference, as a batch-dependent GPU model would give
            rows.append((ScoreRequest(prompt, f"answer {k} " + "x" * (k * 37 % 3000)), ScoreResult(k + worker * 1e-9)))
        writer.write(rows)
    writer.close()
    """
)


def test_four_processes_appending_at_once_write_a_valid_file_with_each_sequence_once(tmp_path):
    path = tmp_path / "shared.jsonl"
    start_score_file(str(path))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path), str(w)], env=env) for w in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    raw = path.read_bytes().split(b"\n")
    assert raw[-1] == b"" and all(json.loads(line) for line in raw[:-1])
    scores = read_scores(str(path))  # no conflicting duplicates: the first score written wins
    assert len(scores) == 300 == len(raw) - 1
    assert sorted(round(s) for s in scores.values()) == list(range(300))


# -- save, then replay ------------------------------------------------------------------------------


def test_scores_saved_through_on_batch_replay_to_identical_outcomes(pytester):
    items_path = write_items(pytester.path)
    pairs = [e for e in parse_file(str(items_path), items_path.read_bytes()).entries]
    requests = [r for pair in pairs for r in pair.requests()]
    with ScoreWriter(str(pytester.path / "saved.jsonl")) as writer:
        engine.score_requests(BuiltinModel("random", seed=3), requests, engine.BatchLimits(max_sequences=3), on_batch=writer.write)
    args = ["--rm-report=run.json", "--rm-no-store", "--rm-no-cache", "--rm-seed=3", "-p", "no:cacheprovider"]
    first = pytester.runpytest("--rm-model=builtin:random", *args)
    original = report_items(pytester)
    replay = pytester.runpytest("--rm-model=scores:saved.jsonl", *args)
    replayed = report_items(pytester)
    assert first.ret == replay.ret
    keys = ("outcome", "chosen_score", "rejected_score", "margin")
    assert {i: [item[k] for k in keys] for i, item in original.items()} == {i: [item[k] for k in keys] for i, item in replayed.items()}
    assert all(item["outcome"] in ("correct", "incorrect") for item in replayed.values())


def test_rm_save_scores_option_round_trip_with_and_without_xdist(pytester):
    """Through the plugin's --rm-save-scores (skipped until the plugin writes the file)."""
    write_items(pytester.path)
    args = ["--rm-report=run.json", "--rm-no-store", "--rm-no-cache", "-p", "no:cacheprovider"]
    for xdist in ([], ["-n", "2", "--rm-chunk-size=1"]):
        (pytester.path / "saved.jsonl").write_text("stale line from an earlier run\n")
        first = pytester.runpytest("--rm-model=builtin:random", "--rm-save-scores=saved.jsonl", *args, *xdist)
        original = report_items(pytester)
        assert (pytester.path / "saved.jsonl").read_text() != "stale line from an earlier run\n", "the file was not rewritten"
        assert len(read_scores(str(pytester.path / "saved.jsonl"))) == 8, xdist
        replay = pytester.runpytest("--rm-model=scores:saved.jsonl", *args)
        assert first.ret == replay.ret
        replayed = report_items(pytester)
        keys = ("outcome", "chosen_score", "rejected_score")
        assert {i: [item[k] for k in keys] for i, item in original.items()} == {
            i: [item[k] for k in keys] for i, item in replayed.items()
        }, xdist


FINGERPRINTED_CONFTEST = """
import pytest
from pytest_rmbench.models.builtin import BuiltinModel

class Logging(BuiltinModel):
    def score_batch(self, batch):
        with open("batches.log", "a") as fh:
            fh.write("batch\\n")
        return super().score_batch(batch)

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Logging("random", seed=5)

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return "random-5"
"""


def test_rm_save_scores_includes_scores_read_from_the_cache(pytester):
    """A run that reads every score from the cache still saves every score of the run."""
    pytester.makeconftest(FINGERPRINTED_CONFTEST)
    write_items(pytester.path)
    args = ["--rm-model=cached-random", "--rm-no-store", "-p", "no:cacheprovider"]
    pytester.runpytest(*args, "--rm-save-scores=first.jsonl")
    assert (pytester.path / "first.jsonl").exists()
    (pytester.path / "batches.log").unlink()
    pytester.runpytest(*args, "--rm-save-scores=second.jsonl")
    assert not (pytester.path / "batches.log").exists(), "the second run reads every score from the cache"
    first, second = (read_scores(str(pytester.path / name)) for name in ("first.jsonl", "second.jsonl"))
    assert len(first) == 8 and first == second


# -- steps lines: per-step scores of a solution given as steps ------------------------------------


def test_read_steps_lines_next_to_answer_lines_without_collisions(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(lines(
        {"prompt": "p", "answer": "a", "score": 1},
        {"prompt": "p", "steps": ["a"], "scores": [0.25]},  # same prompt and text as the answer: its own entry
        {"prompt": [{"role": "user", "content": "p"}], "steps": ["a"], "scores": [0.25]},  # the same steps again
        {"prompt": "p", "steps": ["a", "b"], "scores": [1, 0.5], "note": "ignored"},
        {"prompt": CHAT, "steps": ["x", "y", "z"], "scores": [0, -1e-3, 5e-324]},
    ))
    chat = tuple((m["role"], m["content"]) for m in CHAT)
    assert read_scores(str(path)) == {
        ("p", "a"): 1.0,
        ("p", ("a",)): (0.25,),
        ("p", ("a", "b")): (1.0, 0.5),
        (chat, ("x", "y", "z")): (0.0, -1e-3, 5e-324),
    }
    assert all(type(v) is float for v in read_scores(str(path))[("p", ("a", "b"))])
    assert steps_key((("user", "p"),), ["a"]) == steps_key("p", ("a",)) == ("p", ("a",)) != score_key("p", "a")


def test_steps_lines_with_different_scores_name_both_lines(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(lines(
        {"prompt": "solve it", "steps": ["first step", "second"], "scores": [0.5, 0.75]},
        {"prompt": "solve it", "answer": "first step", "score": 0.5},
        {"prompt": "solve it", "steps": ["first step", "second"], "scores": [0.5, 0.7]},
    ))
    with pytest.raises(ScoreFileError) as info:
        read_scores(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:3: "), message
    assert "'solve it'" in message and "'first step'" in message and "[0.5, 0.7]" in message and "[0.5, 0.75] on line 1" in message


@pytest.mark.parametrize(
    "bad, expected",
    [
        ('{"prompt": "p", "steps": ["a", "b"], "scores": [0.5]}', "'scores' has 1 number(s) for 2 step(s)"),
        ('{"prompt": "p", "steps": ["a"], "scores": [0.5, 0.5]}', "'scores' has 2 number(s) for 1 step(s)"),
        ('{"prompt": "p", "steps": ["a"], "scores": []}', "'scores' has 0 number(s) for 1 step(s)"),
        ('{"prompt": "p", "steps": ["a", "b"], "scores": [0.5, NaN]}', "'scores' entry #1 must be finite"),
        ('{"prompt": "p", "steps": ["a"], "scores": [Infinity]}', "'scores' entry #0 must be finite"),
        ('{"prompt": "p", "steps": ["a"], "scores": [-1e400]}', "'scores' entry #0 must be finite"),
        ('{"prompt": "p", "steps": ["a"], "scores": ["0.5"]}', "'scores' entry #0 must be a number"),
        ('{"prompt": "p", "steps": ["a"], "scores": [true]}', "'scores' entry #0 must be a number"),
        ('{"prompt": "p", "steps": ["a"], "scores": [null]}', "'scores' entry #0 must be a number"),
        ('{"prompt": "p", "steps": ["a"], "scores": 0.5}', "'scores' must be a list of numbers"),
        ('{"prompt": "p", "steps": ["a"], "scores": {"0": 0.5}}', "'scores' must be a list of numbers"),
        ('{"prompt": "p", "steps": "a", "scores": [0.5]}', "'steps' must be a non-empty list of strings"),
        ('{"prompt": "p", "steps": [], "scores": []}', "'steps' must be a non-empty list of strings"),
        ('{"prompt": "p", "steps": ["a", 2], "scores": [0.5, 0.5]}', "'steps' entry #1 must be a string"),
        ('{"prompt": "p", "steps": ["a"]}', "missing field(s): scores (a steps line needs prompt, steps and scores)"),
        ('{"prompt": "p", "scores": [1]}', "missing field(s): steps"),
        ('{"steps": ["a"], "scores": [1]}', "missing field(s): prompt"),
        ('{"prompt": 3, "steps": ["a"], "scores": [1]}', "'prompt' must be a string or a list"),
        ('{"prompt": [], "steps": ["a"], "scores": [1]}', "empty list of messages"),
        ('{"prompt": "p", "answer": "a", "score": 1, "scores": [1]}', "either {prompt, answer, score} or {prompt, steps, scores}"),
        ('{"prompt": "p", "answer": "a", "steps": ["a"], "scores": [1]}', "this one has answer, steps, scores"),
        ('{"prompt": "p", "steps": ["a"], "scores": [1], "scores": [2]}', "appears twice"),
    ],
)
def test_malformed_steps_lines_name_the_file_and_line(tmp_path, bad, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(lines({"prompt": "ok", "steps": ["a"], "scores": [0]}, "") + bad + "\n")
    with pytest.raises(ScoreFileError) as info:
        read_scores(str(path))
    assert str(info.value).startswith(f"{path}:3: "), str(info.value)
    assert expected in str(info.value)


def test_adapter_answers_steps_requests_and_names_a_missing_one(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(lines(
        {"prompt": "solve", "steps": ["s1", "s2"], "scores": [0.9, 0.1]},
        {"prompt": "rate", "answer": "fine", "score": 2},
    ))
    model = build(ModelSpec(f"scores:{path}", kind="scores"))
    assert model.steps is True
    found = StepsRequest((("user", "solve"),), ("s1", "s2"))
    other_steps = StepsRequest("solve", ("s1", "s2 changed"))
    answer_prompt = StepsRequest("rate", ("fine",))  # only an answer line has this prompt
    unknown = StepsRequest("never seen", ("a first step that is long " * 5, "b"))
    answer = ScoreRequest("rate", "fine")
    prepared = model.prepare([found, other_steps, answer_prompt, unknown, answer])
    assert [p.length for p in prepared] == [4, 12, 4, 131, 4]
    assert model.score_batch([prepared[0], prepared[4]]) == [(0.9, 0.1), 2.0]
    messages = [str(pytest.raises(MissingScoreError, model.score_batch, [p]).value) for p in prepared[1:4]]
    assert messages[0] == (
        f"no step scores in {path} for the 2 step(s) starting 's1' of the prompt 'solve' "
        "(it has step scores for this prompt, but not for these steps)"
    )
    assert "(it has answer scores for this prompt, but no step scores)" in messages[1]
    assert "starting 'a first step that is long" in messages[2] and "\u2026" in messages[2]
    assert "'never seen' (it has no score for this prompt)" in messages[2]
    assert "(it has step scores for this prompt, but no answer scores)" in str(
        pytest.raises(MissingScoreError, model.score_batch, model.prepare([ScoreRequest("solve", "s1")])).value)
    # through the engine: only the missing ones error, the found one is a tuple of floats
    results = engine.score_requests(model, [found, other_steps, answer, unknown], engine.BatchLimits())
    assert results[found] == ScoreResult((0.9, 0.1), False)
    assert results[answer] == ScoreResult(2.0, False)
    assert results[other_steps].error.startswith("scoring failed: MissingScoreError: no step scores in")
    assert results[unknown].error is not None


def test_writer_writes_steps_lines_and_skips_unusable_step_scores(tmp_path):
    path = tmp_path / "saved.jsonl"
    chat = (("system", "s"), ("user", "u"))
    rows = [
        (StepsRequest("p", ("a", "b")), ScoreResult((0.25, MultiHeadScore(0.5, [0.5, 1.0])))),
        (StepsRequest((("user", "p"),), ("a", "b")), ScoreResult((0.25, 0.5))),  # the same solution: written once
        (ScoreRequest("p", "a"), ScoreResult(0.75)),  # the same prompt and text as an answer: its own line
        (StepsRequest("p", ("a",)), ScoreResult((1.0,), truncated=True)),
        (StepsRequest(chat, ("x\ny", "\u2028z")), ScoreResult([0, 1])),
        (StepsRequest("p", ("too", "few")), ScoreResult((0.5,))),
        (StepsRequest("p", ("nan",)), ScoreResult((math.nan,))),
        (StepsRequest("p", ("bool",)), ScoreResult((True,))),
        (StepsRequest("p", ("scalar",)), ScoreResult(0.5)),
        (StepsRequest("p", ("none",)), ScoreResult(None)),
        (StepsRequest("p", ("err",)), ScoreResult(None, error="boom")),
        (StepsRequest("p", ()), ScoreResult(())),
        (JudgeRequest("p", "a", "b"), ScoreResult(1.0)),
    ]
    with ScoreWriter(str(path)) as writer:
        assert writer.write(rows) == 4
        assert writer.write([(StepsRequest("p", ("a", "b")), ScoreResult((0.0, 0.0)))]) == 0, "first score wins"
    written = [json.loads(line) for line in path.read_text().split("\n")[:-1]]  # not splitlines: U+2028 is text
    assert written == [
        {"prompt": "p", "steps": ["a", "b"], "scores": [0.25, 0.5]},
        {"prompt": "p", "answer": "a", "score": 0.75},
        {"prompt": "p", "steps": ["a"], "scores": [1.0]},
        {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "steps": ["x\ny", "\u2028z"],
         "scores": [0.0, 1.0]},
    ]
    assert read_scores(str(path)) == {
        ("p", ("a", "b")): (0.25, 0.5), ("p", "a"): 0.75, ("p", ("a",)): (1.0,), (chat, ("x\ny", "\u2028z")): (0.0, 1.0),
    }
    # a second writer (another process) learns the steps lines already there
    with ScoreWriter(str(path)) as other:
        assert other.write([(StepsRequest("p", ("a",)), ScoreResult((0.5,))), (StepsRequest("q", ("a",)), ScoreResult((0.5,)))]) == 1


STEPS_ITEMS_YAML = """\
items:
  - {kind: steps, id: st1, subset: math, problem: "What is 3*4?", steps: ["3*4 = 12", "so 12"], label: -1}
  - {kind: steps, id: st2, subset: math, problem: "What is 2+3?", steps: ["2+3 = 6", "so 6"], label: 0}
  - {kind: steps, id: st3, subset: math, problem: "Sum of 1..3?", steps: ["1+2 = 3", "3+3 = 7", "so 7"], label: 1}
  - {kind: steps, id: st4, subset: math, problem: "What is 3*4?", steps: ["3*4 = 12", "so 13"], label: 1}
  - {kind: steps, id: st5, subset: logic, problem: "Is 7 prime?", steps: ["7 has no divisor but 1 and 7", "yes"], label: 0}
  - {id: p1, subset: pairs, prompt: "What is 3*4?", chosen: "12", rejected: "13"}
"""
STEP_SCORES = {  # id -> (problem as written in the score file, steps, scores)
    "st1": ("What is 3*4?", ["3*4 = 12", "so 12"], [0.9, 0.8]),
    "st2": ([{"role": "user", "content": "What is 2+3?"}], ["2+3 = 6", "so 6"], [0.5, 0.1]),  # 0.5 is not under 0.5
    "st3": ("Sum of 1..3?", ["1+2 = 3", "3+3 = 7", "so 7"], [0.75, 0.25, 0.0]),
    "st4": ("What is 3*4?", ["3*4 = 12", "so 13"], [1, 0]),
    "st5": ("Is 7 prime?", ["7 has no divisor but 1 and 7", "yes"], [0.99, 0.98]),
}
# by hand: the prediction is the first step scoring under 0.5, else -1
EXPECTED_STEPS = {  # id -> (outcome, prediction)
    "st1": ("correct", -1), "st2": ("incorrect", 1), "st3": ("correct", 1), "st4": ("correct", 1), "st5": ("incorrect", -1),
}


def write_steps_run(folder: Path, skip=()) -> None:
    (folder / "steps.rmbench.yaml").write_text(STEPS_ITEMS_YAML)
    rows = [{"prompt": p, "steps": s, "scores": v} for i, (p, s, v) in STEP_SCORES.items() if i not in skip]
    rows += [{"prompt": "What is 3*4?", "answer": "12", "score": 1.0}, {"prompt": "What is 3*4?", "answer": "13", "score": 0.0}]
    (folder / "scores.jsonl").write_text(lines(*rows))


def test_a_run_on_step_scores_gives_the_outcomes_worked_out_by_hand(pytester):
    write_steps_run(pytester.path)
    result = pytester.runpytest("--rm-model=scores:scores.jsonl", "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider")
    items = report_items(pytester)
    assert {i: (item["outcome"], item["details"].get("prediction")) for i, item in items.items() if i != "p1"} == EXPECTED_STEPS
    for item_id, (_, steps, scores) in STEP_SCORES.items():
        assert items[item_id]["details"]["step_scores"] == scores
    assert items["p1"]["outcome"] == "correct" and (items["p1"]["chosen_score"], items["p1"]["rejected_score"]) == (1.0, 0.0)
    assert result.ret == 0 and result.parseoutcomes() == {"passed": 4, "incorrect": 2}


def test_a_missing_steps_entry_errors_that_item_only(pytester):
    write_steps_run(pytester.path, skip={"st4"})
    result = pytester.runpytest("--rm-model=scores:scores.jsonl", "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider")
    assert result.ret == 1
    items = report_items(pytester)
    assert [i for i, item in items.items() if item["outcome"] == "error"] == ["st4"]
    assert items["st4"]["error"] == (
        "scoring failed: MissingScoreError: no step scores in scores.jsonl for the 2 step(s) starting '3*4 = 12' "
        "of the prompt 'What is 3*4?' (it has step scores for this prompt, but not for these steps)"
    )
    expected = {i: o for i, (o, _) in EXPECTED_STEPS.items() if i != "st4"}
    assert {i: item["outcome"] for i, item in items.items() if i not in ("st4", "p1")} == expected
    assert result.parseoutcomes() == {"passed": 3, "errors": 1, "incorrect": 2}


@pytest.mark.parametrize("xdist", [[], ["-n", "2", "--rm-chunk-size=1"]], ids=["one-process", "xdist"])
def test_step_scores_saved_by_rm_save_scores_replay_to_identical_records(pytester, xdist):
    write_steps_run(pytester.path)
    args = ["--rm-report=run.json", "--rm-no-store", "--rm-no-cache", "-p", "no:cacheprovider"]
    first = pytester.runpytest("--rm-model=scores:scores.jsonl", "--rm-save-scores=saved.jsonl", *args, *xdist)
    original = report_items(pytester)
    assert read_scores(str(pytester.path / "saved.jsonl")) == read_scores(str(pytester.path / "scores.jsonl"))
    saved = [json.loads(line) for line in (pytester.path / "saved.jsonl").read_text().splitlines()]
    assert sorted(row["scores"] for row in saved if "steps" in row) == sorted(v for _, _, v in STEP_SCORES.values())
    assert all(set(row) in ({"prompt", "steps", "scores"}, {"prompt", "answer", "score"}) for row in saved)
    replay = pytester.runpytest("--rm-model=scores:saved.jsonl", *args)
    replayed = report_items(pytester)
    assert first.ret == replay.ret == 0
    assert original == replayed
    assert {i: item["outcome"] for i, item in replayed.items() if i != "p1"} == {i: o for i, (o, _) in EXPECTED_STEPS.items()}


def test_a_score_that_depends_on_a_rubric_is_not_written(tmp_path):
    """A {prompt, answer, score} line cannot hold a grader's rubric: two rubrics would share a line."""
    from pytest_rmbench.storage.scorefile import ScoreWriter

    writer = ScoreWriter(str(tmp_path / "s.jsonl"))
    plain, graded = ScoreRequest("p", "a"), ScoreRequest("p", "a", rubric="be concise")
    assert writer.write([(graded, ScoreResult(3.0))]) == 0
    assert writer.write([(plain, ScoreResult(1.0))]) == 1
    writer.close()
    assert (tmp_path / "s.jsonl").read_text().count("\n") == 1
