"""Gating against a baseline and with the Wilson rule, in real pytest sessions."""

import json
import os

import numpy  # noqa: F401  (imported before pytester's in-process runs, which must not import it afresh)
import pytest

from pytest_rmbench.report.baseline import checks, compare


def items_file(pytester, n, name="items", flip=(), edit=()):
    """n items that builtin:length gets right; `flip` ids get a shorter chosen answer (wrong)."""
    rows = []
    for i in range(n):
        chosen, rejected = f"a long good answer {i}", f"bad {i}"
        if i in flip:
            chosen, rejected = f"ok {i}", f"a much longer bad answer {i}"
        prompt = f"question {i}" + (" (edited)" if i in edit else "")
        rows.append({"id": i, "subset": "a" if i % 2 else "b", "prompt": prompt, "chosen": chosen, "rejected": rejected})
    (pytester.path / f"{name}.rmbench.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


FLIP_CONFTEST = """
import pytest
from pytest_rmbench.models.base import Prepared

class Flip:
    kind = "flip"; dtype = "n/a"; device = "cpu"
    def __init__(self, name):
        self.name = name
        self.flipped = {int(i) for i in name.split(":", 1)[1].split(",")}
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        # builtin:length, except that the listed item numbers get the opposite preference
        return [-len(p.request.answer) if int(p.request.prompt.split()[1]) in self.flipped else len(p.request.answer)
                for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    if spec.model.startswith("flip:"):
        return Flip(spec.model)
"""


def run(pytester, *args, model="builtin:length"):
    pytester.makeconftest(FLIP_CONFTEST)
    return pytester.runpytest(f"--rm-model={model}", "--rm-report=run.json", "--rm-no-store", *args)


def report(pytester):
    return json.loads((pytester.path / "run.json").read_text())


def test_same_results_pass_the_baseline(pytester):
    items_file(pytester, 40)
    run(pytester)
    (pytester.path / "run.json").rename(pytester.path / "base.json")
    result = run(pytester, "--rm-baseline=base.json")
    assert result.ret == 0
    data = report(pytester)
    assert data["baseline"]["shared"] == 40 and data["baseline"]["overall"]["decision"] == "pass"
    assert {c["name"] for c in data["gate"]["checks"]} == {"baseline:a", "baseline:b", "baseline:overall"}
    assert data["gate"]["configured"] is True
    result.stdout.fnmatch_lines(["against baseline base.json: 40 shared items, 0 edited*", "*baseline:overall delta +0.000*, needs > -0.010: pass*", "gate: PASSED"])


def test_a_clear_regression_fails_and_lists_the_regressed_items(pytester):
    items_file(pytester, 200)
    run(pytester)
    (pytester.path / "run.json").rename(pytester.path / "base.json")
    flipped = ",".join(str(i) for i in range(0, 200, 4))  # 50 of 200 now wrong
    result = run(pytester, "--rm-baseline=base.json", model=f"flip:{flipped}")
    assert result.ret == 1
    b = report(pytester)["baseline"]
    assert b["overall"]["regressions"] == 50 and b["overall"]["fixes"] == 0
    assert b["overall"]["delta"] == pytest.approx(-0.25)
    assert b["overall"]["decision"] == "fail" and b["overall"]["mcnemar_p"] < 1e-10
    assert len(b["regressed"]) == 50 and b["regressed"][0].endswith("::b/0")
    out = result.stdout.str()
    assert out.index("REGRESSED") < out.index("subset "), "regressions come first"
    result.stdout.fnmatch_lines(["*baseline:overall delta -0.250*: FAIL*", "gate: FAILED"])


def test_inconclusive_follows_the_policy(pytester):
    items_file(pytester, 10)
    run(pytester)
    (pytester.path / "run.json").rename(pytester.path / "base.json")
    result = run(pytester, "--rm-baseline=base.json", model="flip:3")
    assert report(pytester)["baseline"]["overall"]["decision"] == "inconclusive"
    assert result.ret == 0
    result.stdout.fnmatch_lines(["warning: inconclusive (counted as passed, --rm-inconclusive): *baseline:overall*"])
    assert run(pytester, "--rm-baseline=base.json", "--rm-inconclusive", "fail", model="flip:3").ret == 1


def test_edited_items_are_left_out_and_counted(pytester):
    items_file(pytester, 20)
    run(pytester)
    (pytester.path / "run.json").rename(pytester.path / "base.json")
    items_file(pytester, 20, flip={2}, edit={2, 5})
    run(pytester, "--rm-baseline=base.json")
    b = report(pytester)["baseline"]
    assert (b["shared"], b["edited"], b["overall"]["regressions"]) == (18, 2, 0)


@pytest.mark.parametrize("ref, says", [
    ("nowhere.json", "--rm-baseline=nowhere.json: cannot read the baseline report*"),
    ("42", "--rm-baseline=42: no recorded run matches*"),
    ("org/typo-model", "--rm-baseline=org/typo-model: no recorded run matches*"),
])
def test_a_named_baseline_that_matches_nothing_fails_the_gate(pytester, ref, says):
    """A typo in a CI variable must not switch the regression gate off."""
    items_file(pytester, 10)
    run(pytester)  # one recorded run, of another name
    result = run(pytester, f"--rm-baseline={ref}", "--rm-min-accuracy", "overall=0.5")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"  baseline: {says}: FAIL", "gate: FAILED"])
    data = report(pytester)
    assert data["baseline"] is None and data["gate"]["passed"] is False
    assert [c["name"] for c in data["gate"]["checks"] if not c["passed"]] == ["baseline"]
    assert len(data["items"]) == 10  # nothing lost: every item is still reported


def test_a_named_baseline_that_shares_no_item_fails_and_no_unedited_item_is_inconclusive(pytester):
    items_file(pytester, 10)
    run(pytester)
    (pytester.path / "run.json").rename(pytester.path / "base.json")
    base = json.loads((pytester.path / "base.json").read_text())
    for item in base["items"]:
        item["nodeid"] = item["nodeid"].replace("items.rmbench.jsonl", "other.rmbench.jsonl")
    (pytester.path / "other.json").write_text(json.dumps(base))
    result = run(pytester, "--rm-baseline=other.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["  baseline: --rm-baseline=other.json: other.json has no item of this run: FAIL"])
    items_file(pytester, 10, edit=set(range(10)))  # the same items, every one edited: nothing to compare
    result = run(pytester, "--rm-baseline=base.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["  baseline: base.json shares no unedited item with this run (10 edited): INCONCLUSIVE",
                                 "warning: inconclusive (counted as passed, --rm-inconclusive): baseline"])
    assert run(pytester, "--rm-baseline=base.json", "--rm-inconclusive=fail").ret == 1


@pytest.mark.parametrize("threshold, status, code", [("0.6", "pass", 0), ("0.95", "fail", 1), ("0.8", "inconclusive", 0)])
def test_wilson_rule(pytester, threshold, status, code):
    items_file(pytester, 20, flip={1, 3, 5})  # 17 of 20
    result = run(pytester, "--rm-gate-rule", "wilson", "--rm-min-accuracy", f"overall={threshold}")
    (check,) = report(pytester)["gate"]["checks"]
    assert (check["status"], check["rule"]) == (status, "wilson")
    assert check["low"] == pytest.approx(0.640, abs=1e-3) and check["high"] == pytest.approx(0.948, abs=1e-3)
    assert result.ret == code
    verdict = {"pass": "pass", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}[status]
    assert f"  overall 0.850 [0.640, 0.948], needs >= {float(threshold):.3f}: {verdict} (wilson rule" in result.stdout.str()


def test_compare_unit():
    def item(i, outcome, h="h"):
        return {"nodeid": f"f::s/{i}", "subset": "s", "outcome": outcome, "content_hash": h, "prompt_hash": "p"}

    before = [item(0, "correct"), item(1, "incorrect"), item(2, "correct"), item(3, "error")]
    after = [item(0, "incorrect"), item(1, "correct"), item(2, "correct", h="new"), item(3, "correct")]
    c = compare(after, before, margin=0.01, resamples=200)
    assert (c["shared"], c["edited"]) == (2, 1)
    assert (c["overall"]["regressions"], c["overall"]["fixes"], c["overall"]["delta"]) == (1, 1, 0.0)
    assert c["overall"]["mcnemar_p"] == 1.0 and c["regressed"] == ["f::s/0"]
    names = [x["name"] for x in checks(c, "pass")]
    assert names == ["baseline:s", "baseline:overall"]


def test_markdown_and_html_reports_from_a_session(pytester, monkeypatch):
    items_file(pytester, 12, flip={1})
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run(pytester, "--rm-html=out/report.html", "--rm-min-accuracy", "overall=0.5")
    text = summary.read_text()
    assert text.startswith("earlier step\n"), "appended, not overwritten"
    assert "gate PASSED" in text and "| a |" in text
    html = (pytester.path / "out" / "report.html").read_text()
    assert html.count("<svg") >= 3 and 'data-chart="subset-accuracy"' in html and "b/0" in html
    run(pytester, "--rm-markdown=explicit.md")
    assert "gate" in (pytester.path / "explicit.md").read_text()


def test_a_report_that_fails_at_the_end_is_a_clear_error(pytester):
    items_file(pytester, 4)
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-no-store", "--rm-report=/dev/full", "--junitxml=j.xml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["pytest-rmbench: could not write '/dev/full'*"])
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full"), "the device node is still there"
    assert "rm_gate_passed" in (pytester.path / "j.xml").read_text()


def test_runs_are_recorded_and_latest_is_the_baseline(pytester):
    items_file(pytester, 40)
    store = pytester.path / ".rmbench" / "runs.sqlite"
    first = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json")
    first.stdout.fnmatch_lines(["recorded as run 1 *"])
    assert store.exists()
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json", "--rm-baseline=latest")
    result.stdout.fnmatch_lines(["against baseline run 1 (builtin:length; latest complete run of these files): 40 shared items*", "recorded as run 2 *"])
    data = report(pytester)
    assert data["baseline"]["run"] == 1 and data["run"]["id"] == 2
    # the CLI reads the same history
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pytest_rmbench", "runs", "list", "--store", str(store)],
                         capture_output=True, text=True, cwd=pytester.path)
    assert out.returncode == 0 and "builtin:length" in out.stdout


def test_latest_without_history_passes_and_says_so(pytester):
    items_file(pytester, 10)
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-baseline=latest", "--rm-min-accuracy", "overall=0.5")
    result.stdout.fnmatch_lines(["baseline: latest: no earlier complete run of these files in the run store; nothing to "
                                 "compare with", "*gate: PASSED"])
    assert result.ret == 0


def test_latest_is_the_latest_complete_run_of_the_same_files(pytester):
    items_file(pytester, 20, flip={1})
    pytester.makefile(".rmbench.jsonl", extra=json.dumps({"id": 0, "subset": "x", "prompt": "p", "chosen": "long answer",
                                                          "rejected": "no"}))
    args = ["--rm-model=builtin:length", "--rm-report=run.json", "-p", "no:cacheprovider"]
    assert pytester.runpytest(*args).ret == 0  # run 1: complete, both files
    pytester.runpytest(*args, "-k", "a")  # run 2: partial (-k)
    pytester.runpytest(*args, "items.rmbench.jsonl")  # run 3: complete, but another selection (one file)
    stored = report(pytester)
    assert stored["selection"] == {"files": ["items.rmbench.jsonl"], "partial": False, "why": []}
    result = pytester.runpytest(*args, "--rm-baseline=latest")
    result.stdout.fnmatch_lines(["against baseline run 1 (builtin:length; latest complete run of these files; "
                                 "partial run(s) 2 passed over): 21 shared items*"])
    assert report(pytester)["baseline"]["run"] == 1
    partial = pytester.runpytest(*args, "-k", "a", "--rm-baseline=latest")  # a partial run compares with the full one
    partial.stdout.fnmatch_lines(["against baseline run 4 *"])
    data = report(pytester)
    assert data["selection"]["partial"] is True and "deselected" in data["selection"]["why"][0]


def test_rerun_regressions_runs_just_those(pytester):
    items_file(pytester, 20)
    pytester.makeconftest(FLIP_CONFTEST)
    pytester.runpytest("--rm-model=builtin:length")
    result = pytester.runpytest("--rm-model=flip:3,8", "--rm-baseline=latest")
    result.stdout.fnmatch_lines(["*REGRESSED items.rmbench.jsonl::a/3*", "*REGRESSED items.rmbench.jsonl::b/8*"])
    rerun = pytester.runpytest("--rm-model=flip:3,8", "--rm-rerun-regressions", "-v")
    rerun.stdout.fnmatch_lines(["*::a/3 INCORRECT*", "*::b/8 INCORRECT*", "*18 deselected, 2 incorrect*"])


def test_store_can_be_switched_off_or_moved(pytester):
    items_file(pytester, 5)
    pytester.runpytest("--rm-model=builtin:length", "--rm-no-store")
    assert not (pytester.path / ".rmbench" / "runs.sqlite").exists()
    pytester.runpytest("--rm-model=builtin:length", "--rm-store=history/h.sqlite")
    assert (pytester.path / "history" / "h.sqlite").exists()
