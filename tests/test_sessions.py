"""Real pytest sessions (pytester): collection, outcomes, report, and every exit-status rule."""

import json

import pytest

from pytest_rmbench.report.terminal import NOT_LOADED

SUITE = """\
name: demo
sections:
  Chat: [chat, chat-hard]
items:
  - {id: greet, subset: chat, prompt: hi, chosen: hello there, rejected: hey}
  - {id: 2, subset: chat, prompt: bye, chosen: goodbye, rejected: ok}
  - {id: trap, subset: chat, prompt: q, chosen: nope, rejected: a long wrong answer}
  - {id: h1, subset: chat-hard, prompt: p, chosen: longer answer, rejected: short}
  - {id: m1, subset: math, prompt: 1+1, chosen: two is it, rejected: three}
  - {id: m2, subset: math, prompt: 2+2, chosen: four, rejected: fiver}
"""
# builtin:length: greet ok, 2 ok, trap incorrect, h1 ok, m1 ok, m2 incorrect
# chat 2/3, chat-hard 1/1, math 1/2, overall 4/6

COUNTING_CONFTEST = """
import json, math, os
import pytest
from pytest_rmbench.models.base import ModelLoadError, Prepared

class Counting:
    kind = "counting"; dtype = "n/a"; device = "cpu"
    def __init__(self, name):
        self.name = name
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        with open("batches.log", "a") as fh:
            fh.write(json.dumps([p.request.answer for p in batch]) + "\\n")
        return [float("nan") if "NAN" in p.request.answer else float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    with open("loads.log", "a") as fh:
        fh.write(spec.model + "\\n")
    if spec.model == "broken":
        raise ModelLoadError("weights are missing: BROKEN-MODEL-MARKER")
    if spec.model.startswith("counting"):
        return Counting(spec.model)
"""


@pytest.fixture
def suite(pytester):
    pytester.makefile(".rmbench.yaml", demo=SUITE)
    return pytester


def report(pytester, name="run.json"):
    return json.loads((pytester.path / name).read_text())


def test_one_test_per_item_with_node_ids(suite):
    result = suite.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "demo.rmbench.yaml::chat/greet",
        "demo.rmbench.yaml::chat/2",
        "demo.rmbench.yaml::chat/trap",
        "demo.rmbench.yaml::chat-hard/h1",
        "demo.rmbench.yaml::math/m1",
        "demo.rmbench.yaml::math/m2",
        "6 tests collected*",
    ])


def test_collect_only_loads_no_model(suite):
    suite.makeconftest(COUNTING_CONFTEST)
    result = suite.runpytest("--collect-only", "--rm-model=counting")
    assert result.ret == 0
    assert not (suite.path / "loads.log").exists()


def test_without_model_items_are_skipped_with_a_reason(suite):
    result = suite.runpytest("-rs")
    result.assert_outcomes(skipped=6)
    result.stdout.fnmatch_lines(["*no reward model: run with --rm-model=PATH*"])
    assert result.ret == 0


def test_subset_selection_with_k_and_marker(suite):
    result = suite.runpytest("--rm-model=builtin:length", "-k", "math")
    result.assert_outcomes(passed=1, deselected=4)  # chat-hard has "math"? no: 2 math items, one incorrect
    assert "1 incorrect" in result.stdout.str()
    result = suite.runpytest("--rm-model=builtin:length", "-m", "rm_subset", "--strict-markers")
    assert result.ret == 0


def test_incorrect_has_its_own_status_and_report_text(suite):
    result = suite.runpytest("--rm-model=builtin:length", "-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*chat/greet PASSED*", "*chat/trap INCORRECT*", "*math/m2 INCORRECT*"])
    result.stdout.fnmatch_lines(["*4 passed, 2 incorrect*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == 0  # no gate: wrong predictions alone do not fail the run
    result.stdout.fnmatch_lines(["gate: no gate was set*"])


def test_incorrect_counts_for_junit_and_last_failed(suite):
    suite.runpytest("--rm-model=builtin:length", "--junitxml=junit.xml", "-p", "cacheprovider")
    xml = (suite.path / "junit.xml").read_text()
    assert xml.count("<failure") == 2
    assert "margin -15 (must be &gt; 0)" in xml and "chosen   score 4: nope" in xml
    assert '<property name="rm_margin" value="-15.0"' in xml and '<property name="rm_subset" value="chat"' in xml
    assert '<property name="rm_accuracy_overall" value="0.6666666666666666"' in xml
    assert '<property name="rm_accuracy_section_Chat" value="0.75"' in xml
    result = suite.runpytest("--rm-model=builtin:length", "--lf", "-v", "-p", "cacheprovider")
    result.stdout.fnmatch_lines(["*chat/trap INCORRECT*", "*math/m2 INCORRECT*"])
    result.stdout.fnmatch_lines(["*= 2 incorrect in*"])
    result.stdout.fnmatch_lines(["partial run: the gate covers 2 of 6 items*"])


def test_json_report_schema_and_values(suite):
    result = suite.runpytest("--rm-model=builtin:length", "--rm-report=run.json")
    assert result.ret == 0
    data = report(suite)
    assert set(data) >= {"run", "items", "subsets", "sections", "overall", "length_baseline", "gate"}
    assert data["run"]["model"] == "builtin:length" and data["run"]["kind"] == "builtin"
    assert [i["id"] for i in data["items"]] == ["greet", "2", "trap", "h1", "m1", "m2"]
    first = data["items"][0]
    assert first["chosen_longer"] is True and len(first["content_hash"]) == 32 and first["prompt_hash"]
    assert {k: first[k] for k in ("nodeid", "file", "id", "subset", "outcome", "chosen_score", "rejected_score",
                                  "margin", "truncated")} == {
        "nodeid": "demo.rmbench.yaml::chat/greet", "file": "demo.rmbench.yaml", "id": "greet", "subset": "chat",
        "outcome": "correct", "chosen_score": 11.0, "rejected_score": 3.0, "margin": 8.0, "truncated": False,
    }
    chat = data["subsets"]["chat"]
    assert (chat["n"], chat["correct"], chat["errors"]) == (3, 2, 0)
    assert chat["accuracy"] == pytest.approx(2 / 3)
    assert chat["mean_margin"] == pytest.approx((8 + 5 - 15) / 3)
    assert chat["ci_low"] == pytest.approx(0.2077, abs=1e-3) and chat["ci_high"] == pytest.approx(0.9385, abs=1e-3)
    # count-weighted section = pooled over chat (2/3) and chat-hard (1/1)
    assert data["sections"]["Chat"] == {"n": 4, "accuracy": 0.75, "subsets": ["chat", "chat-hard"], "weights": {"chat": None, "chat-hard": None}}
    assert data["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert data["length_baseline"]["accuracy"] == pytest.approx(4 / 6)
    # builtin:length is right exactly when the chosen answer is longer
    assert data["length_bias"] == {"chosen_longer": {"n": 4, "accuracy": 1.0}, "chosen_shorter": {"n": 2, "accuracy": 0.0}}
    assert data["gate"] == {"configured": False, "passed": True, "checks": []}
    assert "torch" not in data["run"]["versions"]


def test_weighted_section(suite):
    suite.runpytest("--rm-model=builtin:length", "--rm-section", "Mix=chat:1,math:3", "--rm-report=run.json")
    # (1 * 2/3 + 3 * 1/2) / 4
    assert report(suite)["sections"]["Mix"]["accuracy"] == pytest.approx((2 / 3 + 1.5) / 4)


@pytest.mark.parametrize(
    "args, code",
    [
        (["--rm-min-accuracy", "overall=0.6"], 0),
        (["--rm-min-accuracy", "overall=0.7"], 1),
        (["--rm-min-accuracy", "chat-hard=1.0"], 0),
        (["--rm-min-accuracy", "math=0.51"], 1),
        (["--rm-min-accuracy", "Chat=0.75"], 0),
        (["--rm-min-accuracy", "Chat=0.76"], 1),
    ],
)
def test_thresholds_move_the_exit_status(suite, args, code):
    result = suite.runpytest("--rm-model=builtin:length", *args)
    assert result.ret == code
    result.stdout.fnmatch_lines(["gate: PASSED" if code == 0 else "gate: FAILED"])


def test_threshold_precedence_command_line_then_ini_then_file(pytester):
    pytester.makefile(".rmbench.yaml", demo=SUITE.replace("items:", "gate: {overall: 0.9}\nitems:", 1))
    assert pytester.runpytest("--rm-model=builtin:length").ret == 1  # file header: 0.667 < 0.9
    pytester.makeini("[pytest]\nrm_min_accuracy =\n    overall=0.5\n")
    assert pytester.runpytest("--rm-model=builtin:length").ret == 0  # ini beats the file
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-min-accuracy", "overall=0.8", "--rm-report=run.json")
    assert result.ret == 1  # command line beats ini
    (check,) = report(pytester)["gate"]["checks"]
    assert (check["name"], check["threshold"], check["passed"]) == ("overall", 0.8, False)
    assert report(pytester)["gate"]["configured"] is True


def test_ini_model_setting(suite):
    suite.makeini("[pytest]\nrm_model = builtin:length\n")
    result = suite.runpytest()
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--rm-min-accuracy", "nosuch=0.5"], "threshold 'nosuch' (from command line) matches no subset or section"),
        (["--rm-section", "chat=math"], "'chat' is both a section and a subset"),
        (["--rm-section", "X=ghost"], "lists subset 'ghost'"),
        (["--rm-min-accuracy", "overall=high"], "must be a number in [0, 1]"),
    ],
)
def test_bad_gate_names_are_usage_errors(suite, args, words):
    result = suite.runpytest("--rm-model=builtin:length", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert words in result.stderr.str()
    if "nosuch" in args[1]:
        assert "Known names: overall, section Chat, chat, chat-hard, math" in result.stderr.str()


def test_threshold_on_deselected_items_is_not_run(suite):
    result = suite.runpytest("--rm-model=builtin:length", "-k", "chat", "--rm-min-accuracy", "math=0.9", "--rm-report=run.json")
    assert result.ret == 0
    (check,) = report(suite)["gate"]["checks"]
    assert check["passed"] is None and check["status"] == "not run"
    result.stdout.fnmatch_lines(["partial run: the gate covers 4 of 6 items*", "*math not run (no items selected), needs >= 0.900: not run*"])


def test_strict_item_incorrect_fails_the_gate(pytester):
    pytester.makefile(".rmbench.yaml", demo=SUITE.replace("{id: trap,", "{strict: true, id: trap,"))
    result = pytester.runpytest("--rm-model=builtin:length")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*strict items: every strict item must pass: FAIL (failed: demo.rmbench.yaml::chat/trap)"])


def test_file_level_strict(pytester):
    pytester.makefile(".rmbench.yaml", demo="strict: true\n" + SUITE)
    assert pytester.runpytest("--rm-model=builtin:length").ret == 1
    pytester.makefile(".rmbench.yaml", demo="strict: true\n" + SUITE.replace("  - {id: trap", "  #").replace("  - {id: m2", "  #"))
    assert pytester.runpytest("--rm-model=builtin:length").ret == 0


def test_failing_ordinary_test_still_fails_the_run(suite):
    suite.makepyfile(test_other="def test_bad():\n    assert False\n")
    result = suite.runpytest("--rm-model=builtin:length", "--rm-min-accuracy", "overall=0.5")
    result.stdout.fnmatch_lines(["gate: PASSED"])
    assert result.ret == 1


def test_bad_items_error_and_the_rest_runs(pytester):
    pytester.makefile(".rmbench.yaml", demo=SUITE + "  - {id: broken, subset: chat, prompt: p, chosen: '', rejected: r}\n  - {id: greet, subset: math, prompt: p, chosen: c, rejected: r}\n")
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json")
    result.assert_outcomes(passed=4, errors=2)
    out = result.stdout.str()
    assert "demo.rmbench.yaml:11: item #6 (id 'broken'): field 'chosen': is empty" in out
    assert "field 'id': duplicate id 'greet' (first used by item #0)" in out
    assert result.ret == 1
    data = report(pytester)
    assert data["overall"]["errors"] == 2 and data["overall"]["n"] == 6
    assert [c["name"] for c in data["gate"]["checks"]] == ["errors"]


def test_bad_items_without_model_fail_the_run(pytester):
    pytester.makefile(".rmbench.yaml", demo=SUITE + "  - {id: broken, subset: chat}\n")
    result = pytester.runpytest()
    result.assert_outcomes(skipped=6, errors=1)
    assert result.ret == 1


def test_unparseable_file_is_a_collection_error_naming_file_and_line(pytester):
    pytester.makefile(".rmbench.yaml", demo="items:\n  - {id: a, subset: s\n")
    pytester.makefile(".rmbench.jsonl", other=b'{"id": 1, "subset": "s", "prompt": "p", "chosen": "c", "rejected": "r"}\n{oops\n'.decode())
    result = pytester.runpytest("--rm-model=builtin:length")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*demo.rmbench.yaml:2: invalid YAML*", "*other.rmbench.jsonl:2: invalid JSON*"])


def test_non_utf8_file(pytester):
    (pytester.path / "bad.rmbench.jsonl").write_bytes(b'{"id": 1}\n{"id": "\xff"}\n')
    result = pytester.runpytest("--rm-model=builtin:length")
    result.stdout.fnmatch_lines(["*bad.rmbench.jsonl:2: not valid UTF-8*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_unknown_fields_warn_once_per_file(pytester):
    pytester.makefile(".rmbench.yaml", demo="author: me\n" + SUITE.replace("{id: greet,", "{colour: red, id: greet,").replace("{id: 2,", "{colour: blue, id: 2,"))
    result = pytester.runpytest("--rm-model=builtin:length")
    out = result.stdout.str()
    assert out.count("unknown field(s) ignored: author, colour") == 1


def test_nan_score_errors_that_item_and_keeps_the_rest(pytester):
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makefile(".rmbench.yaml", demo=SUITE.replace("chosen: four", "chosen: NAN"))
    result = pytester.runpytest("--rm-model=counting", "--rm-report=run.json")
    result.stdout.fnmatch_lines(["*4 passed, 1 error, 1 incorrect*"])
    assert result.ret == 1
    text = (pytester.path / "run.json").read_text()
    assert "NaN" not in text
    m2 = [i for i in json.loads(text)["items"] if i["id"] == "m2"][0]
    assert m2["outcome"] == "error" and m2["chosen_score"] is None and m2["margin"] is None
    result.stdout.fnmatch_lines(["*non-finite score for chosen*"])


def test_model_load_failure_is_shown_once_and_every_item_errors(suite):
    suite.makeconftest(COUNTING_CONFTEST)
    result = suite.runpytest("--rm-model=broken", "--rm-report=run.json", "--rm-min-accuracy=overall=0.5", "-ra")
    assert result.parseoutcomes() == {"unscored": 6}
    assert result.ret == 1
    out = result.stdout.str()
    assert out.count("BROKEN-MODEL-MARKER") == 1  # once, at the top of the summary; not once per item
    result.stdout.fnmatch_lines(["=*= rmbench: broken *", "the reward model could not be loaded: *BROKEN-MODEL-MARKER*",
                                 "  6 item(s) were not scored"])
    assert "ERRORS" not in out and "short test summary" not in out
    assert "pairs/s" not in out  # no pair was scored
    result.stdout.fnmatch_lines(["  overall no item scored (6 errored), needs >= 0.500: not run*",
                                 "  6 item(s) errored, needs none: FAIL", "gate: FAILED"])
    assert (suite.path / "loads.log").read_text() == "broken\n"  # tried once, not once per item
    data = report(suite)
    assert data["overall"]["errors"] == 6 and "BROKEN-MODEL-MARKER" in data["run"]["load_error"]
    assert {i["error"] for i in data["items"]} == {NOT_LOADED}
    assert data["run"]["pairs_per_second"] is None


def test_chunks_are_scored_in_length_sorted_batches_once(pytester):
    items = "".join(
        f"  - {{id: i{i}, subset: s, prompt: same, chosen: {'c' * (i + 2)}, rejected: {'r' if i % 2 else 'x'}}}\n" for i in range(10)
    )
    pytester.makefile(".rmbench.yaml", demo="items:\n" + items)
    pytester.makeconftest(COUNTING_CONFTEST)
    result = pytester.runpytest("--rm-model=counting", "--rm-chunk-size", "4", "--rm-batch-size", "3", "--rm-min-batch-fill", "0")
    result.assert_outcomes(passed=10)
    batches = [json.loads(line) for line in (pytester.path / "batches.log").read_text().splitlines()]
    # chunks of 4, 4, 2 items; each chunk's distinct answers: 4+2, 4+2, 2+2 -> batches of 3: 2, 2, 2
    assert [len(b) for b in batches] == [3, 3, 3, 3, 3, 1]
    assert batches[0] == ["ccccc", "cccc", "ccc"]  # longest first
    assert sum(len(b) for b in batches) == 16  # "r" and "x" scored once per chunk, not once per item


def test_builtin_random_is_a_pure_function_of_seed_and_text(suite):
    def scores(*args):
        suite.runpytest_subprocess("--rm-model=builtin:random", "--rm-report=run.json", *args)
        return [i["chosen_score"] for i in report(suite)["items"]]

    first, again, other = scores(), scores(), scores("--rm-seed", "1")
    assert first == again and first != other
    assert all(0 <= s < 1 for s in first)


def test_reward_model_fixture(pytester):
    pytester.makepyfile(test_handwritten="""
        def test_prefers(reward_model):
            assert reward_model.score("q", "abc") == 3.0
            assert reward_model.prefers([{"role": "user", "content": "q"}], "longer", "short")
            assert not reward_model.prefers("q", "same", "same")
    """)
    pytester.runpytest("--rm-model=builtin:length").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(skipped=1)


def test_maxfail_warns(suite):
    result = suite.runpytest("--rm-model=builtin:length", "-x")
    result.stdout.fnmatch_lines(["warning: -x/--maxfail*"])


def test_custom_file_patterns(pytester):
    pytester.makefile(".yaml", mine=SUITE)
    pytester.makeini("[pytest]\nrm_file_patterns = mine.yaml\n")
    pytester.runpytest("--rm-model=builtin:length").stdout.fnmatch_lines(["*4 passed, 2 incorrect*"])


def test_no_torch_at_startup_or_with_builtin_models(suite):
    suite.makeconftest("""
        import sys
        def pytest_sessionfinish():
            assert "torch" not in sys.modules and "transformers" not in sys.modules, "heavy import"
            print("NO-HEAVY-IMPORTS")
    """)
    result = suite.runpytest_subprocess("--rm-model=builtin:length", "-s")
    result.stdout.fnmatch_lines(["*NO-HEAVY-IMPORTS*"])
    assert result.ret == 0


def test_xdist_gives_the_same_report(suite):
    suite.runpytest_subprocess("--rm-model=builtin:random", "--rm-report=single.json", "--rm-chunk-size", "2")
    result = suite.runpytest_subprocess("--rm-model=builtin:random", "--rm-report=multi.json", "-n", "2", "--rm-chunk-size", "2",
                                        "--rm-min-accuracy", "overall=0.0")
    assert result.ret == 0
    single, multi = report(suite, "single.json"), report(suite, "multi.json")
    for key in ("items", "subsets", "sections", "overall", "length_baseline"):
        assert single[key] == multi[key], key
    assert multi["gate"]["configured"] is True and multi["run"]["collected"] == 6


def test_xdist_usage_error_for_unknown_names(suite):
    result = suite.runpytest_subprocess("--rm-model=builtin:length", "-n", "2", "--rm-min-accuracy", "ghost=0.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "matches no subset or section" in result.stdout.str() + result.stderr.str()


def test_autouse_fixtures_apply_to_every_item(suite):
    suite.makeconftest("""
        import pytest
        calls = []

        @pytest.fixture(autouse=True)
        def count(request):
            calls.append(request.node.nodeid)

        def pytest_sessionfinish():
            print(f"AUTOUSE-CALLS={len(calls)}")
    """)
    result = suite.runpytest("--rm-model=builtin:length", "-s", "--rm-no-store")
    result.stdout.fnmatch_lines(["*AUTOUSE-CALLS=6*"])
