"""Trust under real use: a failure anywhere in the per-item path costs items, never the run;
outputs are checked before scoring; options are range-checked; a key is never echoed."""

import json
import os
import stat
import threading

import pytest

ITEMS = [{"id": i, "subset": "a" if i % 2 else "b", "prompt": f"question {i}", "chosen": f"a long good answer {i}",
          "rejected": f"bad {i}"} for i in range(12)]

# A model whose failures are chosen by the test: FAULT=<stage> in the environment.
FAULTY_CONFTEST = """
import errno, math, os
import pytest
from pytest_rmbench.models.base import Prepared

FAULT = os.environ.get("FAULT", "")

class Faulty:
    kind = "faulty"; dtype = "float32"; device = "cpu"; name = "faulty"
    def prepare(self, requests):
        if FAULT == "prepare":
            raise ValueError("tokenizer exploded\\nsecond line")
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        if FAULT == "score":
            raise RuntimeError("CUDA error: device-side assert triggered")
        if FAULT == "nan":
            return [float("nan") if "answer 3" in p.request.answer else float(len(p.request.answer)) for p in batch]
        if FAULT == "inf":
            return [math.inf for p in batch]
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Faulty()

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return "faulty-v1"

PATCHES = []  # (owner, name, original): undone at the end, since pytester runs share this process

def patch(owner, name, value):
    PATCHES.append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)

def pytest_unconfigure(config):
    while PATCHES:
        owner, name, original = PATCHES.pop()
        setattr(owner, name, original)

def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")

if FAULT == "cache-write":
    from pytest_rmbench.storage import cache
    patch(cache.ScoreCache, "put_many", no_space)
if FAULT == "score-file":
    from pytest_rmbench.storage import scorefile
    patch(scorefile.ScoreWriter, "write", no_space)
if FAULT == "store":
    from pytest_rmbench.storage import store
    def record_run(self, report, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    patch(store.RunStore, "record_run", record_run)
if FAULT == "engine":
    from pytest_rmbench import engine
    def item_outcome(item, results, rules):
        raise KeyError("a bug in an item rule")
    patch(engine, "item_outcome", item_outcome)
"""

OUTPUTS = ["--rm-report=out/run.json", "--rm-html=out/run.html", "--rm-markdown=out/run.md", "--junitxml=out/junit.xml",
           "--rm-save-scores=out/scores.jsonl"]


def write_items(pytester, items=ITEMS, name="items"):
    (pytester.path / f"{name}.rmbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))


def read_report(pytester):
    return json.loads((pytester.path / "out" / "run.json").read_text())


@pytest.mark.parametrize("fault, errored, reason", [
    ("prepare", 12, "could not prepare the input: ValueError: tokenizer exploded"),
    ("score", 12, "scoring failed: RuntimeError: CUDA error: device-side assert triggered"),
    ("nan", 1, "the model returned a non-finite score for chosen: nan"),
    ("inf", 12, "the model returned a non-finite score for chosen: inf"),
    ("cache-write", 12, "could not write the score cache *scores.sqlite: OSError: [[]Errno 28[]] No space left on device"),
    ("score-file", 12, "could not write --rm-save-scores=*scores.jsonl: OSError: [[]Errno 28[]] No space left on device"),
    ("engine", 12, "scoring failed: KeyError: 'a bug in an item rule'"),
])
def test_a_fault_at_any_stage_errors_the_items_and_keeps_the_run(pytester, subprocess_env, monkeypatch, fault, errored,
                                                                 reason):
    monkeypatch.setenv("FAULT", fault)
    pytester.makeconftest(FAULTY_CONFTEST)
    write_items(pytester)
    result = pytester.runpytest_subprocess("--rm-model=faulty", *OUTPUTS, "-p", "no:cacheprovider")
    assert result.ret == 1, "the gate's exit status: an errored item fails it (never 3, INTERNALERROR)"
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    result.stdout.fnmatch_lines([f"error: {reason}", "*item(s) errored, needs none: FAIL", "gate: FAILED"])
    data = read_report(pytester)
    assert len(data["items"]) == 12 and data["overall"]["errors"] == errored
    for item in data["items"]:
        if item["outcome"] == "error":
            assert "\n" not in item["error"]  # one line
    for name in ("run.html", "run.md", "junit.xml"):
        assert (pytester.path / "out" / name).stat().st_size > 0, name
    assert data["run"]["id"] is not None, "the run is still recorded"
    assert (pytester.path / "out" / "scores.jsonl").exists()
    junit = (pytester.path / "out" / "junit.xml").read_text()
    assert junit.count("<testcase") == 12 and 'name="rm_gate_passed" value="False"' in junit


def test_a_store_that_cannot_be_written_loses_nothing_else(pytester, subprocess_env, monkeypatch):
    monkeypatch.setenv("FAULT", "store")
    pytester.makeconftest(FAULTY_CONFTEST)
    write_items(pytester)
    result = pytester.runpytest_subprocess("--rm-model=faulty", *OUTPUTS, "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["warning: the run could not be recorded in the run store: OSError: *Read-only file system"])
    assert len(read_report(pytester)["items"]) == 12


def test_an_unexpected_exception_is_an_item_error_not_internalerror(pytester):
    """The old repr_failure passed `style` to Function.repr_failure, which takes only excinfo."""
    pytester.makeconftest("""
import pytest
@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    from pytest_rmbench.models.builtin import BuiltinModel
    return BuiltinModel("length")
""")
    write_items(pytester, ITEMS[:3])
    pytester.makepyfile(conftest_extra="")
    from pytest_rmbench import collect

    item = collect.BenchmarkTest.repr_failure
    assert list(__import__("inspect").signature(item).parameters) == ["self", "excinfo"]
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-no-store", "--rm-cache-dir=cache")
    assert result.ret == 0


@pytest.mark.parametrize("option", ["--rm-save-scores", "--rm-report", "--rm-html", "--rm-markdown", "--rm-store"])
@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_an_output_that_cannot_be_written_is_a_usage_error_before_scoring(pytester, option, where):
    write_items(pytester, ITEMS[:2])
    (pytester.path / "afile").write_text("x")
    (pytester.path / "afolder").mkdir()
    path = "afolder" if where == "folder" else "afile/out.json"
    result = pytester.runpytest("--rm-model=builtin:length", f"{option}={path}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: pytest-rmbench: {option}={path}: *"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / ".rmbench" / "scores.sqlite").exists(), "nothing was scored"


def test_a_cache_dir_under_a_file_is_a_usage_error(pytester):
    write_items(pytester, ITEMS[:2])
    (pytester.path / "afile").write_text("x")
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-cache-dir=afile/cache")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: pytest-rmbench: --rm-cache-dir=afile/cache: */afile is a file, not a folder"])


def test_missing_parent_folders_are_created(pytester):
    write_items(pytester, ITEMS[:2])
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-no-store", "--rm-report=new/deeper/run.json")
    assert result.ret == 0 and (pytester.path / "new" / "deeper" / "run.json").exists()


def test_a_symlinked_report_is_written_through_the_link(pytester):
    write_items(pytester, ITEMS[:2])
    (pytester.path / "real").mkdir()
    os.symlink("real/run.json", pytester.path / "link.json")
    assert pytester.runpytest("--rm-model=builtin:length", "--rm-no-store", "--rm-report=link.json").ret == 0
    assert os.path.islink(pytester.path / "link.json"), "the link stays"
    assert json.loads((pytester.path / "real" / "run.json").read_text())["overall"]["n"] == 2


def test_a_fifo_is_written_directly(pytester):
    write_items(pytester, ITEMS[:2])
    fifo = pytester.path / "pipe.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, encoding="utf-8").read()))
    reader.start()
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-no-store", f"--rm-report={fifo}")
    reader.join(timeout=60)
    assert result.ret == 0
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "still a FIFO"
    assert json.loads(got[0])["overall"]["n"] == 2


def test_dev_stdout_is_written_directly(pytester):
    write_items(pytester, ITEMS[:2])
    result = pytester.runpytest_subprocess("--rm-model=builtin:length", "--rm-no-store", "--rm-report=/dev/stdout")
    assert result.ret == 0
    assert '"overall": {' in result.stdout.str()
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("args, says", [
    (["--rm-max-regression", "2"], "--rm-max-regression: must be between 0 and 1, got 2"),
    (["--rm-max-regression", "nan"], "--rm-max-regression: must be between 0 and 1, got nan"),
    (["--rm-timeout", "0"], "--rm-timeout: must be greater than 0, got 0"),
    (["--rm-concurrency", "0"], "--rm-concurrency: must be at least 1, got 0"),
    (["--rm-beta", "-1"], "--rm-beta: must be greater than 0, got -1"),
    (["--rm-head", "-1"], "--rm-head: must be at least 0, got -1"),
    (["--rm-head-weights", "1,x"], "--rm-head-weights: expected numbers separated by commas, got '1,x'"),
    (["--rm-step-threshold", "1.5"], "--rm-step-threshold: must be between 0 and 1, got 1.5"),
    (["--rm-batch-size", "0"], "--rm-batch-size: must be at least 1, got 0"),
    (["--rm-min-accuracy", "overall=1.2"], "*threshold for 'overall' must be a number in [[]0, 1[]], got*"),
    (["--rm-kind", "builtin"], "--rm-kind builtin needs --rm-model=builtin:..., got --rm-model=foo"),
])
def test_numeric_and_kind_options_are_checked_at_start(pytester, args, says):
    write_items(pytester, ITEMS[:2])
    model = "foo" if "--rm-kind" in args else "builtin:length"
    result = pytester.runpytest(f"--rm-model={model}", *args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: *{says}"])


def test_a_key_given_as_the_variable_name_is_never_echoed(pytester):
    write_items(pytester, ITEMS[:2])
    key = "sk-proj-THISISASECRET123"
    result = pytester.runpytest_subprocess("--rm-model=http://127.0.0.1:9", f"--rm-api-key-env={key}",
                                           "--rm-report=run.json", "--junitxml=j.xml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --rm-api-key-env takes the NAME of an environment variable*not shown"])
    everything = result.stdout.str() + result.stderr.str()
    for path in pytester.path.rglob("*"):
        if path.is_file():
            everything += path.read_bytes().decode("utf-8", "replace")
    assert "THISISASECRET" not in everything


def test_a_fully_cached_rerun_reports_what_the_scores_came_from(pytester):
    pytester.makeconftest(FAULTY_CONFTEST)
    write_items(pytester)
    assert pytester.runpytest("--rm-model=faulty", "--rm-report=out/run.json", "-p", "no:cacheprovider").ret == 0
    first = read_report(pytester)["run"]
    assert first["scores_from_cache"] is False
    result = pytester.runpytest("--rm-model=faulty", "--rm-report=out/run.json", "-p", "no:cacheprovider")
    assert result.ret == 0
    run = read_report(pytester)["run"]
    assert (run["kind"], run["dtype"], run["device"], run["scores_from_cache"]) == ("faulty", "float32", "cpu", True)
    result.stdout.fnmatch_lines(["=*= rmbench: faulty (faulty, float32, cpu; every score from the score cache) =*="])


def test_incorrect_items_show_scores_and_answers_under_r_i(pytester):
    rows = [dict(r, chosen="no", rejected=f"a much longer answer that wins {r['id']}") for r in ITEMS[:3]] + ITEMS[3:6]
    write_items(pytester, rows)
    plain = pytester.runpytest("--rm-model=builtin:length", "--rm-no-store")
    assert "chosen   score" not in plain.stdout.str()
    for flag in ("-r", "-v"):
        result = pytester.runpytest("--rm-model=builtin:length", "--rm-no-store", *(["-r", "i"] if flag == "-r" else ["-v"]))
        result.stdout.fnmatch_lines([
            "incorrect (3):",
            "  items.rmbench.jsonl::b/0  margin -30",
            "    chosen   score 2: no",
            "    rejected score 32: a much longer answer that wins 0",
            "    margin -30 (must be > 0)",
        ])


def test_a_long_list_of_error_messages_ends_with_and_n_more(pytester, monkeypatch):
    monkeypatch.setenv("FAULT", "prepare")
    pytester.makeconftest(FAULTY_CONFTEST.replace('raise ValueError("tokenizer exploded\\nsecond line")',
                                                  'raise ValueError("tokenizer exploded on " + requests[0].answer)'))
    write_items(pytester, ITEMS[:8])
    result = pytester.runpytest("--rm-model=faulty", "--rm-no-store")
    result.stdout.fnmatch_lines(["error: could not prepare the input: ValueError: tokenizer exploded on *"] * 5
                                + ["  ... and 3 more error message(s) (--rm-report has every item)"])


PROGRESS_CONFTEST = FAULTY_CONFTEST + """
import time
from pytest_rmbench import progress
patch(progress, "PLAIN_EVERY", 0.0)  # a line at every chance, so a short test sees them
patch(progress, "FIRST_AFTER", 0.0)
_score = Faulty.score_batch
def slow(self, batch):
    time.sleep(0.01)
    return _score(self, batch)
Faulty.score_batch = slow
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_progress_lines_with_rate_and_eta_when_not_a_terminal(pytester, workers):
    pytester.makeconftest(PROGRESS_CONFTEST)
    write_items(pytester, ITEMS * 1)
    result = pytester.runpytest_subprocess("--rm-model=faulty", "--rm-no-store", "--rm-batch-size=2", "-q", *workers)
    assert result.ret == 0
    result.stdout.re_match_lines([r"rmbench: \d+ of 12 items scored, [\d.,]+ items/s(, ETA \d+s)?"])
    if not workers:  # the model's load and its time, from the process that loaded it
        result.stdout.re_match_lines([r"rmbench: loading faulty \.\.\.", r"rmbench: loaded faulty in \d+\.\ds \(faulty, float32, cpu\)"])
    assert "12 passed" in result.stdout.str()


def test_the_html_page_and_json_report_carry_each_items_texts_and_the_store_does_not(pytester):
    rows = [dict(ITEMS[0], prompt="What is <script>alert(1)</script>?", chosen="x" * 30_000)] + ITEMS[1:3]
    write_items(pytester, rows)
    assert pytester.runpytest("--rm-model=builtin:length", "--rm-html=out/run.html", "--rm-report=out/run.json").ret == 0
    page = (pytester.path / "out" / "run.html").read_text()
    assert "What is &lt;script&gt;alert(1)&lt;/script&gt;?" in page and "<script>alert(1)" not in page
    texts = read_report(pytester)["items"][0]["texts"]
    assert texts["prompt"] == rows[0]["prompt"] and texts["rejected"] == rows[0]["rejected"]
    assert texts["chosen"].endswith("[... 10,000 more characters]")  # clipped, and says so
    from pytest_rmbench.storage.store import open_store

    stored = open_store(pytester.path / ".rmbench" / "runs.sqlite").get_run(1)
    assert all("texts" not in item for item in stored["items"])
