"""render_markdown and render_html on hand-built report dicts, and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import random
import re
import select
import shutil
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest

from pytest_rmbench.report.html import TEXT_CLIP, histogram, item_texts, natural, render_html
from pytest_rmbench.report.markdown import escape_md, render_markdown
from pytest_rmbench.report.stats import wilson_interval

HOSTILE_SUBSET = "a|b <script>alert(1)</script>"
HOSTILE_ID = "<script>alert(1)</script>|`x`*y*_[z](j)&amp;"
CHARTS = ("subset-accuracy", "baseline-delta", "margins", "length-bias")


def block(records: list[dict]) -> dict:
    scored = [r for r in records if r["outcome"] != "error"]
    n = len(scored)
    correct = sum(r["outcome"] == "correct" for r in scored)
    low, high = wilson_interval(correct, n)
    margins = [r["margin"] for r in scored]
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None, "ci_low": low, "ci_high": high,
            "mean_margin": sum(margins) / len(margins) if margins else None, "errors": len(records) - n}


def make_report(baseline: bool = True, hostile: bool = False, regressed: int | None = None, items: int = 30) -> dict:
    """30 items over 4 subsets (one errored), a section, gate checks of every kind, optionally a baseline."""
    rng = random.Random(7)
    subsets = ["chat", HOSTILE_SUBSET if hostile else "chat-hard", "safety", "reasoning"]
    records = []
    for k in range(items):
        subset = subsets[k % 4]
        chosen = rng.gauss((1.5, 0.2, 1.0, 0.6)[k % 4], 1.2)
        rejected = rng.gauss(0.0, 1.0)
        margin = chosen - rejected
        outcome = "correct" if margin > 0 else "incorrect"
        if k == items - 1:
            outcome, chosen, rejected, margin = "error", None, None, None
        ident = HOSTILE_ID if hostile and k == 5 else f"item-{k:02d}"
        records.append({"nodeid": f"benchmarks/{subset}.rmbench.yaml::{ident}", "file": f"benchmarks/{subset}.rmbench.yaml",
                        "id": ident, "subset": subset, "outcome": outcome, "chosen_score": chosen,
                        "rejected_score": rejected, "margin": margin, "truncated": k == 3, "chosen_longer": k % 3 != 0})
    by_subset = {s: block([r for r in records if r["subset"] == s]) for s in subsets}
    overall = block(records)

    def split(longer: bool) -> dict:
        rs = [r for r in records if r["outcome"] != "error" and r["chosen_longer"] == longer]
        return {"n": len(rs), "accuracy": sum(r["outcome"] == "correct" for r in rs) / len(rs) if rs else None}

    checks = [
        {"name": "overall", "threshold": 0.7, "value": overall["accuracy"], "passed": True, "status": "pass",
         "rule": "point", "kind": "accuracy", "source": "command line"},
        {"name": "chat", "threshold": 0.8, "value": by_subset["chat"]["accuracy"], "passed": None,
         "status": "inconclusive", "rule": "wilson", "kind": "accuracy", "source": "benchmarks/chat.rmbench.yaml",
         "low": by_subset["chat"]["ci_low"], "high": by_subset["chat"]["ci_high"]},
        {"name": "errors", "threshold": 0, "value": 1, "passed": False, "kind": "errors",
         "rule": "no item may error", "status": "fail"},
        {"name": "strict", "threshold": 1.0, "value": 0.5, "passed": False, "kind": "strict",
         "rule": "every strict item must pass", "status": "fail", "failed": [records[5]["nodeid"]]},
    ]
    report = {
        "run": {"model": "org/tiny-rm", "kind": "classifier", "dtype": "float32", "device": "cpu", "seed": 0,
                "versions": {"python": "3.11.2", "pytest": "8.3.0", "pytest-rmbench": "0.1.0"},
                "started": "2025-11-28T04:00:00+00:00", "seconds": 12.5, "pairs_per_second": 240.2,
                "collected": items + 2, "ran": items},
        "items": records,
        "subsets": by_subset,
        "sections": {"core": {"n": 15, "accuracy": 0.71, "subsets": ["chat", "safety"],
                              "weights": {"chat": None, "safety": 2.0}}},
        "overall": overall,
        "length_baseline": {"accuracy": 0.6, "rule": "the longer answer in characters wins; equal lengths are wrong"},
        "length_bias": {"chosen_longer": split(True), "chosen_shorter": split(False)},
        "truncated": 1,
        "workers": [{"worker": "main"}],
        "baseline": None,
        "gate": {"configured": True, "passed": False, "checks": checks},
    }
    if baseline:
        def cmp(delta, low, high, decision, regressions, fixes, p, before):
            return {"n": 7, "regressions": regressions, "fixes": fixes, "delta": delta, "delta_low": low,
                    "delta_high": high, "mcnemar_p": p, "decision": decision, "before": before, "after": before + delta}
        compared = {subsets[0]: cmp(0.0, -0.03, 0.03, "pass", 0, 0, 1.0, 0.85),
                    subsets[1]: cmp(-0.14, -0.29, 0.0, "inconclusive", 2, 1, 0.5, 0.42),
                    subsets[2]: cmp(0.14, 0.0, 0.29, "pass", 0, 1, 1.0, 0.71),
                    subsets[3]: cmp(-0.29, -0.43, -0.14, "fail", 2, 0, 0.5, 0.7)}
        wrong = [r["nodeid"] for r in records if r["outcome"] == "incorrect"]
        report["baseline"] = {
            "run": "run 41 (org/tiny-rm)", "shared": items - 2, "edited": 1, "margin": 0.05,
            "subsets": compared, "overall": cmp(-0.07, -0.14, 0.0, "inconclusive", 4, 2, 0.69, 0.68),
            "regressed": wrong[:4] if regressed is None else [f"benchmarks/x.rmbench.yaml::r{i:02d}" for i in range(regressed)],
        }
        for name, b in [*compared.items(), ("overall", report["baseline"]["overall"])]:
            checks.append({"name": f"baseline:{name}", "threshold": -0.05, "value": b["delta"], "low": b["delta_low"],
                           "high": b["delta_high"], "passed": {"pass": True, "fail": False}.get(b["decision"]),
                           "status": b["decision"], "kind": "baseline", "rule": "non-inferiority", "source": "baseline"})
    return report


def none_report() -> dict:
    """Every number None, an n=0 subset, no items, no baseline, an unconfigured gate."""
    empty = {"n": 0, "correct": 0, "accuracy": None, "ci_low": None, "ci_high": None, "mean_margin": None, "errors": 0}
    return {
        "run": {"model": None, "kind": None, "dtype": None, "device": None, "seed": None, "versions": {},
                "started": None, "seconds": None, "pairs_per_second": None, "collected": 0, "ran": 0},
        "items": [],
        "subsets": {"empty": dict(empty)},
        "sections": {"s": {"n": 0, "accuracy": None, "subsets": ["empty"], "weights": {"empty": None}}},
        "overall": dict(empty),
        "length_baseline": {"accuracy": None, "rule": None},
        "length_bias": {"chosen_longer": {"n": 0, "accuracy": None}, "chosen_shorter": {"n": 0, "accuracy": None}},
        "truncated": 0,
        "workers": [],
        "baseline": None,
        "gate": {"configured": False, "passed": True, "checks": []},
    }


def table_rows(markdown: str, first_cell: str) -> list[str]:
    """The lines of the Markdown table whose header starts with `| first_cell |`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def cells(row: str) -> int:
    """Cells in a GFM table row: pipes not escaped by a backslash."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


# -- Markdown -------------------------------------------------------------------------------------

def test_markdown_headline_and_order_with_baseline():
    md = render_markdown(make_report())
    first = md.splitlines()[0]
    assert first.startswith("## ") and "gate FAILED" in first
    assert "org/tiny-rm" in md and "30 ran of 32 collected" in md
    assert "Partial run" in md
    # regressions come first, before the tables
    assert md.index("### Regressions against baseline run 41") < md.index("### Subsets") < md.index("### Sections")
    assert md.index("### Sections") < md.index("### Gate") < md.index("### Length bias")
    header = table_rows(md, "subset")[0]
    for column in ("95% CI", "mean margin", "errors", "baseline", "McNemar p", "decision"):
        assert column in header
    rows = table_rows(md, "subset")
    assert all(cells(r) == cells(header) for r in rows)
    assert len(rows) == 2 + 4 + 1  # header, alignment, 4 subsets, overall
    chat_hard = next(r for r in rows if r.startswith("| chat-hard |"))
    assert "-0.140 [-0.290, +0.000]" in chat_hard and "inconclusive" in chat_hard and "0.420" in chat_hard
    assert rows[-1].startswith("| **overall** |")


def test_markdown_gate_rules_and_length_lines():
    md = render_markdown(make_report())
    gate = table_rows(md, "check")
    assert all(cells(r) == cells(gate[0]) for r in gate)
    by_name = {r.split("|")[1].strip(): r for r in gate[2:]}
    assert "point" in by_name["overall"] and "pass" in by_name["overall"]
    assert "wilson" in by_name["chat"] and "inconclusive" in by_name["chat"]
    assert "non-inferiority" in by_name["baseline:reasoning"] and "fail" in by_name["baseline:reasoning"]
    assert "no item may error" in by_name["errors"]
    assert "Gate **FAILED**" in md
    assert "Length-only baseline accuracy: 0.600" in md
    assert re.search(r"chosen answer is longer: \d\.\d{3} \(n=\d+\); shorter: \d\.\d{3} \(n=\d+\)", md)
    assert "Truncated items: 1" in md


def test_markdown_lists_20_regressions_then_the_rest_as_a_count():
    md = render_markdown(make_report(regressed=27))
    listed = [line for line in md.splitlines() if line.startswith("- benchmarks/x.rmbench.yaml")]
    assert len(listed) == 20
    assert "- … and 7 more" in md
    assert "27 item(s) the baseline got right are wrong now" in md


def test_markdown_without_baseline_has_no_baseline_columns():
    report = make_report(baseline=False)
    report["gate"] = {"configured": True, "passed": True, "checks": report["gate"]["checks"][:1]}
    md = render_markdown(report)
    assert "gate PASSED" in md.splitlines()[0]
    assert "Regressions" not in md and "McNemar" not in md
    header = table_rows(md, "subset")[0]
    assert cells(header) == 7


def test_markdown_escapes_hostile_names():
    report = make_report(hostile=True)
    report["run"]["model"] = "evil|model <img src=x onerror=alert(1)>"
    md = render_markdown(report)
    assert not re.search(r"(?<!\\)<(script|img|/script)", md)  # only backslash-escaped
    assert "a\\|b \\<script\\>alert(1)\\</script\\>" in md
    # every table keeps its column count although names contain | and backticks
    for first in ("subset", "check"):
        rows = table_rows(md, first)
        assert all(cells(r) == cells(rows[0]) for r in rows), rows
    assert escape_md("x|y\nz") == "x\\|y z"
    assert escape_md("`a` *b* _c_ [d](e) &lt; $x$ @user #1") == (
        "\\`a\\` \\*b\\* \\_c\\_ \\[d\\](e) \\&lt; \\$x\\$ \\@user \\#1")


def test_markdown_with_none_values_and_empty_report():
    md = render_markdown(none_report())
    assert "no gate" in md.splitlines()[0]
    assert "| empty | 0 | 0 | - | - | - | 0 |" in md
    assert "No gate was set" in md
    assert render_markdown({}).startswith("## ")
    nan = make_report()
    nan["overall"]["accuracy"] = float("nan")
    nan["subsets"]["chat"]["mean_margin"] = float("inf")
    assert "nan" not in render_markdown(nan).lower().replace("non-inferiority", "")


def test_markdown_is_deterministic():
    a = make_report()
    b = make_report()
    b["subsets"] = dict(reversed(list(b["subsets"].items())))
    assert render_markdown(a) == render_markdown(a) == render_markdown(b)


# -- HTML -------------------------------------------------------------------------------------------

class Tree(HTMLParser):
    """Checks nesting (void elements aside) and records svg charts, their titles and table rows."""

    VOID = {"meta", "br", "input", "img", "hr", "link", "line", "rect", "circle", "path"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.charts: dict[str, dict] = {}
        self.current = None
        self.scripts = 0
        self.item_rows = 0
        self.in_items = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "svg":
            self.current = {"title": None, "texts": []}
            self.charts[attrs.get("data-chart")] = self.current
        if tag == "table" and attrs.get("id") == "items":
            self.in_items = True
        if self.in_items and tag == "tr" and "data-outcome" in attrs:
            self.item_rows += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()
        if tag == "svg":
            self.current = None
        if tag == "table":
            self.in_items = False

    def handle_data(self, data):
        self.text.append(data)
        if self.current is not None:
            if self.stack and self.stack[-1] == "title" and self.current["title"] is None:
                self.current["title"] = data
            self.current["texts"].append(data)


def parse(page: str) -> Tree:
    tree = Tree()
    tree.feed(page)
    tree.close()
    assert tree.stack == [], tree.stack
    return tree


def test_html_has_the_four_charts_titled_and_every_item():
    page = render_html(make_report())
    tree = parse(page)
    assert set(tree.charts) == set(CHARTS)
    for chart in tree.charts.values():
        assert chart["title"]
    assert tree.item_rows == 30
    assert tree.scripts == 1
    text = " ".join(tree.text)
    assert "gate FAILED" in text and "org/tiny-rm" in text
    # thresholds, whiskers and the non-inferiority line
    accuracy = " ".join(tree.charts["subset-accuracy"]["texts"])
    assert "chat: threshold 0.800 (wilson rule): inconclusive" in accuracy
    assert "overall: threshold 0.700 (point rule): pass" in accuracy
    assert "[core]" in accuracy
    delta = " ".join(tree.charts["baseline-delta"]["texts"])
    assert "−margin 0.050" in delta and "fail" in delta
    length = " ".join(tree.charts["length-bias"]["texts"])
    assert "length-only baseline" in length and "0.600" in length
    for heading in ("Regressions against baseline", "Subsets", "Gate checks", "Items"):
        assert heading in text


def test_html_is_self_contained():
    page = render_html(make_report())
    for needle in ("http://", "https://", "src=", "href=", "@import", "url(", "//cdn", "<link"):
        assert needle not in page
    policy = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1))
    assert "default-src 'none'" in policy
    csp = re.search(r"script-src 'sha256-([^']+)'", policy).group(1)
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    assert base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() == csp


def test_html_escapes_hostile_names():
    page = render_html(make_report(hostile=True))
    assert page.count("<script") == 1  # the page's own
    assert "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    tree = parse(page)
    assert set(tree.charts) == set(CHARTS)
    assert tree.item_rows == 30
    assert HOSTILE_ID in " ".join(tree.text)


def test_html_without_baseline_and_with_none_values():
    page = render_html(make_report(baseline=False))
    tree = parse(page)
    assert set(tree.charts) == {"subset-accuracy", "margins", "length-bias"}
    assert "Regressions" not in page

    tree = parse(render_html(none_report()))
    assert set(tree.charts) == {"subset-accuracy", "margins", "length-bias"}
    assert "no scored items" in " ".join(tree.charts["subset-accuracy"]["texts"])
    assert "no item has a margin" in " ".join(tree.charts["margins"]["texts"])
    assert tree.item_rows == 0
    assert "no gate" in " ".join(tree.text) and "gate no gate" not in " ".join(tree.text)

    parse(render_html({}))
    odd = make_report()
    odd["baseline"]["subsets"]["chat"] = {"n": 0, "delta": None, "delta_low": None, "delta_high": None,
                                         "decision": "not run", "before": None, "after": None}
    odd["items"][0]["margin"] = float("nan")
    odd["items"][1]["margin"] = 1e9
    tree = parse(render_html(odd))
    assert "no shared items" in " ".join(tree.charts["baseline-delta"]["texts"])


def test_html_single_margin_and_all_equal_margins():
    for margins in ([0.0], [2.0, 2.0, 2.0], [-1e-9]):
        report = make_report(baseline=False)
        report["items"] = [dict(report["items"][0], margin=m, outcome="correct" if m > 0 else "incorrect")
                           for m in margins]
        assert "data-chart=\"margins\"" in render_html(report)


def test_histogram_puts_zero_margins_left_of_zero():
    start, width, bins = histogram([(0.0, False), (0.3, True), (-0.7, False), (1.0, True)])
    edges = [(start + i * width, start + (i + 1) * width) for i in range(len(bins))]
    zero_edge = [i for i, (a, b) in enumerate(edges) if abs(b) < 1e-12]
    assert zero_edge, edges  # 0 is a bin edge
    i = zero_edge[0]
    assert bins[i][1] == 1 and bins[i][0] == 0  # the margin-0 (incorrect) item, left of the line
    assert sum(g for g, _ in bins) == 2 and sum(b for _, b in bins) == 2


def test_html_is_deterministic():
    assert render_html(make_report()) == render_html(make_report())


def with_texts(report: dict) -> dict:
    """Every item gets its prompt and answers under "texts", as the plugin records them."""
    for k, item in enumerate(report["items"]):
        item["texts"] = {"prompt": f"Prompt number {k}: what is {k} + {k}?", "chosen": f"It is {2 * k}.",
                         "rejected": f"It is {2 * k + 1}."}
    return report


def more_row(page: str, n: int) -> str:
    """The expanded part of item row n (1-based) as rendered."""
    match = re.search(rf'<tr class="more" id="item-{n}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, f"no expandable row for item {n}"
    return match.group(1)


def test_html_item_rows_expand_to_their_texts_escaped():
    report = with_texts(make_report())
    report["items"][2]["texts"]["rejected"] = 'Sure: <script>alert("x")</script> & <img src=x onerror=alert(2)>'
    report["items"][2]["texts"]["prompt"] = [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Say <b>hi</b>"}]
    page = render_html(report)
    tree = parse(page)
    assert tree.item_rows == 30
    assert page.count("<script") == 1 and "<img" not in page and "<b>hi" not in page
    row = more_row(page, 3)
    assert "Sure: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in row
    assert "system: Be brief.\n\nuser: Say &lt;b&gt;hi&lt;/b&gt;" in row
    item = report["items"][2]
    for label, figure in (("chosen score", item["chosen_score"]), ("rejected score", item["rejected_score"]),
                          ("margin", item["margin"])):
        assert f"<dt>{label}</dt><dd>{format(figure, '+.6g' if label == 'margin' else '.6g')}</dd>" in row
    assert "It is 4." in row and "Prompt number 2" not in row  # a message list replaced the prompt
    # each item row has a button that expands exactly its own row
    assert re.search(r'<tr data-outcome="[a-z]+" class="o-[a-z]+" data-item="3">.*?aria-controls="item-3"', page)
    assert len(re.findall(r'<tr class="more" id="item-\d+"', page)) == 30
    # the errored item shows its error; an item without texts says so
    report["items"][-1]["error"] = "the model returned NaN <for> this"
    del report["items"][-1]["texts"]
    row = more_row(render_html(report), 30)
    assert "error:" in row and "the model returned NaN &lt;for&gt; this" in row
    assert "no prompt or answer texts" in row


def test_html_long_answer_is_clipped_and_shown_whole_behind_show_all():
    report = with_texts(make_report(baseline=False))
    long = "".join(f"word{k} " for k in range(1500)).strip() + " THE-END"
    assert len(long) > 4 * TEXT_CLIP
    report["items"][0]["texts"]["chosen"] = long
    row = more_row(render_html(report), 1)
    blocks = re.findall(r'<div class="t">(.*?)</div>', row, re.S)
    clipped = next(b for b in blocks if b.startswith("word0 ") and not b.endswith("THE-END"))
    assert clipped == long[:TEXT_CLIP] + "…"
    assert re.search(r'<details class="all"><summary>show all \([0-9,]+ characters\)</summary>'
                     r'<div class="t">' + re.escape(long) + "</div></details>", row)
    assert row.count("show all") == 1  # the short prompt and rejected answer are not clipped


def test_html_list_kinds_show_every_answer_with_its_score():
    report = make_report(baseline=False)
    item = report["items"][0]
    item.update(kind="best_of_n", credit=0.5, details={"chosen_scores": [2.5, 1.0], "rejected_scores": [1.5, 0.25, -1.0]},
                texts={"prompt": "Pick one", "chosen": ["good A", "good B"], "rejected": ["bad A", "bad B", "bad C"]})
    report["items"][1]["texts"] = {"prompt": "steps", "answers": [{"label": "step 1", "text": "x = 1", "score": 0.9},
                                                                 "free text"]}
    row = more_row(render_html(report), 1)
    order = [row.index(t) for t in ("Pick one", "good A", "good B", "bad A", "bad B", "bad C")]
    assert order == sorted(order)
    assert "chosen 2 of 2" in row and "rejected 3 of 3" in row and "score 0.25" in row and "<dt>credit</dt><dd>0.5</dd>" in row
    assert [label for label, _, _ in item_texts(report["items"][1])] == ["prompt", "step 1", "answer 2"]
    assert item_texts({"texts": None}) == [] and item_texts({}) == []


def test_html_subsets_sort_naturally():
    assert natural(["s10", "S2", "s1", "s2b", "a", "s2"]) == ["a", "s1", "S2", "s2", "s2b", "s10"]
    report = make_report()
    names = {"chat": "s10", "chat-hard": "s2", "safety": "s1", "reasoning": "s11"}
    report["subsets"] = {names[k]: v for k, v in report["subsets"].items()}
    report["baseline"]["subsets"] = {names[k]: v for k, v in report["baseline"]["subsets"].items()}
    for item in report["items"]:
        item["subset"] = names[item["subset"]]
    page = render_html(report)
    tree = parse(page)
    subsets_table = page[page.index('<h2 id="subsets">'):page.index('<h2 id="sections">')]
    order = [subsets_table.index(f'<th scope="row">{n}</th>') for n in ("s1", "s2", "s10", "s11")]
    assert order == sorted(order)
    for chart in ("subset-accuracy", "baseline-delta"):
        labels = list(dict.fromkeys(t for t in tree.charts[chart]["texts"] if t in ("s1", "s2", "s10", "s11")))
        assert labels == ["s1", "s2", "s10", "s11"], (chart, labels)


# -- a real browser -----------------------------------------------------------------------------------

def chromium_path() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def run_chromium(binary: str, tmp_path, name: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    try:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish in 60 s: {exc.stderr!r}")


def page_errors(stderr: str) -> list[str]:
    """Console lines from the page other than our own marker, uncaught errors, CSP refusals."""
    bad = []
    for line in stderr.splitlines():
        if ":CONSOLE" in line and "rmbench-ok" not in line:
            bad.append(line)
        elif "Uncaught" in line or "Refused to" in line:
            bad.append(line)
    return bad


def test_html_renders_in_headless_chromium(tmp_path):
    binary = chromium_path()
    if binary is None:
        pytest.skip("no chromium: install Debian's chromium (apt-get install -y chromium; .ci/chromium.sh does it)")
    page = tmp_path / "report.html"
    report = with_texts(make_report(hostile=True))
    page.write_text(render_html(report), encoding="utf-8")
    url = page.as_uri() + "#sort=margin&dir=asc&open=4"

    dumped = run_chromium(binary, tmp_path, "dom", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    dom = dumped.stdout
    for chart in CHARTS:
        assert re.search(rf'<svg[^>]*data-chart="{chart}"', dom), chart
    assert 'id="items"' in dom
    assert 'data-rmbench-js="ok"' in dom  # the script ran to its end
    assert "rmbench-ok" in dumped.stderr, dumped.stderr[-3000:]
    assert page_errors(dumped.stderr) == []
    assert "<script>alert" not in dom
    # the fragment sorted the items table by margin, most negative first, the errored item last
    body = dom[dom.index('id="items"'):]
    rows = re.findall(r'<tr data-outcome="([a-z]+)"[^>]*>.*?<td class="id">(.*?)</td>', body, re.S)
    assert len(rows) == 30
    scored = [i for i in report["items"] if i["margin"] is not None]
    lowest = min(scored, key=lambda i: i["margin"])
    assert rows[0][1] == lowest["nodeid"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert rows[-1][0] == "error"
    # the script folded every item's texts but item 4's, which the address opened, under its own row
    assert len(re.findall(r'<tr class="more" id="item-\d+" data-more="\d+" hidden="">', body)) == 29
    assert re.search(r'<tr data-outcome="[a-z]+" class="o-[a-z]+" data-item="4">.*?aria-expanded="true".*?</tr>\s*'
                     r'<tr class="more" id="item-4" data-more="4">.*?Prompt number 3: ', body, re.S)

    shot = tmp_path / "shot.png"
    taken = run_chromium(binary, tmp_path, "shot", f"--screenshot={shot}", "--window-size=1200,2000",
                         "--hide-scrollbars", url)
    assert taken.returncode == 0, taken.stderr[-3000:]
    assert page_errors(taken.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 2000)
    assert len(data) > 50_000  # a blank page compresses to a few kB; charts and tables do not


# Puts the pipe ends given as argv[1] and argv[2] on descriptors 3 and 4, where chromium's
# --remote-debugging-pipe looks for them, then becomes argv[3:].
MOVE_TO_3_AND_4 = """
import fcntl, os, sys
read, write = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(read, 3)
os.dup2(write, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


class DevTools:
    """Chromium driven over --remote-debugging-pipe (the DevTools protocol: JSON messages ending in NUL
    on file descriptors 3 and 4): real clicks and layout questions, with nothing but the standard library."""

    def __init__(self, binary: str, tmp_path, width: int = 1200, height: int = 900):
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        self.log = tmp_path / "devtools-stderr.log"
        flags = [f for f in CHROMIUM_FLAGS if f != "--headless"]
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", MOVE_TO_3_AND_4, str(to_child), str(from_child), binary, "--headless",
                 *flags, "--remote-debugging-pipe", f"--user-data-dir={tmp_path / 'profile-devtools'}",
                 f"--window-size={width},{height}", "about:blank"],
                pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        self.session = None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, timeout: float = 30, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._id:
                    assert "error" not in answer, (method, answer["error"])
                    return answer["result"]
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"chromium did not answer {method} in {timeout} s")
            if select.select([self._read], [], [], left)[0]:
                chunk = os.read(self._read, 1 << 16)
                if not chunk:
                    pytest.fail(f"chromium closed the DevTools pipe: {self.log.read_text(errors='replace')[-3000:]}")
                self._buffer += chunk

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while not self.js('document.readyState === "complete" && '
                          'document.documentElement.getAttribute("data-rmbench-js") === "ok"'):
            if time.monotonic() > deadline:
                pytest.fail("the report page did not finish loading (or its script did not run) in 30 s")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, scrolled into view first."""
        x, y = self.js(f"(function () {{ var e = document.querySelector({json.dumps(selector)});"
                       " e.scrollIntoView({block: 'center'}); var r = e.getBoundingClientRect();"
                       " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def visible(self, selector: str) -> bool:
        """Rendered, not hidden, of some size, and inside the viewport."""
        return self.js(f"(function () {{ var e = document.querySelector({json.dumps(selector)});"
                       " if (!e || !e.checkVisibility({visibilityProperty: true})) { return false; }"
                       " var r = e.getBoundingClientRect();"
                       " return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < window.innerHeight; })()")

    def close(self) -> str:
        try:
            self.call("Browser.close", timeout=10)
        except BaseException:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)
        return self.log.read_text(errors="replace")


def test_html_item_row_expands_on_click_in_headless_chromium(tmp_path):
    binary = chromium_path()
    if binary is None:
        pytest.skip("no chromium: install Debian's chromium (apt-get install -y chromium; .ci/chromium.sh does it)")
    report = with_texts(make_report(hostile=True))
    long = "".join(f"w{k} " for k in range(600)) + "the-very-end"
    report["items"][6]["texts"]["rejected"] = long
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    prompt = "Prompt number 6: what is 6 + 6?"
    browser = DevTools(binary, tmp_path)
    try:
        browser.open(page.as_uri() + "#sort=margin&dir=desc")
        text = 'document.getElementById("items").innerText'
        assert browser.js('document.querySelectorAll("#items tr.more").length') == 30
        assert browser.js('document.querySelectorAll("#items tr.more:not([hidden])").length') == 0
        assert browser.js(f"{text}.indexOf({json.dumps(prompt)})") == -1  # collapsed: not rendered
        assert not browser.visible("#item-7 section.prompt .t")

        row_top = 'document.querySelector(\'tr[data-item="7"]\').getBoundingClientRect().top + window.scrollY'
        browser.click('tr[data-item="7"] button.expand')
        top = browser.js(row_top)
        assert browser.js('document.querySelector(\'tr[data-item="7"] button.expand\').getAttribute("aria-expanded")') == "true"
        assert browser.visible("#item-7 section.prompt .t")
        assert browser.js('document.querySelector("#item-7 section.prompt .t").innerText') == prompt
        assert browser.js(f"{text}.indexOf({json.dumps(prompt)})") >= 0
        assert browser.js('document.querySelectorAll("#items tr.more:not([hidden])").length') == 1
        # the expanded row follows its item row, which the fragment sorted
        assert browser.js('document.getElementById("item-7").previousElementSibling.getAttribute("data-item")') == "7"
        # the long answer: clipped, the whole of it one more click away
        assert "the-very-end" not in browser.js(text)
        browser.click("#item-7 details.all > summary")
        assert browser.visible("#item-7 details.all .t")
        assert "the-very-end" in browser.js(text)
        assert browser.js(row_top) == top  # the long text widened no column: nothing above the row moved
        # clicking the row again folds it; clicking elsewhere in the row opens another
        browser.click('tr[data-item="7"] td.id')
        assert not browser.visible("#item-7 section.prompt .t")
        browser.click('tr[data-item="2"] td.outcome')
        assert browser.visible("#item-2 section.prompt .t")
    finally:
        log = browser.close()
    assert page_errors(log) == []


def test_official_scores_in_markdown_and_html():
    report = make_report(baseline=False)
    report["scores"] = {
        "rewardbench": {"final": 0.8125, "sections": {"Chat": 0.9, "Safety": float("nan")}, "errors": 0},
        "x|y": {"overall": None},
    }
    report["datasets"] = {"rewardbench": {"headline": "final"}, "x|y": {"headline": "overall"}}
    markdown = render_markdown(report)
    assert "### Official scores" in markdown
    assert "| rewardbench | final | 0.812 | sections.Chat 0.900, sections.Safety -, errors 0.000 |" in markdown
    assert "| x\\|y | overall | - | - |" in markdown
    page = render_html(report)
    assert '<h2 id="official">Official scores</h2>' in page and "sections.Chat 0.900" in page
    assert "### Official scores" not in render_markdown(make_report(baseline=False))
