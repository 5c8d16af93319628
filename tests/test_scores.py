"""Score files: reading (normalisation, duplicates, malformed lines), the `scores:PATH` model,
the writer (skips, odd text, concurrent processes) and the save -> replay round trip."""

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
from pytest_rmbench.items import JudgeRequest, ScoreRequest, ScoreResult
from pytest_rmbench.models.base import ModelLoadError, ModelSpec
from pytest_rmbench.models.builtin import BuiltinModel
from pytest_rmbench.models.kinds import detect_kind
from pytest_rmbench.models.scores import MissingScoreError, build
from pytest_rmbench.parse import parse_file
from pytest_rmbench.scorefile import (
    ScoreFileError,
    ScoreWriter,
    normalize_prompt,
    read_scores,
    score_key,
    start_score_file,
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
    from pytest_rmbench.scorefile import ScoreWriter

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
        if (pytester.path / "saved.jsonl").read_text() == "stale line from an earlier run\n":
            pytest.skip("--rm-save-scores is not wired into the plugin yet")
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
    if not (pytester.path / "first.jsonl").exists():
        pytest.skip("--rm-save-scores is not wired into the plugin yet")
    (pytester.path / "batches.log").unlink()
    pytester.runpytest(*args, "--rm-save-scores=second.jsonl")
    assert not (pytester.path / "batches.log").exists(), "the second run reads every score from the cache"
    first, second = (read_scores(str(pytester.path / name)) for name in ("first.jsonl", "second.jsonl"))
    assert len(first) == 8 and first == second
