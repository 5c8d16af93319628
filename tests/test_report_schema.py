"""The typed report (report/schema.py), its builder, the format helpers, the one text module
and the one rule both paired comparisons use for edited items."""

import json
import pathlib
import shutil

import pytest

from pytest_rmbench.cli import compare_reports
from pytest_rmbench.report import baseline as baseline_mod
from pytest_rmbench.report.build import build_report
from pytest_rmbench.report.compare import EDITED, ERRORED, MATCHED, ONLY_A, ONLY_B, classify, pair_items
from pytest_rmbench.report.format import fmt, fmt_count, fmt_interval, fmt_mib, fmt_p, fmt_signed, text_table
from pytest_rmbench.report.schema import ABSENT, Check, Report
from pytest_rmbench.report.tables import summary_table, text_rows
from pytest_rmbench.text import clip, one_line, redact_url, strip_credentials

GOLDEN = pathlib.Path(__file__).parent / "golden"
ROOT = pathlib.Path(__file__).parent.parent


# -- Report.from_dict / to_dict -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.json")))
def test_golden_reports_round_trip(name):
    report = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    out = Report.from_dict(report).to_dict()
    assert out == report
    assert json.dumps(out) == json.dumps(report)  # the key order too


def test_a_real_report_round_trips_and_reads_typed(pytester):
    shutil.copy(ROOT / "benchmarks" / "core.rmbench.yaml", pytester.path / "core.rmbench.yaml")
    pytester.runpytest("-p", "no:cacheprovider", "--rm-report=a.json", "--rm-model=builtin:length")
    pytester.runpytest("-p", "no:cacheprovider", "--rm-report=b.json", "--rm-model=builtin:random", "--rm-baseline=latest")
    for name in ("a.json", "b.json"):
        raw = json.loads((pytester.path / name).read_text())
        report = Report.from_dict(raw)
        assert json.dumps(report.to_dict()) == json.dumps(raw)
        assert report.run.model == raw["run"]["model"] and report.run.id == raw["run"]["id"]
        assert report.overall.accuracy == raw["overall"]["accuracy"]
        assert [i.nodeid for i in report.items] == [i["nodeid"] for i in raw["items"]]
        assert report.gate.checks[0].name == raw["gate"]["checks"][0]["name"]
    assert Report.from_dict(raw).baseline.overall.decision == raw["baseline"]["overall"]["decision"]


def test_from_dict_is_tolerant():
    old = Report.from_dict({"run": {"model": "m"}, "overall": {"n": 3, "accuracy": 0.5}, "future": 1})
    assert old.run.model == "m" and old.run.id is ABSENT and old.overall.ci_low is None
    assert old.baseline is None and old.items == [] and old.gate.checks == []
    out = old.to_dict()
    assert out["future"] == 1 and list(out)[:2] == ["run", "overall"]
    assert "id" not in out["run"]
    check = Check.from_dict({"name": "errors", "threshold": 0, "value": 1, "passed": False, "kind": "errors",
                             "rule": "no item may error", "status": "fail"})
    assert check.low is ABSENT and check.get("low") is None and "low" not in check.to_dict()
    assert list(check.to_dict()) == ["name", "threshold", "value", "passed", "kind", "rule", "status"]
    assert Report.of(old) is old


def test_build_report_in_the_report_key_order():
    records = [
        {"index": i, "nodeid": f"f.rmbench.yaml::s/{i}", "file": "f.rmbench.yaml", "id": str(i), "subset": "s",
         "kind": "pair", "outcome": "correct" if i else "incorrect", "credit": None, "margin": 1.0 - i * 0.5,
         "truncated": False, "chosen_longer": True, "length_correct": True, "content_hash": f"h{i}",
         "start": 10.0 + i, "stop": 11.0 + i}
        for i in range(3)
    ]
    gate = {"configured": False, "passed": True, "checks": []}
    workers = [{"worker": "main", "kind": "builtin", "dtype": "n/a", "device": "cpu", "from_cache": False,
                "load_seconds": None, "load_error": None, "versions": {"x": "1"}}]
    report = build_report(records, catalog={"items": [None] * 4}, workers=workers, gate=gate, model="builtin:length",
                          kind="builtin", dtype=None, device=None, seed=0, started=100.0, finished=103.0,
                          selection={"files": ["f.rmbench.yaml"], "partial": False, "why": []}, sections={})
    golden = json.loads((GOLDEN / "core-length.json").read_text(encoding="utf-8"))
    out = report.to_dict()
    assert list(out) == list(golden)
    assert list(out["run"]) == [k for k in golden["run"] if k != "id"]
    assert out["run"]["seconds"] == 3.0 and out["run"]["collected"] == 4 and out["run"]["ran"] == 3
    assert out["run"]["pairs_per_second"] == 3 / 3.0 and out["run"]["versions"]["x"] == "1"
    assert out["overall"]["n"] == 3 and out["overall"]["correct"] == 2 and out["baseline"] is None
    assert list(out["items"][0]) == list(golden["items"][0])


# -- one rule for edited items ------------------------------------------------------------------------

def item(nodeid, outcome="correct", content_hash="h", subset="s"):
    return {"nodeid": nodeid, "subset": subset, "outcome": outcome, "content_hash": content_hash, "prompt_hash": None}


PAIRS = [  # (item in A, item in B, class)
    (item("same"), item("same", "incorrect"), MATCHED),
    (item("fixed", "incorrect"), item("fixed"), MATCHED),
    (item("edited", content_hash="h1"), item("edited", content_hash="h2"), EDITED),
    (item("unread-a", "error", content_hash=None), item("unread-a"), EDITED),
    (item("unread-b"), item("unread-b", "error", content_hash=None), EDITED),
    (item("both-unread", "error", None), item("both-unread", "error", None), ERRORED),
    (item("errored", "error"), item("errored"), ERRORED),
    (item("gone"), None, ONLY_A),
    (None, item("new"), ONLY_B),
]


def test_both_comparisons_classify_item_pairs_alike():
    a = [p[0] for p in PAIRS if p[0]]
    b = [p[1] for p in PAIRS if p[1]]
    classes = {nodeid: kind for nodeid, _, _, kind in pair_items(a, b)}
    assert classes == {(x or y)["nodeid"]: kind for x, y, kind in PAIRS}
    assert all(classify(x, y) == kind for x, y, kind in PAIRS)

    cli = compare_reports({"items": a}, {"items": b})["overall"]
    base = baseline_mod.compare(b, a, margin=0.01, resamples=200)
    expected = {k: sum(kind == k for _, _, kind in PAIRS) for k in (MATCHED, EDITED, ERRORED, ONLY_A, ONLY_B)}
    assert cli["matched"] == base["shared"] == expected[MATCHED] == 2
    assert cli["edited"] == base["edited"] == expected[EDITED] == 3
    assert cli["errored"] == expected[ERRORED] and cli["only_a"] == 1 and cli["only_b"] == 1
    assert cli["regressions"] == base["overall"]["regressions"] == 1
    assert cli["fixes"] == base["overall"]["fixes"] == 1
    assert base["regressed"] == ["same"]


# -- formatting -----------------------------------------------------------------------------------------

def test_format_helpers():
    assert fmt(0.5) == "0.500" and fmt(None) == "-" and fmt(float("nan")) == "-" and fmt(True) == "-"
    assert fmt(1234.5, ",.1f") == "1,234.5" and fmt(0.000236, "+.3g") == "+0.000236"
    assert fmt_signed(-0.02) == "-0.020" and fmt_signed(0.0) == "+0.000"
    assert fmt_count(3) == "3" and fmt_count(3.0) == "3" and fmt_count(2.3333) == "2.33"
    assert fmt_count(2.3333, ".4g") == "2.333" and fmt_count(None) == "-" and fmt_count([1, 2]) == "2"
    assert fmt_interval(0.2152, 0.7848) == "[0.215, 0.785]" and fmt_interval(None, 1) == "-"
    assert fmt_interval(-0.375, 0.375, "+.3f") == "[-0.375, +0.375]"
    assert fmt_p(0.6250000000000004) == "0.625" and fmt_p(0.0001) == "<0.001" and fmt_p(0.0001, floor=None) == "0.0001"
    assert fmt_mib(3 * 2**20) == "3 MiB" and fmt_mib(None) == "-"
    assert text_table([("a", "n"), ("long", "10")], rules=(1,)) == ["a      n", "--------", "long  10"]


def test_the_summary_table_folds_subsets_inside_sections():
    subsets = {f"s{i:02d}": {"n": 1, "correct": 1, "accuracy": 1.0} for i in range(45)}
    report = Report.from_dict({"subsets": subsets, "sections": {"All": {"n": 44, "accuracy": 1.0,
                                                                        "subsets": [f"s{i:02d}" for i in range(44)]}},
                               "overall": {"n": 45, "correct": 45, "accuracy": 1.0, "errors": 0}})
    table = summary_table(report, fold=True)
    assert [r.label for r in table.rows] == ["s44", "(+44 in sections, -v)", "[All]", "overall"]
    assert len(summary_table(report, fold=True, verbose=1).subsets) == 45
    rows, rules = text_rows(table)
    assert rows[3] == ("[All]", "44", "", "1.000", "-", "-", "") and rules == (1, 3, 4)


def test_text_helpers():
    assert one_line(ValueError("first\nsecond")) == "ValueError: first" and one_line(KeyError()) == "KeyError"
    assert strip_credentials("https://u:p@host:1/v1?model=m") == "https://host:1/v1?model=m"
    assert redact_url("postgresql://u:pw@h:5432/db?x=1", mask="***") == "postgresql://u:***@h:5432/db?x=1"
    assert redact_url("postgresql://u@h/db", mask="***") == "postgresql://u@h/db"
    assert strip_credentials("http://a:b@[::1") == "http://<redacted>@[::1"
    assert clip("abcdef", 4) == "abcd…" and clip("abc", 4) == "abc"
    assert clip("a  b\n c d e", 5, squash=True, within=True) == "a b …"
    assert clip("x" * 30, 20, marker="[... {more:,} more characters]") == "x" * 20 + "[... 10 more characters]"
    assert clip("a b c d", 3, squash=True, marker="...") == "a b..."
