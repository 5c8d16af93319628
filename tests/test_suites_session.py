"""Suites as real pytest sessions: node ids, selection, official scores, datasets, the gate,
missing data, xdist, and a suite defined in a conftest.py through the hook."""

import json
import os
import subprocess
import sys

import pytest

# A suite a user writes in conftest.py: the same mechanism as the built-in ones.
CONFTEST_SUITE = '''
import pytest
from pytest_rmbench.items import PairItem, Section
from pytest_rmbench.suites import RowError
from pytest_rmbench.suites.base import items_from_rows, text

ROWS = [
    {"id": 1, "area": "easy", "q": "hi", "good": "hello there", "bad": "hey"},
    {"id": 2, "area": "easy", "q": "bye", "good": "goodbye", "bad": "ok"},
    {"id": 3, "area": "hard", "q": "q", "good": "no", "bad": "a long wrong answer"},
    {"id": 4, "area": "hard", "q": "p", "good": "longer answer", "bad": None},
]

class Toy:
    name = "toy"
    headline = "final"

    def load(self, source):
        source.used.append({"name": "toy-data", "revision": "abc", "rows": len(ROWS)})
        source.absent("extra", "no extra part in this toy")
        def make(row, index):
            return PairItem(id=str(row["id"]), subset=row["area"], prompt=row["q"], chosen=text(row, "good"),
                            rejected=text(row, "bad"), node=f"{row['area']}/{row['id']}", source=f"toy#{index}", order=index)
        return items_from_rows(ROWS, "toy-data", make)

    def sections(self, subsets):
        return {"All": Section("All", {s: 1.0 for s in subsets})}

    def score(self, results):
        graded = [r for r in results if r.outcome != "error"]
        by = {}
        for r in graded:
            by.setdefault(r.subset, []).append(r.credit)
        means = {k: sum(v) / len(v) for k, v in by.items()}
        return {"final": sum(means.values()) / len(means), "subsets": means, "errors": len(results) - len(graded)}

@pytest.hookimpl
def pytest_rmbench_make_suite(config, name):
    return Toy() if name == "toy" else None
'''


@pytest.fixture
def toy(pytester):
    pytester.makeconftest(CONFTEST_SUITE)
    return pytester


def read(pytester, name="run.json"):
    return json.loads((pytester.path / name).read_text())


def test_suite_items_are_tests_with_readable_node_ids(toy):
    result = toy.runpytest("--rm-bench", "toy", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["toy::easy/1", "toy::easy/2", "toy::hard/3", "toy::item-3*"])


def test_official_score_datasets_and_namespaced_subsets_in_the_report(toy):
    result = toy.runpytest("--rm-bench", "toy", "--rm-model=builtin:length", "--rm-report=run.json", "-p", "no:cacheprovider")
    report = read(toy)
    # length wins: 1 ok, 2 ok, 3 wrong; 4 is an error item (its rejected answer is missing)
    assert report["scores"]["toy"] == {"final": pytest.approx((1.0 + 0.0) / 2), "subsets": {"easy": 1.0, "hard": 0.0}, "errors": 1}
    assert set(report["subsets"]) == {"toy/easy", "toy/hard", "toy/(invalid)"}
    assert report["sections"]["toy/All"]["accuracy"] == pytest.approx(0.5)  # weights 1, 1
    assert report["datasets"]["toy"]["datasets"] == [{"name": "toy-data", "revision": "abc", "rows": 4}]
    assert report["datasets"]["toy"]["not_run"] == [{"part": "extra", "reason": "no extra part in this toy"}]
    assert {i["file"] for i in report["items"]} == {"toy"}
    bad = next(i for i in report["items"] if i["outcome"] == "error")
    assert "toy-data row 3" in bad["error"] and "'bad'" in bad["error"]
    assert result.ret == 1  # the error item fails the gate


def test_k_and_lf_select_suite_items(toy):
    toy.runpytest("--rm-bench", "toy", "--rm-model=builtin:length", "-p", "cacheprovider")
    result = toy.runpytest("--rm-bench", "toy", "--rm-model=builtin:length", "--lf", "-v", "-p", "cacheprovider")
    assert "toy::hard/3" in result.stdout.str() and "toy::easy/1" not in result.stdout.str()
    result = toy.runpytest("--rm-bench", "toy", "--rm-model=builtin:length", "-k", "easy", "--rm-report=k.json")
    assert [i["nodeid"] for i in read(toy, "k.json")["items"]] == ["toy::easy/1", "toy::easy/2"]
    assert result.ret == 0


@pytest.mark.parametrize("threshold, code", [("0.5", 0), ("0.6", 1)])
def test_the_gate_reads_a_suites_headline_score(toy, threshold, code):
    result = toy.runpytest("--rm-bench", "toy", "--rm-model=builtin:length", "-k", "not item", "--rm-report=run.json",
                           f"--rm-min-accuracy=toy={threshold}", "-p", "no:cacheprovider")
    check = next(c for c in read(toy)["gate"]["checks"] if c["name"] == "toy")
    assert check["value"] == pytest.approx(0.5) and check["passed"] is (code == 0)
    assert result.ret == code


def test_gate_names_a_suites_sections_and_subsets(toy):
    result = toy.runpytest("--rm-bench", "toy", "--rm-model=builtin:length", "-k", "not item", "--rm-report=run.json",
                           "--rm-min-accuracy=toy/easy=1.0", "--rm-min-accuracy=toy/All=0.9", "-p", "no:cacheprovider")
    checks = {c["name"]: c["passed"] for c in read(toy)["gate"]["checks"]}
    assert checks == {"toy/easy": True, "toy/All": False}
    assert result.ret == 1


def test_an_unknown_suite_is_a_usage_error(pytester):
    result = pytester.runpytest("--rm-bench", "nosuch", "--rm-model=builtin:length")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rm-bench 'nosuch': unknown suite; available: rewardbench, rewardbench2, rmbench*"])


def _rmbench_rows(n, start=0):
    return [{"id": start + i, "prompt": f"question {i}", "chosen": ["c" * (5 + i), "cc" * (5 + i), "ccc" * (5 + i)],
             "rejected": ["r" * 6, "rr" * 6, "rrr" * 6]} for i in range(n)]


def test_a_builtin_suite_from_local_files(pytester):
    data = pytester.mkdir("data")
    (data / "chat_filtered.json").write_text(json.dumps(_rmbench_rows(3)))
    (data / "math_filtered.json").write_text(json.dumps(_rmbench_rows(2)))
    (data / "README.md").write_text("not data")
    result = pytester.runpytest("--rm-bench", "rmbench", f"--rm-data-dir={data}", "--rm-model=builtin:length",
                                "--rm-report=run.json", "-p", "no:cacheprovider")
    report = read(pytester)
    assert [i["nodeid"] for i in report["items"]][:2] == ["rmbench::chat/0", "rmbench::chat/1"]
    # chosen lengths (5+i)*k for styles k=1..3, rejected 6, 12, 18: work out item 0 (5, 10, 15):
    #   row 5: F F F; row 10: T F F; row 15: T T F -> hard 0, normal 0, easy 1 -> credit 1/3
    chat0 = report["items"][0]
    assert chat0["kind"] == "style_matrix" and chat0["credit"] == pytest.approx(1 / 3)
    scores = report["scores"]["rmbench"]
    assert set(scores["domains"]) == {"chat", "math"}
    expected_chat = sum(i["credit"] for i in report["items"] if i["subset"] == "rmbench/chat") / 3
    assert scores["domains"]["chat"]["score"] == pytest.approx(expected_chat)
    assert scores["overall"] == pytest.approx((scores["domains"]["chat"]["score"] + scores["domains"]["math"]["score"]) / 2)
    not_run = {p["part"] for p in report["datasets"]["rmbench"]["not_run"]}
    assert {"code", "safety-refuse", "safety-response"} <= not_run
    assert result.ret == 0


@pytest.mark.usefixtures("subprocess_env")
def test_a_dataset_that_cannot_be_had_is_a_short_collection_error(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--rm-bench", "rewardbench", "--rm-model=builtin:length", "-p", "no:cacheprovider"],
        cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out  # a collection error stops the run
    assert "ERROR collecting rewardbench" in out
    assert "dataset 'allenai/reward-bench'" in out and "--rm-data-dir" in out
    assert "Traceback" not in out


def test_any_local_preference_dataset_with_a_column_mapping(pytester):
    rows = [{"uid": "a", "question": "q1", "good": "a long answer", "bad": "short", "cat": "x"},
            {"uid": "b", "question": "q2", "good": "s", "bad": "a longer one", "cat": "y"}]
    path = pytester.path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = pytester.runpytest(f"--rm-dataset={path}", "--rm-columns=prompt=question,chosen=good,rejected=bad,subset=cat,id=uid",
                                "--rm-model=builtin:length", "--rm-report=run.json", "-p", "no:cacheprovider")
    report = read(pytester)
    assert [(i["nodeid"], i["outcome"]) for i in report["items"]] == [("prefs::x/a", "correct"), ("prefs::y/b", "incorrect")]
    assert report["scores"]["prefs"]["overall"] == 0.5
    assert result.ret == 0  # no threshold set: incorrect items alone do not fail the run


def test_a_column_mapping_that_does_not_fit_lists_the_columns_found(pytester):
    path = pytester.path / "prefs.jsonl"
    path.write_text(json.dumps({"question": "q", "good": "a", "bad": "b"}) + "\n")
    result = pytester.runpytest(f"--rm-dataset={path}", "--rm-columns=prompt=question,chosen=better,rejected=bad",
                                "--rm-model=builtin:length", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*column(s) 'better' not found; the dataset has 'question', 'good', 'bad'*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_suites_under_xdist_match_a_single_process(toy):
    data = toy.mkdir("data")
    (data / "chat_filtered.json").write_text(json.dumps(_rmbench_rows(12)))
    args = ["--rm-bench", "toy", "--rm-bench", "rmbench", f"--rm-data-dir={data}", "--rm-model=builtin:length", "-p", "no:cacheprovider"]
    toy.runpytest_subprocess(*args, "--rm-report=one.json")
    toy.runpytest_subprocess(*args, "-n", "2", "--rm-report=two.json")
    one, two = read(toy, "one.json"), read(toy, "two.json")
    assert one["items"] == two["items"] and one["scores"] == two["scores"] and len(one["items"]) == 16
    assert len(two["workers"]) == 2
    # whole chunks per worker: no item is scored by two workers
    assert sum(w["items"] for w in two["workers"]) == 15  # the 16 items less the bad row, which is not scored


def test_suite_options_reach_the_suite(pytester):
    pytester.makeconftest('''
import pytest
from pytest_rmbench.items import PairItem

class Flavoured:
    name, headline = "flavoured", "n"
    def load(self, source):
        flavour = source.option("flavour", "plain")
        yield PairItem(id="1", subset=flavour, prompt="p", chosen="long answer", rejected="short")
    def sections(self, subsets):
        return {}
    def score(self, results):
        return {"n": len(results)}

@pytest.hookimpl
def pytest_rmbench_make_suite(config, name):
    return Flavoured() if name == "flavoured" else None
''')
    result = pytester.runpytest("--rm-bench=flavoured", "--rm-suite-option", "flavour=sour", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["flavoured::sour/1"])
    result = pytester.runpytest("--rm-bench=flavoured", "--rm-suite-option", "flavour", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
