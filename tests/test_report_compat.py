"""The JSON report is an interface users parse: its keys, their order and their values stay
the same across refactors (add fields, never rename or drop).

Each scenario runs a real session and compares its report, with the figures that vary
from run to run (times, memory, versions, temporary paths) blanked, to a golden file in
tests/golden/ written from the code before the #12 redesign. Regenerate a golden only for
a deliberate, documented change: RMBENCH_REGEN_GOLDEN=1 python -m pytest tests/test_report_compat.py
"""

import json
import os
import pathlib
import shutil

import pytest

GOLDEN = pathlib.Path(__file__).parent / "golden"
ROOT = pathlib.Path(__file__).parent.parent

VOLATILE = {"started", "seconds", "pairs_per_second", "load_seconds", "peak_memory_bytes", "versions",
            "busy_seconds", "start", "stop", "path", "git_commit"}
RUN_IDS = (("run", "id"), ("baseline", "run"))  # store ids: they count runs

KINDS = """\
name: kinds
sections:
  Lists: [bon, styles, ties]
gate:
  overall: 0.1
items:
  - {kind: best_of_n, id: tie, subset: bon, prompt: p, chosen: [bbbb], rejected: [a, cccc]}
  - {kind: best_of_n, id: top, subset: bon, prompt: p, chosen: [bbbbb], rejected: [a, cc]}
  - {kind: best_of_n, id: strict, subset: bon, prompt: p, rule: strict, chosen: [ccc, dddd], rejected: [aa, b]}
  - {kind: style_matrix, id: m1, subset: styles, prompt: p, chosen: [aa, aaaa, aaaaaa], rejected: [bbb, bbbbb, bbbbbbb]}
  - {kind: ties, id: t1, subset: ties, prompt: p, chosen: [aaaaa, aaaaaa], rejected: [b, bb]}
  - {kind: judged, id: j1, subset: judged, question: q, response_a: a, response_b: bbb, label: "B>A"}
  - {kind: judged, id: j2, subset: judged, question: q, response_a: aa, response_b: bb, label: "A>B"}
  - {kind: consistency, id: c1, subset: consistency, prompt: write a poem, contrast_prompt: write a poem in French, answer: roses}
  - {kind: pair, id: p1, subset: pairs, prompt: [{role: system, content: be brief}, {role: user, content: hi}], chosen: longer, rejected: short, strict: true}
  - {kind: pair, id: p2, subset: pairs, prompt: p, chosen: s, rejected: longer, tags: [length-trap]}
  - {kind: steps, id: s1, subset: gsm8k, problem: "1+1?", steps: ["1+1 = 2", "so 2"], label: -1}
  - {kind: steps, id: s2, subset: gsm8k, problem: "2+2?", steps: ["2+2 = 5", "so 5"], label: 0}
  - {kind: pair, id: bad, subset: pairs, prompt: p, chosen: x}
"""

# adapters a user could write: a pairwise judge, a process reward model, a multi-head classifier
CONFTEST_MODELS = '''
import pytest
from pytest_rmbench.items import MultiHeadScore
from pytest_rmbench.models.base import Prepared

class Base:
    dtype = "n/a"; device = "cpu"
    def __init__(self, name):
        self.name = name
    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]

class Judge(Base):
    kind = "judge"; pairwise = True
    def score_batch(self, batch):  # prefers the longer answer
        return [float(len(p.request.answer_a) - len(p.request.answer_b)) for p in batch]

class Prm(Base):
    kind = "prm"; steps = True
    def score_batch(self, batch):
        out = []
        for p in batch:
            r = p.request
            if hasattr(r, "steps"):
                out.append(tuple(0.1 if "5" in s else 0.9 for s in r.steps))
            else:
                out.append(float(len(r.answer)))
        return out

class Heads(Base):
    kind = "classifier"
    def score_batch(self, batch):
        return [MultiHeadScore(len(p.request.answer), [len(p.request.answer), -len(p.request.answer)]) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    kind = spec.model.split(":", 1)[1]
    return {"judge": Judge, "prm": Prm, "heads": Heads}[kind](spec.model)

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return None
'''

CONFTEST_SUITE = '''
import pytest
from pytest_rmbench.items import PairItem
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
        from pytest_rmbench.items.files import Section
        return {"All": Section("All", {s: 1.0 for s in sorted(subsets)})}

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


def normalize(value, tmp: str):
    """Blank what varies between runs; keep every key, in order."""
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in VOLATILE and v is not None else normalize(v, tmp)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v, tmp) for v in value]
    if isinstance(value, str):
        return value.replace(tmp, "<tmp>")
    return value


def run(pytester, *args) -> str:
    pytester.runpytest("-p", "no:cacheprovider", "--rm-report=run.json", *args)
    report = json.loads((pytester.path / "run.json").read_text())
    for block, key in RUN_IDS:
        if isinstance(report.get(block), dict) and key in report[block]:
            report[block][key] = "<run id>"
    return json.dumps(normalize(report, str(pytester.path)), indent=1, ensure_ascii=False) + "\n"


def check(name: str, text: str) -> None:
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("RMBENCH_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"the JSON report of {name!r} changed; see {golden}"


def test_the_bundled_suite_and_its_baseline_comparison(pytester):
    shutil.copy(ROOT / "benchmarks" / "core.rmbench.yaml", pytester.path / "core.rmbench.yaml")
    check("core-length", run(pytester, "--rm-model=builtin:length"))
    check("core-random-vs-latest", run(pytester, "--rm-model=builtin:random", "--rm-baseline=latest"))


def test_every_item_kind(pytester):
    pytester.makefile(".rmbench.yaml", kinds=KINDS)
    check("kinds-length", run(pytester, "--rm-model=builtin:length", "--rm-section=Pairs=pairs,judged"))


@pytest.mark.parametrize("model", ["judge", "prm", "heads"])
def test_judge_prm_and_multi_head_adapters(pytester, model):
    pytester.makeconftest(CONFTEST_MODELS)
    pytester.makefile(".rmbench.yaml", kinds=KINDS)
    check(f"kinds-{model}", run(pytester, f"--rm-model=toy:{model}", "--rm-no-cache"))


def test_a_suite_with_official_scores(pytester):
    pytester.makeconftest(CONFTEST_SUITE)
    check("suite-toy", run(pytester, "--rm-model=builtin:length", "--rm-bench=toy", "--rm-min-accuracy=toy=0.2"))
