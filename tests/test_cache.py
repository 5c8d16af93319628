"""The persistent score cache: reuse, resume after an interruption, corruption, bypass."""

import json
import sqlite3

import pytest

from pytest_rmbench.storage.cache import ScoreCache
from pytest_rmbench.items import ScoreRequest, ScoreResult

CONFTEST = """
import json, os
import pytest
from pytest_rmbench.models.base import Prepared

class Counting:
    kind = "counting"; dtype = "n/a"; device = "cpu"; name = "counting"
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        if os.path.exists("interrupt-after") and len(open("batches.log").read().splitlines() if os.path.exists("batches.log") else []) >= int(open("interrupt-after").read()):
            raise KeyboardInterrupt
        with open("batches.log", "a") as fh:
            fh.write(json.dumps([p.request.answer for p in batch]) + "\\n")
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    with open("loads.log", "a") as fh:
        fh.write("load\\n")
    return Counting()

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return "counting-v1"
"""


def write_items(pytester, n):
    lines = [json.dumps({"id": i, "subset": "s", "prompt": f"p{i}", "chosen": f"good answer {i}", "rejected": f"bad {i}"}) for i in range(n)]
    (pytester.path / "items.rmbench.jsonl").write_text("\n".join(lines) + "\n")


def scored(pytester):
    log = pytester.path / "batches.log"
    seqs = [a for line in log.read_text().splitlines() for a in json.loads(line)] if log.exists() else []
    log.unlink(missing_ok=True)
    return seqs


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    write_items(pytester, 10)
    return pytester


def run(pytester, *args, subprocess=False):
    runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return runner("--rm-model=counting", "--rm-batch-size", "4", "--rm-report=run.json", *args)


def test_second_run_reads_everything_from_the_cache_and_loads_no_model(suite):
    run(suite).assert_outcomes(passed=10)
    assert len(scored(suite)) == 20
    (suite.path / "loads.log").unlink()
    result = run(suite)
    result.assert_outcomes(passed=10)
    assert scored(suite) == []
    assert not (suite.path / "loads.log").exists(), "a fully cached run never loads the model"
    result.stdout.fnmatch_lines(["score cache: 20 of 20 sequences read from the cache*"])
    first = json.loads((suite.path / "run.json").read_text())["items"]
    assert first[0]["chosen_score"] == float(len("good answer 0"))


def test_added_items_are_the_only_ones_scored(suite):
    run(suite)
    scored(suite)
    write_items(suite, 12)
    run(suite).assert_outcomes(passed=12)
    assert sorted(scored(suite)) == sorted(["good answer 10", "bad 10", "good answer 11", "bad 11"])


def test_no_cache_rescoring_everything(suite):
    run(suite)
    scored(suite)
    run(suite, "--rm-no-cache")
    assert len(scored(suite)) == 20


def test_interrupted_run_keeps_finished_batches_and_the_next_run_resumes(suite):
    (suite.path / "interrupt-after").write_text("2")
    result = run(suite, subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert len(scored(suite)) == 8  # two batches of 4 finished before Ctrl-C
    (suite.path / "interrupt-after").unlink()
    run(suite).assert_outcomes(passed=10)
    assert len(scored(suite)) == 12, "only what the interrupted run did not finish"


def test_corrupt_cache_is_moved_aside_and_rebuilt(suite):
    run(suite)
    scored(suite)
    db = suite.path / ".rmbench" / "scores.sqlite"
    for extra in db.parent.glob("scores.sqlite-*"):
        extra.unlink()
    db.write_bytes(b"this is not a database" * 100)
    result = run(suite)
    result.assert_outcomes(passed=10)
    assert "was unreadable" in result.stdout.str() and "moved to" in result.stdout.str()
    assert len(scored(suite)) == 20
    assert list(db.parent.glob("scores.sqlite.corrupt-*"))
    run(suite)
    assert scored(suite) == []


def test_cache_dir_option_and_xdist_workers_share_the_cache(suite):
    suite.runpytest_subprocess("--rm-model=counting", "--rm-cache-dir", "elsewhere", "-n", "2", "--rm-chunk-size", "3")
    assert (suite.path / "elsewhere" / "scores.sqlite").exists()
    assert len(scored(suite)) == 20
    suite.runpytest_subprocess("--rm-model=counting", "--rm-cache-dir", "elsewhere", "-n", "2", "--rm-chunk-size", "3")
    assert scored(suite) == []


def test_cache_round_trip_and_errors_not_stored(tmp_path):
    cache = ScoreCache(str(tmp_path / "c.sqlite"))
    a, b, c = ScoreRequest("p", "a"), ScoreRequest((("user", "p"),), "a"), ScoreRequest("p", "c")
    cache.put_many("m", [(a, ScoreResult(1.5, True)), (b, ScoreResult(2.0)), (c, ScoreResult(None, error="boom"))])
    got = cache.get_many("m", [a, b, c])
    assert got == {a: ScoreResult(1.5, True), b: ScoreResult(2.0, False)}
    assert cache.get_many("other-model", [a]) == {}
    rows = sqlite3.connect(tmp_path / "c.sqlite").execute("select count(*) from scores").fetchone()[0]
    assert rows == 2
